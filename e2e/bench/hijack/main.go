// Command hijack measures issue 3's figure: `kubectl concourse hijack -j P/J
// -b N -s S -- true` against `kubectl exec POD -- true` on the same test
// cluster in the same run (median wall time of interleaved runs, peak RSS),
// with filler pods of the same job in the namespace so that resolution is
// shown not to depend on their number. It prints the ratios.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-concourse/kubectl-concourse/e2e/bench/interleave"
	"github.com/kubectl-concourse/kubectl-concourse/e2e/cluster"
)

func main() {
	runs := flag.Int("runs", 20, "measured runs of each command")
	filler := flag.Int("pods", 200, "pending pods of other builds of the same job in the namespace")
	maxRatio := flag.Float64("max-ratio", 1.15, "time ratio the plugin (through kubectl) should stay within")
	flag.Parse()
	if err := run(*runs, *filler, *maxRatio); err != nil {
		fmt.Fprintln(os.Stderr, "bench hijack:", err)
		os.Exit(1)
	}
}

func run(runs, filler int, maxRatio float64) error {
	ctx := context.Background()
	c, err := cluster.Start(ctx, cluster.Options{})
	if err != nil {
		return err
	}
	defer func() { _ = c.Stop() }()

	ns := "bench-hijack-" + utilrand.String(5)
	if err := setup(ctx, c.Client, ns); err != nil {
		return err
	}
	defer func() { _ = c.Client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}) }()

	// The same figures with the step's pod alone, then among filler pods:
	// resolution is one LIST by label selector, whatever the namespace holds.
	for _, n := range []int{0, filler} {
		if err := addFiller(ctx, c.Client, ns, n); err != nil {
			return err
		}
		r, err := compare(c, ns, runs, n)
		if err != nil {
			return err
		}
		verdict := "within"
		if r > maxRatio {
			verdict = "OVER" // reported, not fatal: one noisy run must not stop make bench
		}
		fmt.Printf("  kubectl concourse hijack / kubectl exec = %.2fx: %s the %.2fx budget\n", r, verdict, maxRatio)
	}
	return nil
}

// compare measures the contenders and prints a table; it returns the ratio
// of the plugin through kubectl to kubectl exec.
func compare(c *cluster.Cluster, ns string, runs, filler int) (float64, error) {
	target := []string{"-n", ns, "-j", "main/test", "-b", "7", "-s", "unit", "--", "true"}
	cs := []*interleave.Contender{
		{Name: "kubectl exec POD -- true", Argv: []string{"kubectl", "exec", "-n", ns, "step", "--", "true"}},
		{Name: "kubectl concourse hijack -j P/J -b N -s S -- true", Argv: append([]string{"kubectl", "concourse", "hijack"}, target...)},
		{Name: "kubectl-concourse hijack ... (plugin binary alone)", Argv: append([]string{"kubectl-concourse", "hijack"}, target...)},
	}
	// Two warm-up rounds fill the caches (binaries, discovery, the API server's).
	if err := interleave.Measure(c, cs, 2, runs); err != nil {
		return 0, err
	}
	fmt.Printf("hijack vs exec: %d interleaved runs each, %d pods in the namespace (%d of them other builds of the job)\n",
		runs, filler+1, filler)
	base := cs[0]
	for _, k := range cs {
		fmt.Printf("  %-52s median %6.1f ms (cpu %5.1f ms)  peak RSS %5.1f MiB", k.Name,
			interleave.Ms(k.Median()), interleave.Ms(k.MedianCPU()), interleave.MiB(k.PeakRSS()))
		if k != base {
			fmt.Printf("  time %.2fx  cpu %.2fx  memory %.2fx", interleave.Ratio(k.Median(), base.Median()),
				interleave.Ratio(k.MedianCPU(), base.MedianCPU()), interleave.Ratio(k.PeakRSS(), base.PeakRSS()))
		}
		fmt.Println()
	}
	return interleave.Ratio(cs[1].Median(), base.Median()), nil
}

// setup creates the namespace and the step's pod, and waits until it runs.
func setup(ctx context.Context, client kubernetes.Interface, ns string) error {
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{}); err == nil {
			break
		} else if time.Now().After(deadline) {
			return fmt.Errorf("no default service account in %s: %w", ns, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := client.CoreV1().Pods(ns).Create(ctx, stepPod(ns, "step", "7"), metav1.CreateOptions{}); err != nil {
		return err
	}
	for {
		p, err := client.CoreV1().Pods(ns).Get(ctx, "step", metav1.GetOptions{})
		if err == nil && p.Status.Phase == corev1.PodRunning {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("step pod not running after a minute: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// addFiller adds pods of other builds of the job that are never scheduled:
// they only weigh on the LIST.
func addFiller(ctx context.Context, client kubernetes.Interface, ns string, n int) error {
	for i := 0; i < n; i++ {
		p := stepPod(ns, fmt.Sprintf("filler-%d", i), fmt.Sprint(100+i))
		p.Spec.NodeSelector = map[string]string{"bench.kubectl-concourse.dev/unschedulable": "true"}
		if _, err := client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// stepPod is a pod of build `build` of main/test's step unit, per the contract.
func stepPod(ns, name, build string) *corev1.Pod {
	var grace int64 = 1
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{
			"app.kubernetes.io/managed-by": "concourse", "concourse-ci.org/team": "main",
			"concourse-ci.org/pipeline": "main", "concourse-ci.org/job": "test", "concourse-ci.org/build-name": build,
			"concourse-ci.org/step-name": "unit", "concourse-ci.org/step-type": "task", "concourse-ci.org/attempt": "1",
		}},
		Spec: corev1.PodSpec{TerminationGracePeriodSeconds: &grace, Containers: []corev1.Container{{
			Name: "main", Image: "busybox", Command: []string{"sleep", "3600"}, WorkingDir: "/tmp/build/b1dda4c3"}}},
	}
}
