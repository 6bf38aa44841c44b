// Command views measures issue 5's figures: with Concourse pods spread over
// synthetic nodes (objects only, nothing runs), the time and peak RSS of
// `kubectl concourse containers -A`, `workers` and `builds -A` against
// `kubectl get pods -A -l app.kubernetes.io/managed-by=concourse` on the same
// data in the same run, measured at half and at all of the pods so that the
// growth of memory with the data shows. It prints the ratios.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-concourse/kubectl-concourse/e2e/bench/interleave"
	"github.com/kubectl-concourse/kubectl-concourse/e2e/cluster"
)

func main() {
	pods := flag.Int("pods", 10000, "Concourse pods to create")
	nodes := flag.Int("nodes", 1000, "synthetic nodes to spread them over")
	namespaces := flag.Int("namespaces", 10, "namespaces to spread them over")
	runs := flag.Int("runs", 5, "measured runs of each command at each size")
	parallel := flag.Int("parallel", 32, "concurrent creates")
	maxRatio := flag.Float64("max-ratio", 1.2, "time ratio the views must stay within")
	flag.Parse()
	if err := run(*pods, *nodes, *namespaces, *runs, *parallel, *maxRatio, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench views:", err)
		os.Exit(1)
	}
}

func run(pods, nodes, namespaces, runs, parallel int, maxRatio float64, errOut io.Writer) (err error) {
	ctx := context.Background()
	start := time.Now()
	c, err := cluster.Start(ctx, cluster.Options{Nodes: nodes})
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			fmt.Fprint(errOut, c.Logs())
		}
		_ = c.Stop()
	}()
	fmt.Printf("cluster with %d synthetic nodes up in %s\n", nodes, time.Since(start).Round(time.Second))

	// Creating 10,000 objects needs more than client-go's default 5 QPS.
	config := *c.Config
	config.QPS, config.Burst = 1000, 2000
	client, err := kubernetes.NewForConfig(&config)
	if err != nil {
		return err
	}
	for i := range namespaces {
		if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: nsName(i)}}, metav1.CreateOptions{}); err != nil {
			return err
		}
	}

	kubectlGet := &interleave.Contender{Name: "kubectl get pods -A -l managed-by=concourse",
		Argv: []string{"kubectl", "get", "pods", "-A", "-l", "app.kubernetes.io/managed-by=concourse"}}
	cs := []*interleave.Contender{
		kubectlGet,
		{Name: "kubectl concourse containers -A", Argv: []string{"kubectl", "concourse", "containers", "-A"}},
		{Name: "kubectl concourse workers", Argv: []string{"kubectl", "concourse", "workers"}},
		{Name: "kubectl concourse builds -A", Argv: []string{"kubectl", "concourse", "builds", "-A"}},
		// Through kubectl, peak RSS is kubectl's own start-up when that is
		// larger; alone, the plugin's memory shows.
		{Name: "kubectl-concourse containers -A (alone)", Argv: []string{"kubectl-concourse", "containers", "-A"}},
		{Name: "kubectl-concourse workers (alone)", Argv: []string{"kubectl-concourse", "workers"}},
		{Name: "kubectl-concourse builds -A (alone)", Argv: []string{"kubectl-concourse", "builds", "-A"}},
	}
	created := 0
	for _, size := range []int{pods / 2, pods} {
		start := time.Now()
		if err := createPods(ctx, client, created, size, nodes, namespaces, parallel); err != nil {
			return err
		}
		fmt.Printf("created pods %d..%d in %s\n", created, size-1, time.Since(start).Round(time.Second))
		created = size
		if err := interleave.Measure(c, cs, 1, runs); err != nil {
			return err
		}
		fmt.Printf("%d Concourse pods on %d nodes in %d namespaces, median of %d interleaved runs:\n", size, nodes, namespaces, runs)
		for _, k := range cs {
			fmt.Printf("  %-44s %8.0f ms  cpu %6.0f ms  peak RSS %6.1f MiB", k.Name,
				interleave.Ms(k.Median()), interleave.Ms(k.MedianCPU()), interleave.MiB(k.PeakRSS()))
			if k != kubectlGet {
				fmt.Printf("  time %.2fx  memory %.2fx", interleave.Ratio(k.Median(), kubectlGet.Median()),
					interleave.Ratio(k.PeakRSS(), kubectlGet.PeakRSS()))
			}
			fmt.Println()
		}
		if size == pods {
			for _, k := range cs[1:4] {
				r := interleave.Ratio(k.Median(), kubectlGet.Median())
				verdict := "within"
				if r > maxRatio {
					verdict = "OVER"
				}
				fmt.Printf("  %s / kubectl get = %.2fx: %s the %.2fx budget\n", k.Name, r, verdict, maxRatio)
			}
		}
	}
	return nil
}

func nsName(i int) string { return fmt.Sprintf("bench-views-%02d", i) }

// createPods creates pods [from, to): builds of four steps, each pod bound
// to a synthetic node so that no scheduler or agent ever touches it.
func createPods(ctx context.Context, client kubernetes.Interface, from, to, nodes, namespaces, parallel int) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	steps := []string{"fetch", "build", "unit", "publish"}
	for i := from; i < to; i++ {
		g.Go(func() error {
			build := i / len(steps)
			var grace int64 = 1
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("b%05d-%s", build, steps[i%len(steps)]), Namespace: nsName(build % namespaces),
					Labels: map[string]string{
						"app.kubernetes.io/managed-by": "concourse", "concourse-ci.org/team": "main",
						"concourse-ci.org/pipeline": fmt.Sprintf("pipeline-%d", build%10), "concourse-ci.org/job": fmt.Sprintf("job-%d", build%7),
						"concourse-ci.org/build-name": strconv.Itoa(build), "concourse-ci.org/build-id": strconv.Itoa(100000 + build),
						"concourse-ci.org/step-name": steps[i%len(steps)], "concourse-ci.org/step-type": "task", "concourse-ci.org/attempt": "1",
						"concourse-ci.org/handle": fmt.Sprintf("h-%06d", i),
					}},
				Spec: corev1.PodSpec{
					NodeName:                      fmt.Sprintf("synthetic-%04d", 1+i%nodes),
					TerminationGracePeriodSeconds: &grace,
					Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					Containers: []corev1.Container{{Name: "main", Image: "busybox", Command: []string{"sh", "-c", "make test"},
						WorkingDir:   "/tmp/build/b1dda4c3",
						VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/tmp/build/scratch"}}}},
					Volumes: []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
				},
			}
			_, err := client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
			return err
		})
	}
	return g.Wait()
}
