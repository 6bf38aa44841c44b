// Command artifacts benchmarks `kubectl concourse upload/download` on the
// test cluster against bin/kubectl cp and the raw exec channel, over
// loopback and through the cluster's rate-limited link. It prints seconds,
// MB/s, the plugin's peak RSS and the ratios issue 4 asks for.
//
//	cd e2e && go run ./bench/artifacts [-file-mib 512] [-files 20000] [-file-kib 15]
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-concourse/kubectl-concourse/e2e/cluster"
)

const (
	ns       = "bench-artifacts"
	pod      = "bench"
	linkRate = 25_000_000
)

var (
	fileMiB = flag.Int("file-mib", 512, "size of the incompressible file, MiB")
	files   = flag.Int("files", 20000, "files in the source tree")
	fileKiB = flag.Int("file-kib", 15, "size of each tree file, KiB")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// link is one way to the API server.
type link struct {
	name, kubeconfig string
}

// dataset is what is moved: a local path and its remote copy's name.
type dataset struct {
	name  string // "file" or "tree"
	local string // local file or directory
	bytes int64
	gzip  bool // worth measuring ours with gzip and without
}

// measurement is one timed command.
type measurement struct {
	seconds float64
	rssMiB  float64
	err     error
}

func run() error {
	ctx := context.Background()
	work, err := os.MkdirTemp("", "bench-artifacts-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	fmt.Fprintf(os.Stderr, "generating data in %s\n", work)
	file, err := genFile(filepath.Join(work, "src", "big.bin"), int64(*fileMiB)<<20)
	if err != nil {
		return err
	}
	tree, err := genTree(filepath.Join(work, "src", "tree"), *files, *fileKiB<<10)
	if err != nil {
		return err
	}
	sets := []dataset{file, tree}
	c, err := cluster.Start(ctx, cluster.Options{LinkRate: linkRate})
	if err != nil {
		return fmt.Errorf("start cluster: %w", err)
	}
	defer c.Stop()
	if err := createPod(ctx, c); err != nil {
		return err
	}
	b := &bench{c: c, bin: c.BinDir, work: work}
	// The remote originals for downloads, put there by the raw channel.
	for _, d := range sets {
		if _, err := b.shell(link{"loopback", c.Kubeconfig}, fmt.Sprintf(
			"tar cf - -C %s %s | kubectl exec -i -n %s %s -- tar xf - -C /data/src", q(filepath.Dir(d.local)), q(filepath.Base(d.local)), ns, pod)); err != nil {
			return fmt.Errorf("seed %s: %w", d.name, err)
		}
	}
	links := []link{{"loopback", c.Kubeconfig}, {"25 MB/s link", c.LimitedKubeconfig}}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "link\tdata\tdir\ttool\tseconds\tMB/s\tpeak RSS MiB\tours vs this\t")
	for _, l := range links {
		for _, d := range sets {
			for _, dir := range []string{"up", "down"} {
				rows := b.cases(l, d, dir)
				ours := rows[0].m.seconds
				for _, r := range rows {
					ratio := ""
					if r.m.err == nil && ours > 0 && r.tool != rows[0].tool {
						ratio = fmt.Sprintf("%.2fx", r.m.seconds/ours)
					}
					if r.m.err != nil {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\tfailed: %v\t\t\t\t\n", l.name, d.name, dir, r.tool, r.m.err)
						continue
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2f\t%.1f\t%.1f\t%s\t\n", l.name, d.name, dir, r.tool, r.m.seconds,
						float64(d.bytes)/r.m.seconds/1e6, r.m.rssMiB, ratio)
				}
				tw.Flush()
			}
		}
	}
	fmt.Println("\"ours vs this\" is the other tool's time over ours: above 1 means ours is faster.")
	return tw.Flush()
}

type bench struct {
	c    *cluster.Cluster
	bin  string
	work string
}

type row struct {
	tool string
	m    measurement
}

// cases runs every tool on one link, dataset and direction; ours (auto)
// comes first, the row the ratios are taken against.
func (b *bench) cases(l link, d dataset, dir string) []row {
	name := filepath.Base(d.local)
	parent := filepath.Dir(d.local)
	var rows []row
	add := func(tool, cmd string) {
		b.reset(l)
		fmt.Fprintf(os.Stderr, "%s %s %s: %s\n", l.name, d.name, dir, tool)
		m, err := b.shell(l, cmd)
		m.err = err
		rows = append(rows, row{tool, m})
	}
	plugin := filepath.Join(b.bin, "kubectl-concourse")
	target := fmt.Sprintf("-n %s --pod %s --container main -q", ns, pod)
	out := filepath.Join(b.work, "out")
	if dir == "up" {
		add("concourse upload", fmt.Sprintf("%s upload %s %s /data/dst", plugin, target, q(d.local)))
		if d.gzip {
			add("concourse --compress none", fmt.Sprintf("%s upload %s --compress none %s /data/dst", plugin, target, q(d.local)))
			add("concourse --compress gzip", fmt.Sprintf("%s upload %s --compress gzip %s /data/dst", plugin, target, q(d.local)))
		}
		add("concourse --verify=false", fmt.Sprintf("%s upload %s --verify=false %s /data/dst", plugin, target, q(d.local)))
		add("kubectl cp", fmt.Sprintf("kubectl cp -c main %s %s/%s:/data/dst/%s", q(d.local), ns, pod, name))
		add("raw tar | exec tar", fmt.Sprintf("tar cf - -C %s %s | kubectl exec -i -n %s %s -- tar xf - -C /data/dst", q(parent), q(name), ns, pod))
		add("raw exec cat (channel)", fmt.Sprintf("tar cf - -C %s %s | kubectl exec -i -n %s %s -- sh -c 'cat >/dev/null'", q(parent), q(name), ns, pod))
		return rows
	}
	src := "/data/src/" + name
	add("concourse download", fmt.Sprintf("%s download %s %s %s", plugin, target, src, q(out)))
	if d.gzip {
		add("concourse --compress none", fmt.Sprintf("%s download %s --compress none %s %s", plugin, target, src, q(out)))
		add("concourse --compress gzip", fmt.Sprintf("%s download %s --compress gzip %s %s", plugin, target, src, q(out)))
	}
	add("concourse --verify=false", fmt.Sprintf("%s download %s --verify=false %s %s", plugin, target, src, q(out)))
	add("kubectl cp", fmt.Sprintf("kubectl cp -c main %s/%s:%s %s/%s", ns, pod, src, q(out), name))
	add("raw exec tar | tar", fmt.Sprintf("kubectl exec -n %s %s -- tar cf - -C /data/src %s | tar xf - -C %s", ns, pod, name, q(out)))
	add("raw exec cat (channel)", fmt.Sprintf("kubectl exec -n %s %s -- tar cf - -C /data/src %s | cat >/dev/null", ns, pod, name))
	return rows
}

// reset empties the destinations on both sides between runs.
func (b *bench) reset(l link) {
	out := filepath.Join(b.work, "out")
	os.RemoveAll(out)
	os.MkdirAll(out, 0o755)
	b.shell(link{"loopback", b.c.Kubeconfig}, fmt.Sprintf("kubectl exec -n %s %s -- sh -c 'rm -rf /data/dst && mkdir -p /data/dst'", ns, pod))
}

// shell runs cmd with the link's kubeconfig and bin/ first in PATH, and
// measures wall time and the largest peak RSS among its processes.
func (b *bench) shell(l link, cmd string) (measurement, error) {
	c := exec.Command("sh", "-c", "set -e; "+cmd)
	c.Env = append(os.Environ(), "KUBECONFIG="+l.kubeconfig, "PATH="+b.bin+":"+os.Getenv("PATH"))
	var stderr bytes.Buffer
	c.Stderr = &stderr
	start := time.Now()
	err := c.Run()
	m := measurement{seconds: time.Since(start).Seconds()}
	if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.rssMiB = float64(ru.Maxrss) / 1024 // KiB on Linux; sh's children included
	}
	if err != nil {
		return m, fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return m, nil
}

func q(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func createPod(ctx context.Context, c *cluster.Cluster) error {
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	var grace int64 = 1
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: pod, Namespace: ns},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{Name: "main", Image: "busybox", Command: []string{"sh", "-c", "mkdir -p /data/src && exec sleep 36000"},
				WorkingDir: "/data", VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
	}
	if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		got, err := c.Client.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
		if err == nil && got.Status.Phase == corev1.PodRunning {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("pod %s/%s not running after 2 minutes", ns, pod)
}

// genFile writes size incompressible bytes.
func genFile(p string, size int64) (dataset, error) {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return dataset{}, err
	}
	f, err := os.Create(p)
	if err != nil {
		return dataset{}, err
	}
	defer f.Close()
	r := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, 1<<20)
	for left := size; left > 0; left -= int64(len(buf)) {
		r.Read(buf)
		if _, err := f.Write(buf[:min(int64(len(buf)), left)]); err != nil {
			return dataset{}, err
		}
	}
	return dataset{name: fmt.Sprintf("%d MiB random file", size>>20), local: p, bytes: size}, f.Close()
}

// genTree writes n source-like text files of about size bytes each, 100
// per directory, compressible as real source is.
func genTree(dir string, n, size int) (dataset, error) {
	words := strings.Fields("func return if err != nil package import type struct interface for range var const " +
		"context ctx string int64 error fmt Errorf Sprintf os File Open Close defer go chan select case default")
	rng := rand.New(rand.NewPCG(1, 2))
	var total int64
	for i := 0; i < n; i++ {
		var b strings.Builder
		fmt.Fprintf(&b, "// file %d\npackage p%d\n\n", i, i/100)
		for b.Len() < size {
			b.WriteString("\t")
			for w := 0; w < 8; w++ {
				b.WriteString(words[rng.IntN(len(words))])
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "// %d\n", rng.IntN(100000))
		}
		p := filepath.Join(dir, fmt.Sprintf("pkg%03d", i/100), fmt.Sprintf("f%05d.go", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return dataset{}, err
		}
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			return dataset{}, err
		}
		total += int64(b.Len())
	}
	return dataset{name: fmt.Sprintf("%d-file tree (%d MB)", n, total/1e6), local: dir, bytes: total, gzip: true}, nil
}
