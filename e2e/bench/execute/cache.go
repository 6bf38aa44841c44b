package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/kubectl-concourse/kubectl-concourse/e2e/bench/interleave"
	"github.com/kubectl-concourse/kubectl-concourse/e2e/cluster"
)

// linkRate is the limited link's speed, bytes/s: the test cluster's slow
// link, as the artifacts benchmark has it.
const linkRate = 25_000_000

// realModules make the real source tree of issue 25's cache cases: about
// 9,000 files, 96 MB, from the Go module cache.
var realModules = []string{"k8s.io/api@v0.37.2", "k8s.io/client-go@v0.37.2", "k8s.io/apimachinery@v0.37.2",
	"k8s.io/apiserver@v0.37.2", "k8s.io/kubectl@v0.37.2", "k8s.io/component-base@v0.37.2", "k8s.io/cli-runtime@v0.37.2",
	"k8s.io/kube-aggregator@v0.37.2", "k8s.io/cri-api@v0.37.2", "k8s.io/kubelet@v0.37.2", "k8s.io/cloud-provider@v0.37.2",
	"k8s.io/component-helpers@v0.37.2"}

// realTree copies realModules into dir, writable (the module cache's
// files are read-only), and returns its files and bytes.
func realTree(dir string) (files int, bytes int64, err error) {
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		return 0, 0, fmt.Errorf("go env GOMODCACHE: %w", err)
	}
	cache := strings.TrimSpace(string(out))
	for _, m := range realModules {
		src := filepath.Join(cache, m)
		err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(cache, p)
			dst := filepath.Join(dir, rel)
			switch {
			case d.IsDir():
				return os.MkdirAll(dst, 0o755)
			case !d.Type().IsRegular():
				return nil
			}
			n, err := copyFile(p, dst)
			files++
			bytes += n
			return err
		})
		if err != nil {
			return 0, 0, fmt.Errorf("%s (go mod download it first): %w", m, err)
		}
	}
	return files, bytes, nil
}

func copyFile(src, dst string) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// cacheCases measures issue 25's warm input cache: the same real tree
// again unchanged, and with 4 files changed or deleted, against the first
// (cold) run of each round, the full upload of today (--no-cache), over
// loopback and through the 25 MB/s link, interleaved.
func cacheCases(c *cluster.Cluster, work, ns string, runs int) error {
	src := filepath.Join(work, "real")
	files, bytes, err := realTree(src)
	if err != nil {
		return err
	}
	var victims []string
	_ = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && strings.HasSuffix(p, ".go") && len(victims) < 4 && strings.Contains(p, "/core/v1/") {
			rel, _ := filepath.Rel(src, p)
			victims = append(victims, rel)
		}
		return nil
	})
	if len(victims) < 4 {
		return fmt.Errorf("the real tree has no 4 files to change")
	}
	task := filepath.Join(work, "cache-task.yml")
	if err := os.WriteFile(task, []byte("platform: linux\ninputs: [{name: src}]\nrun: {path: sh, args: [-c, 'echo "+marker+"']}\n"), 0o644); err != nil {
		return err
	}
	fmt.Printf("\nwarm input cache: a real source tree of %d files, %.0f MB (%d k8s.io modules @v0.37.2 from the module cache); machine load %s\n",
		files, float64(bytes)/1e6, len(realModules), loadavg())
	for _, link := range []struct{ name, kubeconfig string }{{"loopback", c.Kubeconfig}, {"25 MB/s link", c.LimitedKubeconfig}} {
		execute := func(extra string) string {
			return fmt.Sprintf("export KUBECONFIG=%q; cd %q && kubectl concourse execute -n %s --image busybox -c %q -i src=%q %s",
				link.kubeconfig, work, ns, task, src, extra)
		}
		cold := &contender{name: "first run (cold: a full upload, --no-cache)", script: execute("--no-cache")}
		same := &contender{name: "same input again, unchanged", script: execute("")}
		changed := &contender{name: "same input, 4 files changed or deleted",
			script: fmt.Sprintf("%s && %s", churnScript(src, victims), execute(""))}
		// The warm-up fills the cache; each round then runs the three.
		if err := measure(c, []*contender{cold, same, changed}, 1, runs); err != nil {
			return err
		}
		base := median(cold.samples, total)
		fmt.Printf("\n%s, load %s\n", link.name, loadavg())
		fmt.Printf("  %-44s %7.0f ms\n", cold.name, interleave.Ms(base))
		for _, k := range []struct {
			c    *contender
			goal float64
		}{{same, map[bool]float64{true: 0.4, false: 0.2}[link.name == "loopback"]}, {changed, map[bool]float64{true: 0.4, false: 0.25}[link.name == "loopback"]}} {
			m := median(k.c.samples, total)
			r := interleave.Ratio(m, base)
			verdict := "meets"
			if r > k.goal {
				verdict = "MISSES"
			}
			fmt.Printf("  %-44s %7.0f ms   %.2fx of the first: %s the goal of at most %.2fx\n", k.c.name, interleave.Ms(m), r, verdict, k.goal)
		}
	}
	return nil
}

func total(s sample) time.Duration { return s.total }

// churnScript changes 4 files of the tree before a run: two get new
// content, and two are deleted, or written back when the last run deleted
// them.
func churnScript(dir string, victims []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "cd %q", dir)
	for i, v := range victims {
		if i < 2 {
			fmt.Fprintf(&b, " && head -c 4096 /dev/urandom >%q", v)
			continue
		}
		fmt.Fprintf(&b, " && { if [ -e %q ]; then rm %q; else head -c 4096 /dev/urandom >%q; fi; }", v, v, v)
	}
	return b.String()
}
