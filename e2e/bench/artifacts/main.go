// Command artifacts benchmarks `kubectl concourse upload/download` on the
// test cluster against bin/kubectl cp and the raw exec channel,
// interleaved: each round runs every contender once, and the figures are
// medians over the rounds. It prints seconds, MB/s, peak RSS, the
// machine's load while each case ran, and the ratios issue 24 asks for
// (the other tool's time over ours: above 1 means ours is faster).
//
// The cases are issue 24's goals: a random file over loopback; a tree of
// real source from the Go module cache (k8s.io modules, every kind of
// file they hold) over loopback; real Go files through the cluster's
// 25 MB/s link; and a 1 MB file over loopback, where the time is the
// agent's own cost. Trees are real source, never generated words: real
// code compresses far less than a few repeated words. Every case also
// runs the plugin forced onto its scripts (KUBECTL_CONCOURSE_AGENT=off).
//
// Both sides of every transfer, the local files and the pod's emptyDir
// (inside the cluster's state directory), live under -root: tmpfs by
// default (package workdir says why). -root "" runs on the system's
// temporary directory instead. -baseline measures an older build of the
// plugin in the same rounds, for an A/B of a change.
//
//	cd e2e && go run ./bench/artifacts [-file-mib 256] [-tree-files 5000] [-go-files 2000] [-baseline BIN] [-runs 3] [-only CASE] [-root /dev/shm]
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-concourse/kubectl-concourse/e2e/bench/workdir"
	"github.com/kubectl-concourse/kubectl-concourse/e2e/cluster"
)

const (
	ns       = "bench-artifacts"
	pod      = "bench"
	realPod  = "bench-real" // on real-1, its /data on the disk
	linkRate = 25_000_000
)

var (
	fileMiB   = flag.Int("file-mib", 256, "size of the incompressible file, MiB")
	treeFiles = flag.Int("tree-files", 5000, "files of the real source tree moved over loopback, from the module cache's k8s.io modules")
	goFiles   = flag.Int("go-files", 2000, "real Go files moved through the 25 MB/s link, from the module cache")
	baseline  = flag.String("baseline", "", "an older kubectl-concourse build to measure beside ours (\"vs baseline\" in the ratios)")
	runs      = flag.Int("runs", 3, "interleaved rounds per case (the figures are medians)")
	only      = flag.String("only", "", "run only the cases whose \"link data dir\" contains this")
	realNode  = flag.Bool("real-node", true, "also move a real tree into a step on a real node (kubelet, containerd, runc) whose /data is on this machine's disk (needs what `testcluster check` asks for)")
	realFiles = flag.Int("real-files", 20000, "files of the real source tree moved into the real node's step")
	diskDir   = flag.String("disk-dir", "/var/tmp", "a directory on a disk (not tmpfs) for the real node's step's /data")
	root      = workdir.RootFlag()
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
	name  string // for the tables
	local string // local file or directory
	bytes int64
	tree  bool
}

// contender is one command of a case, measured once per round.
type contender struct {
	tool    string
	cmd     string
	samples []sample
	err     error
}

type sample struct {
	seconds float64
	rssMiB  float64
}

func (c *contender) median() float64 {
	v := make([]float64, len(c.samples))
	for i, s := range c.samples {
		v[i] = s.seconds
	}
	slices.Sort(v)
	if n := len(v); n%2 == 1 {
		return v[n/2]
	} else if n > 0 {
		return (v[n/2-1] + v[n/2]) / 2
	}
	return 0
}

func (c *contender) peakRSS() float64 {
	var m float64
	for _, s := range c.samples {
		m = max(m, s.rssMiB)
	}
	return m
}

// Contenders' names, which the ratios refer to.
const (
	ours        = "kubectl concourse (defaults)"
	oursNoCheck = "concourse --verify=false"
	oursPlain   = "concourse --compress none"
	oursBefore  = "baseline build (defaults)"
	oursScripts = "concourse, scripts (agent off)"
	kubectlCp   = "kubectl cp"
	rawTar      = "raw tar pipe (kubectl exec -i)"
	rawCat      = "raw channel: cat (kubectl exec -i)"
	rawCatSPDY  = "raw channel: cat, SPDY"
)

func run() (err error) {
	ctx := context.Background()
	wd, err := workdir.New(*root, "bench-artifacts-")
	if err != nil {
		return err
	}
	defer wd.RemoveKeepingLogs(&err)
	work := wd.Path
	if *baseline != "" {
		if *baseline, err = copyFile(*baseline, filepath.Join(work, "baseline", "kubectl-concourse")); err != nil {
			return fmt.Errorf("-baseline: %w", err)
		}
	}
	fmt.Fprintf(os.Stderr, "gathering data in %s (%s)\n", work, wd.FS)
	file, err := genFile(filepath.Join(work, "src", "big.bin"), int64(*fileMiB)<<20)
	if err != nil {
		return err
	}
	cache, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		return fmt.Errorf("go env GOMODCACHE: %w", err)
	}
	modules := filepath.Join(strings.TrimSpace(string(cache)), "k8s.io")
	tree, err := realTree(filepath.Join(work, "src", "tree"), modules, *treeFiles, false)
	if err != nil {
		return err
	}
	goTree, err := realTree(filepath.Join(work, "src", "gofiles"), modules, *goFiles, true)
	if err != nil {
		return err
	}
	oneMB, err := genFile(filepath.Join(work, "src", "one.bin"), 1<<20)
	if err != nil {
		return err
	}
	sets := []dataset{file, tree, goTree, oneMB}
	var onDisk dataset
	var realNodes int
	if *realNode {
		if onDisk, err = realTree(filepath.Join(work, "src", "many"), modules, *realFiles, false); err != nil {
			return err
		}
		realNodes = 1
	}
	c, err := cluster.Start(ctx, cluster.Options{LinkRate: linkRate, Dir: wd.Cluster, RealNodes: realNodes})
	if err != nil {
		return fmt.Errorf("start cluster: %w", err)
	}
	defer c.Stop()
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if err := createPod(ctx, c, pod, "", corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}); err != nil {
		return err
	}
	if *realNode {
		disk, err := os.MkdirTemp(*diskDir, "bench-artifacts-real-node-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(disk)
		if err := createPod(ctx, c, realPod, c.RealNodes[0], corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: disk}}); err != nil {
			return err
		}
	}
	bin, err := copyTools(c.BinDir, filepath.Join(work, "bin"))
	if err != nil {
		return err
	}
	b := &bench{c: c, bin: bin, work: work, pod: pod}
	// The remote originals for downloads, put there by the raw channel.
	for _, d := range sets {
		if _, err := b.shell(link{"loopback", c.Kubeconfig}, fmt.Sprintf(
			"tar cf - -C %s %s | kubectl exec -i -n %s %s -- tar xf - -C /data/src", q(filepath.Dir(d.local)), q(filepath.Base(d.local)), ns, pod)); err != nil {
			return fmt.Errorf("seed %s: %w", d.name, err)
		}
	}
	fmt.Printf("artifacts benchmark, %s, %d interleaved rounds per case, medians, both sides on %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), *runs, wd.FS)
	loopback, limited := link{"loopback", c.Kubeconfig}, link{"25 MB/s link", c.LimitedKubeconfig}
	cases := []struct {
		l    link
		d    dataset
		pod  string
		dirs []string
	}{{loopback, file, pod, both}, {loopback, tree, pod, both}, {limited, goTree, pod, both}, {loopback, oneMB, pod, both}}
	if *realNode {
		// Issue 24's case: where busybox's tar lands about a file a
		// millisecond, on the real node's disk.
		cases = append(cases, struct {
			l    link
			d    dataset
			pod  string
			dirs []string
		}{loopback, onDisk, realPod, []string{"up"}})
	}
	var summary []string
	for _, cs := range cases {
		for _, dir := range cs.dirs {
			l, d := cs.l, cs.d
			name := fmt.Sprintf("%s %s %s", l.name, d.name, dir)
			if cs.pod == realPod {
				name += " (real node, disk)"
			}
			if *only != "" && !strings.Contains(name, *only) {
				continue
			}
			b.pod = cs.pod
			cs := b.contenders(l, d, dir)
			if b.pod == realPod {
				// The slow ones are the point; the channel's own
				// speed is the loopback cases'.
				cs = slices.DeleteFunc(cs, func(c *contender) bool {
					return c.tool != ours && c.tool != oursScripts && c.tool != kubectlCp && c.tool != rawTar
				})
			}
			load0 := loadAvg()
			b.measure(l, cs, name)
			load1 := loadAvg()
			printCase(l, d, dir, cs, load0, load1)
			summary = append(summary, ratioLine(name, d, cs, load0, load1))
		}
	}
	fmt.Println("Ratios: the other's median time over ours (above 1: ours is faster). Load: 1-minute load average before and after the case.")
	for _, s := range summary {
		fmt.Println(s)
	}
	return nil
}

type bench struct {
	c    *cluster.Cluster
	bin  string
	work string
	pod  string // the step the case moves files to and from
}

// both directions of a case.
var both = []string{"up", "down"}

// contenders lists every tool for one link, dataset and direction; ours
// (defaults) first.
func (b *bench) contenders(l link, d dataset, dir string) []*contender {
	name := filepath.Base(d.local)
	parent := filepath.Dir(d.local)
	plugin := filepath.Join(b.bin, "kubectl-concourse")
	target := fmt.Sprintf("-n %s --pod %s --container main -q", ns, b.pod)
	out := filepath.Join(b.work, "out")
	var cs []*contender
	add := func(tool, cmd string) { cs = append(cs, &contender{tool: tool, cmd: cmd}) }
	const spdy = "KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false "
	if dir == "up" {
		add(ours, fmt.Sprintf("%s upload %s %s /data/dst", plugin, target, q(d.local)))
		if *baseline != "" {
			add(oursBefore, fmt.Sprintf("%s upload %s %s /data/dst", q(*baseline), target, q(d.local)))
		}
		add(oursScripts, fmt.Sprintf("KUBECTL_CONCOURSE_AGENT=off %s upload %s %s /data/dst", plugin, target, q(d.local)))
		add(oursNoCheck, fmt.Sprintf("%s upload %s --verify=false %s /data/dst", plugin, target, q(d.local)))
		if d.tree {
			add(oursPlain, fmt.Sprintf("%s upload %s --compress none %s /data/dst", plugin, target, q(d.local)))
		}
		add(kubectlCp, fmt.Sprintf("kubectl cp -c main %s %s/%s:/data/dst/%s", q(d.local), ns, b.pod, name))
		add(rawTar, fmt.Sprintf("tar cf - -C %s %s | kubectl exec -i -n %s %s -- tar xf - -C /data/dst", q(parent), q(name), ns, b.pod))
		add(rawCat, fmt.Sprintf("tar cf - -C %s %s | kubectl exec -i -n %s %s -- sh -c 'cat >/dev/null'", q(parent), q(name), ns, b.pod))
		add(rawCatSPDY, fmt.Sprintf("tar cf - -C %s %s | %skubectl exec -i -n %s %s -- sh -c 'cat >/dev/null'", q(parent), q(name), spdy, ns, b.pod))
		return cs
	}
	src := "/data/src/" + name
	add(ours, fmt.Sprintf("%s download %s %s %s", plugin, target, src, q(out)))
	if *baseline != "" {
		add(oursBefore, fmt.Sprintf("%s download %s %s %s", q(*baseline), target, src, q(out)))
	}
	add(oursScripts, fmt.Sprintf("KUBECTL_CONCOURSE_AGENT=off %s download %s %s %s", plugin, target, src, q(out)))
	add(oursNoCheck, fmt.Sprintf("%s download %s --verify=false %s %s", plugin, target, src, q(out)))
	if d.tree {
		add(oursPlain, fmt.Sprintf("%s download %s --compress none %s %s", plugin, target, src, q(out)))
	}
	add(kubectlCp, fmt.Sprintf("kubectl cp -c main %s/%s:%s %s/%s", ns, b.pod, src, q(out), name))
	add(rawTar, fmt.Sprintf("kubectl exec -n %s %s -- tar cf - -C /data/src %s | tar xf - -C %s", ns, pod, name, q(out)))
	add(rawCat, fmt.Sprintf("kubectl exec -n %s %s -- tar cf - -C /data/src %s | cat >/dev/null", ns, b.pod, name))
	add(rawCatSPDY, fmt.Sprintf("%skubectl exec -n %s %s -- tar cf - -C /data/src %s | cat >/dev/null", spdy, ns, b.pod, name))
	return cs
}

// measure runs one warm-up round (ours only, unrecorded) and then *runs
// rounds of every contender, in turn, so that drift on a shared machine
// hits them alike.
func (b *bench) measure(l link, cs []*contender, name string) {
	b.reset()
	_, _ = b.shell(l, cs[0].cmd)
	for r := 0; r < *runs; r++ {
		for _, c := range cs {
			if c.err != nil {
				continue
			}
			b.reset()
			fmt.Fprintf(os.Stderr, "%s, round %d: %s\n", name, r+1, c.tool)
			s, err := b.shell(l, c.cmd)
			if err != nil {
				c.err = err
				continue
			}
			c.samples = append(c.samples, s)
		}
	}
}

func printCase(l link, d dataset, dir string, cs []*contender, load0, load1 string) {
	fmt.Printf("%s, %s, %s (load %s -> %s)\n", l.name, d.name, dir, load0, load1)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "tool\tmedian s\truns\tMB/s\tpeak RSS MiB\tits time / ours\t")
	oursMedian := cs[0].median()
	for _, c := range cs {
		if c.err != nil {
			fmt.Fprintf(tw, "%s\tfailed: %v\t\t\t\t\t\n", c.tool, c.err)
			continue
		}
		m := c.median()
		fmt.Fprintf(tw, "%s\t%.2f\t%s\t%.1f\t%.1f\t%.2fx\t\n", c.tool, m, runList(c), float64(d.bytes)/m/1e6, c.peakRSS(), m/oursMedian)
	}
	tw.Flush()
	fmt.Println()
}

func runList(c *contender) string {
	var s []string
	for _, x := range c.samples {
		s = append(s, fmt.Sprintf("%.2f", x.seconds))
	}
	return strings.Join(s, " ")
}

// ratioLine is the case's line of the summary: ours against kubectl cp and
// the raw channel.
func ratioLine(name string, d dataset, cs []*contender, load0, load1 string) string {
	by := map[string]*contender{}
	for _, c := range cs {
		by[c.tool] = c
	}
	o := by[ours]
	if o.err != nil || len(o.samples) == 0 {
		return fmt.Sprintf("%-40s ours failed: %v", name, o.err)
	}
	ratio := func(tool string) string {
		c := by[tool]
		if c == nil || c.err != nil || len(c.samples) == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2fx", c.median()/o.median())
	}
	line := fmt.Sprintf("%-44s ours %.2f s, RSS %.0f MiB (kubectl cp %s MiB) | vs kubectl cp %s | vs scripts %s | vs raw tar pipe %s | vs raw channel over SPDY %s",
		name, o.median(), o.peakRSS(), rss(by[kubectlCp]), ratio(kubectlCp), ratio(oursScripts), ratio(rawTar), ratio(rawCatSPDY))
	if raw := by[rawCatSPDY]; d.bytes <= 1<<20 && raw != nil && raw.err == nil && len(raw.samples) > 0 {
		// A transfer this small is all overhead: ours over the raw
		// channel is what the agent, its launch and the plugin add.
		line += fmt.Sprintf(" | ours - raw channel %.0f ms", (o.median()-raw.median())*1000)
	}
	if by[oursBefore] != nil {
		line += " | vs baseline " + ratio(oursBefore)
	}
	return line + fmt.Sprintf(" | load %s -> %s", load0, load1)
}

func rss(c *contender) string {
	if c == nil || c.err != nil || len(c.samples) == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f", c.peakRSS())
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

// reset empties the destinations on both sides between runs.
func (b *bench) reset() {
	out := filepath.Join(b.work, "out")
	os.RemoveAll(out)
	os.MkdirAll(out, 0o755)
	_, _ = b.shell(link{"loopback", b.c.Kubeconfig}, fmt.Sprintf("kubectl exec -n %s %s -- sh -c 'rm -rf /data/dst && mkdir -p /data/dst'", ns, b.pod))
}

// shell runs cmd with the link's kubeconfig and bin/ first in PATH, and
// measures wall time and the largest peak RSS among its processes.
func (b *bench) shell(l link, cmd string) (sample, error) {
	c := exec.Command("sh", "-c", "set -e; "+cmd)
	c.Env = append(os.Environ(), "KUBECONFIG="+l.kubeconfig, "PATH="+b.bin+":"+os.Getenv("PATH"))
	var stderr bytes.Buffer
	c.Stderr = &stderr
	start := time.Now()
	err := c.Run()
	s := sample{seconds: time.Since(start).Seconds()}
	if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
		s.rssMiB = float64(ru.Maxrss) / 1024 // KiB on Linux; sh's children included
	}
	if err != nil {
		return s, fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return s, nil
}

// copyTools copies the plugin and kubectl from dir into a directory of
// their own. Run straight from the linker's output, which it writes
// through a memory map, a binary peaks about 20 MiB higher in RSS than the
// same bytes written by write(2), as an installer writes them
// (docs/benchmarks.md): the RSS column measures the copies.
func copyTools(dir, to string) (string, error) {
	for _, name := range []string{"kubectl-concourse", "kubectl"} {
		if _, err := copyFile(filepath.Join(dir, name), filepath.Join(to, name)); err != nil {
			return "", err
		}
	}
	return to, nil
}

// copyFile copies the executable src to dst and returns dst.
func copyFile(src, dst string) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return "", err
	}
	return dst, out.Close()
}

func q(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// createPod starts the step name (on node, when set) with data as its
// /data.
func createPod(ctx context.Context, c *cluster.Cluster, name, node string, data corev1.VolumeSource) error {
	var grace int64 = 1
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{Name: "main", Image: "busybox", Command: []string{"sh", "-c", "mkdir -p /data/src && exec sleep 36000"},
				WorkingDir: "/data", VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: data}},
		},
	}
	if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		got, err := c.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil && got.Status.Phase == corev1.PodRunning {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("pod %s/%s not running after 2 minutes", ns, name)
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

// realTree copies the first n regular files (in walk order; with goOnly,
// only .go files) of the modules @v0.37.2, then kubernetes@v1.37.2, under modules (the module
// cache's k8s.io) into dir, under their module's name, as real source
// is: its names (an @ in each module's), its sizes, how it compresses.
// The cache's files are read-only; the copies are not, so that the bench
// can remove them.
func realTree(dir, modules string, n int, goOnly bool) (dataset, error) {
	mods, err := filepath.Glob(filepath.Join(modules, "*@v0.37.2"))
	// The control plane's own module (which e2e builds from) is the last
	// to draw from: 20,000 files are more than the staging modules hold.
	mods = append(mods, filepath.Join(modules, "kubernetes@v1.37.2"))
	if err != nil || len(mods) == 1 {
		return dataset{}, fmt.Errorf("no k8s.io module @v0.37.2 in %s (%v): run go mod download in e2e", modules, err)
	}
	var copied int
	var total int64
	errEnough := errors.New("enough")
	for _, m := range mods {
		err := filepath.WalkDir(m, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() || goOnly && !strings.HasSuffix(p, ".go") {
				return err
			}
			if copied == n {
				return errEnough
			}
			rel, _ := filepath.Rel(modules, p)
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			to := filepath.Join(dir, rel)
			if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
				return err
			}
			copied++
			total += int64(len(b))
			return os.WriteFile(to, b, 0o644)
		})
		if errors.Is(err, errEnough) {
			break
		}
		if err != nil {
			return dataset{}, err
		}
	}
	if copied < n {
		return dataset{}, fmt.Errorf("the k8s.io modules @v0.37.2 in %s hold %d such files, not %d", modules, copied, n)
	}
	kind := "real source"
	if goOnly {
		kind = "real Go"
	}
	return dataset{name: fmt.Sprintf("%d %s files (%d MB)", n, kind, total/1e6), local: dir, bytes: total, tree: true}, nil
}
