// Package interleave measures commands against each other on the test
// cluster: warm-up runs first, then runs interleaved so that drift on a shared
// machine hits every contender alike. Figures are medians and peaks, compared
// as ratios against a baseline measured in the same run.
package interleave

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/kubectl-concourse/kubectl-concourse/e2e/cluster"
)

// Sample is one run of a command.
type Sample struct {
	Wall time.Duration
	CPU  time.Duration // user + system of the command: the API server's time is not in it
	RSS  int64         // peak, KiB; through kubectl, the larger of kubectl and the plugin it execs
}

// Contender is a command measured several times.
type Contender struct {
	Name    string
	Argv    []string // a program in the cluster's bin/, then its arguments
	Samples []Sample
}

// Measure forgets earlier samples, runs every contender warmups times
// unrecorded, then runs times each, interleaved.
func Measure(c *cluster.Cluster, cs []*Contender, warmups, runs int) error {
	for _, k := range cs {
		k.Samples = nil
	}
	for i := 0; i < warmups+runs; i++ {
		for _, k := range cs {
			s, err := run(c, k.Argv)
			if err != nil {
				return fmt.Errorf("%s: %w", k.Name, err)
			}
			if i >= warmups {
				k.Samples = append(k.Samples, s)
			}
		}
	}
	return nil
}

// run runs one command to completion, its output to a file.
func run(c *cluster.Cluster, argv []string) (Sample, error) {
	cmd := exec.Command(filepath.Join(c.BinDir, argv[0]), argv[1:]...)
	cmd.Env = c.Env()
	out, err := os.CreateTemp("", "bench-")
	if err != nil {
		return Sample{}, err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	err = cmd.Run()
	wall := time.Since(start)
	if err != nil {
		b, _ := os.ReadFile(out.Name())
		return Sample{}, fmt.Errorf("%v: %.2000s", err, b)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return Sample{}, fmt.Errorf("no rusage")
	}
	return Sample{Wall: wall, CPU: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), RSS: ru.Maxrss}, nil
}

// Median is the median wall time.
func (k *Contender) Median() time.Duration {
	return k.median(func(s Sample) time.Duration { return s.Wall })
}

// MedianCPU is the median CPU time.
func (k *Contender) MedianCPU() time.Duration {
	return k.median(func(s Sample) time.Duration { return s.CPU })
}

func (k *Contender) median(f func(Sample) time.Duration) time.Duration {
	v := make([]time.Duration, len(k.Samples))
	for i, s := range k.Samples {
		v[i] = f(s)
	}
	slices.Sort(v)
	n := len(v)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// PeakRSS is the largest peak RSS of any sample, in KiB.
func (k *Contender) PeakRSS() int64 {
	var m int64
	for _, s := range k.Samples {
		m = max(m, s.RSS)
	}
	return m
}

// Ratio of two durations or sizes, as the figures print them.
func Ratio[T time.Duration | int64](a, b T) float64 { return float64(a) / float64(b) }

// MiB converts KiB.
func MiB(kib int64) float64 { return float64(kib) / 1024 }

// Ms converts a duration to milliseconds.
func Ms(d time.Duration) float64 { return float64(d) / 1e6 }
