package tests

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The fly parity of issue 11, end to end: each test pins one rule of fly's
// source on the real cluster.

// agentNode is the test cluster's node that really runs pods.
const agentNode = "node-1"

// A failed build whose task exited 42 exits 42, as fly's watch
// (fly/eventstream/render.go:74-75: the task's exit status wins).
func TestParityWatchExitStatus(t *testing.T) {
	ns := testCluster.Namespace(t)
	createPod(t, viewPod(ns, "b1-unit", viewBuildLabels("main", "exit42", "1", "4201", "unit"), nil,
		viewContainer("main", "sh", "-c", "echo about to fail; exit 42")), finished)
	r := run(t, "", "kubectl", "concourse", "watch", "-n", ns, "-j", "main/exit42", "-b", "1")
	if r.exitCode != 42 || !strings.Contains(r.stdout, "about to fail\n") || !strings.HasSuffix(r.stdout, "failed\n") {
		t.Errorf("watch of a task that exited 42: exit %d, want 42\n%s%s", r.exitCode, r.stdout, r.stderr)
	}
	if r.stderr != "" {
		t.Errorf("watch printed an error for a build's own status: %s", r.stderr)
	}
	// -t prefixes every line with a local HH:MM:SS and two spaces.
	r = run(t, "", "kubectl", "concourse", "w", "-n", ns, "-j", "main/exit42", "-b", "1", "-t")
	for _, line := range strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n") {
		if len(line) < 10 || line[2] != ':' || line[5] != ':' || line[8:10] != "  " {
			t.Errorf("watch -t: line %q has no timestamp\n%s", line, r.stdout)
		}
	}
}

// builds -c 2 lists two builds, newest first; a job no pod names is fly's
// "pipeline/job not found" and exit 1 (fly/commands/builds.go:167-169).
func TestParityBuilds(t *testing.T) {
	ns := testCluster.Namespace(t)
	for _, b := range []struct{ name, id string }{{"1", "7101"}, {"2", "7102"}, {"3", "7103"}} {
		createPod(t, viewPod(ns, "count-"+b.name, viewBuildLabels("main", "count", b.name, b.id, "unit"), nil,
			viewContainer("main", "true")), finished)
	}
	items := viewItems(t, "bs", "-n", ns, "-j", "main/count", "-c", "2")
	if len(items) != 2 || items[0]["id"] != "7103" || items[1]["id"] != "7102" {
		t.Errorf("builds -c 2: %v, want builds 7103 and 7102", items)
	}
	r := run(t, "", "kubectl", "concourse", "builds", "-n", ns, "-j", "main/nosuchjob")
	if r.exitCode != 1 || !strings.Contains(r.stderr, "pipeline/job not found") {
		t.Errorf("builds of an unknown job: exit %d, want 1 and fly's error\n%s%s", r.exitCode, r.stdout, r.stderr)
	}
	r = run(t, "", "kubectl", "concourse", "builds", "-n", ns, "--json", "-c", "1")
	var fly []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &fly); err != nil || len(fly) != 1 {
		t.Fatalf("builds --json -c 1: %v\n%s%s", err, r.stdout, r.stderr)
	}
	for _, field := range []string{"id", "team_name", "name", "status", "api_url", "job_name", "pipeline_name", "start_time", "end_time"} {
		if _, ok := fly[0][field]; !ok {
			t.Errorf("builds --json lacks atc.Build's %s: %v", field, fly[0])
		}
	}
}

func cachePVC(t *testing.T, ns, name, volumeType string, labels, annotations map[string]string) {
	t.Helper()
	l := map[string]string{"concourse-ci.org/volume-type": volumeType, "concourse-ci.org/team": "main"}
	for k, v := range labels {
		l[k] = v
	}
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: l, Annotations: annotations},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
	}
	if _, err := testCluster.Client.CoreV1().PersistentVolumeClaims(ns).Create(context.Background(), claim, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// clear-task-cache deletes exactly one step's cache among look-alikes: the
// same step of another job or pipeline, another step of the job, a
// pipeline whose encoded label collides, a resource cache.
func TestParityClearTaskCache(t *testing.T) {
	ns := testCluster.Namespace(t)
	pipeline := "concourse-ci.org/pipeline"
	step := func(p, job, s string) map[string]string {
		return map[string]string{pipeline: p, "concourse-ci.org/job": job, "concourse-ci.org/step-name": s}
	}
	original := map[string]string{pipeline: viewsLongPipeline}
	cachePVC(t, ns, "target", "task-cache", step(viewsLongPipelineEncoded, "unit", "test"), original)
	cachePVC(t, ns, "other-step", "task-cache", step(viewsLongPipelineEncoded, "unit", "lint"), original)
	cachePVC(t, ns, "other-job", "task-cache", step(viewsLongPipelineEncoded, "deploy", "test"), original)
	cachePVC(t, ns, "other-pipeline", "task-cache", step("main", "unit", "test"), nil)
	cachePVC(t, ns, "collision", "task-cache", step(viewsLongPipelineEncoded, "unit", "test"),
		map[string]string{pipeline: "another pipeline whose label encodes alike"})
	cachePVC(t, ns, "resource", "resource", map[string]string{pipeline: viewsLongPipelineEncoded, "concourse-ci.org/resource": "test"}, original)

	// Without a terminal and without --non-interactive nothing is deleted.
	r := run(t, "", "kubectl", "concourse", "clear-task-cache", "-n", ns, "-j", viewsLongPipeline+"/unit", "-s", "test")
	if r.exitCode != 1 || !strings.Contains(r.stderr, "--non-interactive") {
		t.Errorf("clear-task-cache without a terminal: exit %d\n%s%s", r.exitCode, r.stdout, r.stderr)
	}
	r = run(t, "", "kubectl", "concourse", "ctc", "-n", ns, "-j", viewsLongPipeline+"/unit", "-s", "test", "--non-interactive")
	if r.exitCode != 0 || !strings.Contains(r.stdout, "persistentvolumeclaim/target deleted\n") || !strings.HasSuffix(r.stdout, "1 caches removed\n") {
		t.Errorf("clear-task-cache: exit %d\n%s%s", r.exitCode, r.stdout, r.stderr)
	}
	pvcs, err := testCluster.Client.CoreV1().PersistentVolumeClaims(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	left := map[string]bool{}
	for _, p := range pvcs.Items {
		left[p.Name] = p.DeletionTimestamp == nil
	}
	for _, name := range []string{"other-step", "other-job", "other-pipeline", "collision", "resource"} {
		if !left[name] {
			t.Errorf("clear-task-cache deleted the look-alike %s", name)
		}
	}
	if _, ok := left["target"]; ok {
		t.Error("clear-task-cache returned before the target cache was gone")
	}
}

func workerState(t *testing.T, node string) string {
	t.Helper()
	for _, it := range viewItems(t, "workers") {
		if it["metadata"].(map[string]any)["name"] == node {
			return it["state"].(string)
		}
	}
	t.Fatalf("workers shows no %s", node)
	return ""
}

// land-worker cordons without evicting: landing while a step pod runs,
// landed once it ends (atc/db/worker_lifecycle.go:148-176), the pod left
// to finish. prune-worker refuses a running worker with fly's message and
// removes a stalled one.
func TestParityLandAndPruneWorker(t *testing.T) {
	ns := testCluster.Namespace(t)
	r := run(t, "", "kubectl", "concourse", "prune-worker", "-w", agentNode)
	if r.exitCode != 1 || !strings.Contains(r.stderr, "cannot prune running worker") {
		t.Errorf("prune-worker of a running worker: exit %d\n%s%s", r.exitCode, r.stdout, r.stderr)
	}

	step := viewPod(ns, "landing-1", viewBuildLabels("main", "land", "1", "8101", "unit"), nil,
		viewContainer("main", "sh", "-c", "sleep 4; echo done"))
	step.Spec.NodeName = agentNode
	createPod(t, step, running)
	t.Cleanup(func() { kubectl(t, "uncordon", agentNode) })
	r = run(t, "", "kubectl", "concourse", "lw", "-w", agentNode)
	if r.exitCode != 0 || r.stdout != "landed '"+agentNode+"'\n" {
		t.Fatalf("land-worker: exit %d\n%s%s", r.exitCode, r.stdout, r.stderr)
	}
	if s := workerState(t, agentNode); s != "landing" {
		t.Errorf("a cordoned worker with a running step is %s, want landing", s)
	}
	r = run(t, "", "kubectl", "concourse", "pw", "-w", agentNode)
	if r.exitCode != 1 || !strings.Contains(r.stderr, "cannot prune landing worker") {
		t.Errorf("prune-worker of a landing worker: exit %d\n%s%s", r.exitCode, r.stdout, r.stderr)
	}
	ended := waitPod(t, ns, "landing-1", finished)
	if ended.Status.Phase != corev1.PodSucceeded || ended.DeletionTimestamp != nil {
		t.Errorf("the step on the landing worker was not left to finish: %+v", ended.Status)
	}
	deadline := time.Now().Add(time.Minute)
	for s := workerState(t, agentNode); s != "landed"; s = workerState(t, agentNode) {
		if time.Now().After(deadline) {
			t.Fatalf("the worker stays %s after its last step ended, want landed", s)
		}
		time.Sleep(500 * time.Millisecond)
	}

	stalled := "parity-stalled-" + ns
	viewNode(t, stalled, corev1.ConditionFalse, false, map[string]string{"kubernetes.io/os": "linux"})
	r = run(t, "", "kubectl", "concourse", "prune-worker", "-w", stalled)
	if r.exitCode != 0 || r.stdout != "pruned '"+stalled+"'\n" {
		t.Errorf("prune-worker of a stalled worker: exit %d\n%s%s", r.exitCode, r.stdout, r.stderr)
	}
	if _, err := testCluster.Client.CoreV1().Nodes().Get(context.Background(), stalled, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the stalled node is still there: %v", err)
	}
}

// abort-build deletes only the running step pods of that build.
func TestParityAbortBuild(t *testing.T) {
	ns := testCluster.Namespace(t)
	createPod(t, viewPod(ns, "b7-fetch", viewBuildLabels("main", "abort", "7", "8707", "fetch"), nil,
		viewContainer("main", "true")), finished)
	for _, p := range []*corev1.Pod{
		viewPod(ns, "b7-unit", viewBuildLabels("main", "abort", "7", "8707", "unit"), nil, viewContainer("main", "sleep", "3600")),
		viewPod(ns, "b7-lint", viewBuildLabels("main", "abort", "7", "8707", "lint"), nil, viewContainer("main", "sleep", "3600")),
		viewPod(ns, "b8-unit", viewBuildLabels("main", "abort", "8", "8708", "unit"), nil, viewContainer("main", "sleep", "3600")),
	} {
		createPod(t, p, running)
	}
	r := run(t, "", "kubectl", "concourse", "ab", "-n", ns, "-j", "main/abort", "-b", "7", "-y")
	want := "pod/b7-lint deleted\npod/b7-unit deleted\nbuild successfully aborted\n"
	if r.exitCode != 0 || !strings.HasSuffix(r.stdout, want) {
		t.Errorf("abort-build: exit %d, want it to end with\n%s\ngot:\n%s%s", r.exitCode, want, r.stdout, r.stderr)
	}
	for name, kept := range map[string]bool{"b7-unit": false, "b7-lint": false, "b7-fetch": true, "b8-unit": true} {
		p, err := testCluster.Client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		gone := apierrors.IsNotFound(err) || (err == nil && p.DeletionTimestamp != nil)
		if kept == gone {
			t.Errorf("pod %s: deleted %v, want %v (err %v)", name, gone, !kept, err)
		}
	}
}
