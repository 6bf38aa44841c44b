package tests

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// inputCaches are the warm input caches' claims in ns.
func inputCaches(t *testing.T, ns string) []corev1.PersistentVolumeClaim {
	t.Helper()
	claims, err := testCluster.Client.CoreV1().PersistentVolumeClaims(ns).List(context.Background(),
		metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=kubectl-concourse,concourse-ci.org/volume-type=input-cache"})
	if err != nil {
		t.Fatal(err)
	}
	return claims.Items
}

// executeCached runs listingTask on src, checks that the task saw exactly
// src and that the cache was used (nothing said), and returns its stderr.
func executeCached(t *testing.T, ns, src, then string) {
	t.Helper()
	got, r := executeListing(t, ns, src, then)
	if want := inputListing(t, src); got != want {
		t.Errorf("the task saw:\n%s\nwant:\n%s", got, want)
	}
	if strings.Contains(r.stderr, "warning") {
		t.Errorf("stderr: %s", r.stderr)
	}
}

func TestExecuteWarmInputCacheIsExact(t *testing.T) {
	onEachNodeKind(t, testExecuteWarmInputCacheIsExact)
}

// The task sees exactly the local tree on every run: cold, unchanged after
// a task that changed its input (it uses the cache's tree in place: every
// change it can make is repaired by the next run), after edits, deletions,
// mode changes and a symlink replaced, and after a write into the cache
// behind its back. --no-cache makes no claim.
func testExecuteWarmInputCacheIsExact(t *testing.T, ns string) {
	src := inputTree(t)
	if got, _ := executeListing(t, ns, src, "", "--no-cache"); got != inputListing(t, src) {
		t.Errorf("--no-cache: the task saw:\n%s", got)
	}
	if claims := inputCaches(t, ns); len(claims) != 0 {
		t.Fatalf("--no-cache made %d claims", len(claims))
	}
	executeCached(t, ns, src, "echo changed by the task >main.go; rm run.sh; chmod 600 rel; mkdir made; ln -s x pkg/new; "+
		"mv pkg/deep/a.go pkg/moved.go; touch -d 2001-01-01 secret.key; chmod 700 pkg; chmod 777 empty; echo added >empty/added; "+
		"rm abs; mkdir abs")
	executeCached(t, ns, src, "")

	mustWrite(t, filepath.Join(src, "pkg", "deep", "a.go"), []byte("package deep // edited\n"), 0o640)
	mustRemove(t, filepath.Join(src, "secret.key"))
	if err := os.Chmod(filepath.Join(src, "run.sh"), 0o700); err != nil {
		t.Fatal(err)
	}
	mustRemove(t, filepath.Join(src, "rel"))
	mustSymlink(t, "main.go", filepath.Join(src, "rel"))
	mustWrite(t, filepath.Join(src, "new.txt"), []byte("new\n"), 0o644)
	if err := os.Remove(filepath.Join(src, "empty")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(src, "other", "empty"), 0o700); err != nil {
		t.Fatal(err)
	}
	executeCached(t, ns, src, "")

	claims := inputCaches(t, ns)
	if len(claims) != 1 {
		t.Fatalf("%d claims after runs one at a time, want 1", len(claims))
	}
	// Behind the plugin's back: the same size with other bytes, a new
	// file, a mode.
	tamper := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "tamper", Namespace: ns}, Spec: corev1.PodSpec{
		RestartPolicy: corev1.RestartPolicyNever,
		Containers: []corev1.Container{{Name: "main", Image: "busybox", Command: []string{"sh", "-c",
			"cd /c/tree && printf 'package XXXX\\n' >main.go && echo stray >stray && chmod 777 new.txt"},
			VolumeMounts: []corev1.VolumeMount{{Name: "c", MountPath: "/c"}}}},
		Volumes: []corev1.Volume{{Name: "c", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claims[0].Name}}}},
	}}
	createPod(t, tamper, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	if err := testCluster.Client.CoreV1().Pods(ns).Delete(context.Background(), "tamper", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	executeCached(t, ns, src, "")
	waitNothingLeft(t, ns)

	// volumes lists the cache; gc keeps it while it is fresh, and removes
	// it once it has not been used for --caches-unused-for.
	r := run(t, "", "kubectl", "concourse", "volumes", "-n", ns)
	if r.exitCode != 0 || !strings.Contains(r.stdout, "input-cache") || !strings.Contains(r.stdout, claims[0].Name) {
		t.Errorf("volumes: exit %d:\n%s%s", r.exitCode, r.stdout, r.stderr)
	}
	for _, age := range []string{"7d", "0"} {
		if r := run(t, "", "kubectl", "concourse", "gc", "-n", ns, "--caches-unused-for", age); r.exitCode != 0 {
			t.Fatalf("gc --caches-unused-for %s: exit %d: %s", age, r.exitCode, r.stderr)
		}
		// A deleted claim goes once the protection controller has seen
		// that no pod uses it.
		want := map[string]int{"7d": 1, "0": 0}[age]
		deadline := time.Now().Add(30 * time.Second)
		for n := len(inputCaches(t, ns)); n != want; n = len(inputCaches(t, ns)) {
			if time.Now().After(deadline) {
				t.Fatalf("after gc --caches-unused-for %s: %d caches, want %d", age, n, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

func TestExecuteBackgroundRunHoldsItsCache(t *testing.T) {
	onEachNodeKind(t, testExecuteBackgroundRunHoldsItsCache)
}

// A -b run's task uses its cache's tree after the plugin has returned: a
// run meanwhile takes another slot, and the slot is free again once that
// task has ended.
func testExecuteBackgroundRunHoldsItsCache(t *testing.T, ns string) {
	src := inputTree(t)
	if r := execute(t, ns, "-b", "-c", listingTask(t, "sleep 6"), "-i", "src="+src); r.exitCode != 0 {
		t.Fatalf("execute -b: exit %d\n%s%s", r.exitCode, r.stdout, r.stderr)
	}
	claims := inputCaches(t, ns)
	if len(claims) != 1 || claims[0].Annotations["kubectl-concourse.dev/lease"] == "" {
		t.Fatalf("after execute -b: %d claims, want 1 still leased", len(claims))
	}
	held := claims[0].Name
	executeCached(t, ns, src, "")
	used := map[string]string{}
	for _, c := range inputCaches(t, ns) {
		used[c.Name] = c.Annotations["kubectl-concourse.dev/last-used"]
	}
	if len(used) != 2 {
		t.Fatalf("%d claims after a run beside the -b run's task, want 2", len(used))
	}
	pods, err := testCluster.Client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("pods: %v, %v; want the -b run's", pods, err)
	}
	waitPod(t, ns, pods.Items[0].Name, func(p *corev1.Pod) bool {
		for _, c := range p.Status.ContainerStatuses {
			if c.Name == "task" && c.State.Terminated != nil {
				return true
			}
		}
		return false
	})
	time.Sleep(time.Second) // last-used is to the second
	executeCached(t, ns, src, "")
	for _, c := range inputCaches(t, ns) {
		if changed := c.Annotations["kubectl-concourse.dev/last-used"] != used[c.Name]; changed != (c.Name == held) {
			t.Errorf("once the -b run's task ended, claim %s used again: %v; want only %s", c.Name, changed, held)
		}
	}
	if err := testCluster.Client.CoreV1().Pods(ns).Delete(context.Background(), pods.Items[0].Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitNothingLeft(t, ns)
}

func TestExecuteConcurrentRunsOfOneInputNeverShareACache(t *testing.T) {
	onEachNodeKind(t, testExecuteConcurrentRunsOfOneInputNeverShareACache)
}

// Two executes of one input at once take two slots; each task sees the
// local tree, and so do the next ones, whichever slot they take.
func testExecuteConcurrentRunsOfOneInputNeverShareACache(t *testing.T, ns string) {
	src := inputTree(t)
	together := func() {
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// At once: runs in one millisecond plan one build ID,
				// and the later one takes the next.
				executeCached(t, ns, src, "sleep 3")
			}()
		}
		wg.Wait()
	}
	together()
	if claims := inputCaches(t, ns); len(claims) != 2 {
		t.Errorf("%d claims after two runs at once, want 2", len(claims))
	}
	mustWrite(t, filepath.Join(src, "main.go"), []byte("package main // again\n"), 0o644)
	together()
	for _, c := range inputCaches(t, ns) {
		if lease := c.Annotations["kubectl-concourse.dev/lease"]; lease != "" {
			t.Errorf("claim %s still leased: %q", c.Name, lease)
		}
	}
	waitNothingLeft(t, ns)
}

// With no default StorageClass, execute says so in one line and uploads in
// full. It changes the cluster's default class for its duration.
func TestExecuteWithoutStorageClassUploadsInFull(t *testing.T) {
	ns := testCluster.Namespace(t)
	ctx := context.Background()
	const key = "storageclass.kubernetes.io/is-default-class"
	set := func(v string) {
		patch := `{"metadata":{"annotations":{"` + key + `":"` + v + `"}}}`
		if _, err := testCluster.Client.StorageV1().StorageClasses().Patch(ctx, "standard", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	set("false")
	t.Cleanup(func() { set("true") })
	src := inputTree(t)
	got, r := executeListing(t, ns, src, "")
	if want := inputListing(t, src); got != want {
		t.Errorf("the task saw:\n%s\nwant:\n%s", got, want)
	}
	want := "warning: no warm input cache: the cluster has no default StorageClass; uploading the inputs in full\n"
	if strings.Count(r.stderr, "warning") != 1 || !strings.Contains(r.stderr, want) {
		t.Errorf("stderr:\n%s\nwant one line: %s", r.stderr, want)
	}
	if claims := inputCaches(t, ns); len(claims) != 0 {
		t.Errorf("%d claims left", len(claims))
	}
	waitNothingLeft(t, ns)
}

// A user who may not use claims gets one line and a full upload.
func TestExecuteWithoutClaimRightsUploadsInFull(t *testing.T) {
	ns := testCluster.Namespace(t)
	kubeconfig := userWithRole(t, ns, "execute-no-claims", executeOnlyRules...)
	ctx := context.Background()
	src := inputTree(t)
	task := listingTask(t, "")
	want := "warning: no warm input cache: you may not get persistentvolumeclaims in namespace " + ns + "; uploading the inputs in full\n"
	var r result
	out := filepath.Join(t.TempDir(), "out")
	deadline := time.Now().Add(20 * time.Second) // bindings take effect asynchronously
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		cmd := testCluster.Command(cctx, "kubectl", "concourse", "execute", "-n", ns, "-c", task, "-i", "src="+src, "-o", "out="+out)
		cmd.Env = append(cmd.Env, "KUBECONFIG="+kubeconfig)
		r = runCmd(t, cmd, "")
		cancel()
		if !strings.Contains(r.stderr, `"create" on "pods"`) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if r.exitCode != 0 || strings.Count(r.stderr, "warning") != 1 || !strings.Contains(r.stderr, want) {
		t.Fatalf("exit %d, stderr:\n%s\nwant 0 and one line: %s", r.exitCode, r.stderr, want)
	}
	if got, _ := os.ReadFile(filepath.Join(out, "listing")); string(got) != inputListing(t, src) {
		t.Errorf("the task saw:\n%s\nwant:\n%s", got, inputListing(t, src))
	}
	waitNothingLeft(t, ns)
}

func TestExecuteAsAnotherUserOwnsItsInput(t *testing.T) {
	onEachNodeKind(t, testExecuteAsAnotherUserOwnsItsInput)
}

// A task with run.user 1000 gets its input whole, uncached (said in one
// line), as its own: it may write into it, as in Concourse.
func testExecuteAsAnotherUserOwnsItsInput(t *testing.T, ns string) {
	src := t.TempDir()
	mustWrite(t, filepath.Join(src, "main.go"), []byte("package main\n"), 0o644)
	task := writeTask(t, "platform: linux\ninputs: [{name: src}]\nrun: {user: '1000', path: sh, args: [-c, 'id -u; echo more >>src/main.go && mkdir src/made && cat src/main.go']}\n")
	for range 2 {
		r := execute(t, ns, "-c", task, "--image", "busybox", "-i", "src="+src)
		if r.exitCode != 0 || !strings.Contains(r.stdout, "1000\npackage main\nmore\n") {
			t.Fatalf("execute as user 1000: exit %d\nstdout:\n%s\nstderr:\n%s", r.exitCode, r.stdout, r.stderr)
		}
		want := "warning: no warm input cache: the task runs as user 1000 (run.user), and a cache's files are root's; uploading the inputs in full\n"
		if r.stderr != want {
			t.Errorf("stderr %q, want %q", r.stderr, want)
		}
	}
	if claims := inputCaches(t, ns); len(claims) != 0 {
		t.Errorf("%d claims made for a task as user 1000", len(claims))
	}
}
