package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The long non-ASCII pipeline of the views' fixtures and its label value,
// computed by hand from the contract's encoding (docs/labels.md).
const (
	viewsLongPipeline        = "überpipeline-ñandú-非常に長いパイプライン名-that-goes-on-and-on-past-sixty-three"
	viewsLongPipelineEncoded = "berpipeline--and---------------that-goes-on-and-on-4e9d1efd0b"
)

// viewPod is a pod of the label contract; labels hold label values as
// stored (already encoded), annotations the originals where needed.
func viewPod(ns, name string, labels, annotations map[string]string, containers ...corev1.Container) *corev1.Pod {
	var grace int64 = 1
	l := map[string]string{"app.kubernetes.io/managed-by": "concourse"}
	for k, v := range labels {
		l[k] = v
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: l, Annotations: annotations},
		Spec: corev1.PodSpec{TerminationGracePeriodSeconds: &grace, RestartPolicy: corev1.RestartPolicyNever,
			Containers: containers},
	}
}

func viewBuildLabels(pipeline, job, build, id, step string) map[string]string {
	l := map[string]string{"concourse-ci.org/team": "main", "concourse-ci.org/pipeline": pipeline,
		"concourse-ci.org/build-name": build, "concourse-ci.org/build-id": id, "concourse-ci.org/step-name": step,
		"concourse-ci.org/step-type": "task", "concourse-ci.org/attempt": "1"}
	if job != "" {
		l["concourse-ci.org/job"] = job
	}
	return l
}

func viewContainer(name string, command ...string) corev1.Container {
	return corev1.Container{Name: name, Image: "busybox", Command: command}
}

// viewNode creates a Node that no agent runs, in the given state, and
// removes it when the test ends.
func viewNode(t *testing.T, name string, ready corev1.ConditionStatus, cordoned bool, labels map[string]string) {
	t.Helper()
	ctx := context.Background()
	nodes := testCluster.Client.CoreV1().Nodes()
	n, err := nodes.Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.NodeSpec{Unschedulable: cordoned, Taints: []corev1.Taint{
			{Key: "testcluster.kubectl-concourse.dev/synthetic", Value: "true", Effect: corev1.TaintEffectNoSchedule}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create node %s: %v", name, err)
	}
	t.Cleanup(func() { _ = nodes.Delete(context.Background(), name, metav1.DeleteOptions{}) })
	// Controllers touch new nodes too: set the status on the latest version.
	for attempt := 0; ; attempt++ {
		err := setViewNodeStatus(ctx, n, ready)
		if err == nil {
			return
		}
		if attempt == 10 {
			t.Fatalf("node %s status: %v", name, err)
		}
		time.Sleep(100 * time.Millisecond)
		if n, err = nodes.Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Fatalf("get node %s: %v", name, err)
		}
	}
}

func setViewNodeStatus(ctx context.Context, n *corev1.Node, ready corev1.ConditionStatus) error {
	now := metav1.Now()
	n.Status = corev1.NodeStatus{
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready, Reason: "Synthetic",
			LastHeartbeatTime: now, LastTransitionTime: now}},
		NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.37.2-synthetic", OperatingSystem: "linux"},
		Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"),
			corev1.ResourceMemory: resource.MustParse("4Gi"), corev1.ResourcePods: resource.MustParse("110")},
	}
	_, err := testCluster.Client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
	return err
}

// viewItems runs a view with -o json and returns its items.
func viewItems(t *testing.T, args ...string) []map[string]any {
	t.Helper()
	r := run(t, "", "kubectl", append([]string{"concourse"}, append(args, "-o", "json")...)...)
	if r.exitCode != 0 {
		t.Fatalf("kubectl concourse %v: exit %d\n%s%s", args, r.exitCode, r.stdout, r.stderr)
	}
	var list struct{ Items []map[string]any }
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("kubectl concourse %v -o json: %v\n%s", args, err, r.stdout)
	}
	return list.Items
}

// viewItem finds the item named name (metadata.name).
func viewItem(t *testing.T, items []map[string]any, name string) map[string]any {
	t.Helper()
	for _, it := range items {
		if it["metadata"].(map[string]any)["name"] == name {
			return it
		}
	}
	t.Fatalf("no item %q in %v", name, items)
	return nil
}

func wantViewFields(t *testing.T, it map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		got, _ := json.Marshal(it[k])
		w, _ := json.Marshal(v)
		if !bytes.Equal(got, w) {
			t.Errorf("%v: %s = %s, want %s", it["metadata"], k, got, w)
		}
	}
}

func TestViews(t *testing.T) {
	onEachNodeKind(t, testViews)
}

func testViews(t *testing.T, ns string) {
	cordoned, notReady := "views-cordoned-"+ns, "views-notready-"+ns
	viewNode(t, cordoned, corev1.ConditionTrue, true, map[string]string{
		"kubernetes.io/os": "linux", "concourse-ci.org/team": "main", "tags.concourse-ci.org/gpu": "true"})
	viewNode(t, notReady, corev1.ConditionFalse, false, map[string]string{"kubernetes.io/os": "linux"})

	// A Tekton-layout pod: one step per step-* container; clone exits, test runs.
	tekton := viewPod(ns, "deploy-7", viewBuildLabels("ops", "deploy", "7", "9007", "deploy"), nil,
		viewContainer("step-clone", "sh", "-c", "echo cloned"), viewContainer("step-test", "sleep", "3600"))
	tekton.Labels["tekton.dev/taskRun"] = "deploy-7"
	tekton.Spec.Volumes = []corev1.Volume{{Name: "workspace", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	for i := range tekton.Spec.Containers {
		tekton.Spec.Containers[i].VolumeMounts = []corev1.VolumeMount{{Name: "workspace", MountPath: "/workspace"}}
	}
	// A check container: no job, type check, a resource.
	check := viewPod(ns, "repo-check", map[string]string{"concourse-ci.org/team": "main", "concourse-ci.org/pipeline": "ops",
		"concourse-ci.org/step-type": "check", "concourse-ci.org/resource": "repo", "concourse-ci.org/build-id": "9001"}, nil,
		viewContainer("check", "sh", "-c", "echo checked"))
	// A pipeline whose name is no label value: encoded, the original annotated.
	long := viewPod(ns, "long-1", viewBuildLabels(viewsLongPipelineEncoded, "unit", "1", "9008", "build"),
		map[string]string{"concourse-ci.org/pipeline": viewsLongPipeline}, viewContainer("main", "sleep", "3600"))
	// A pod bound to the cordoned node, which nothing runs: it counts there.
	stuck := viewPod(ns, "stuck-1", viewBuildLabels("ops", "deploy", "6", "9006", "deploy"), nil, viewContainer("main", "true"))
	stuck.Spec.NodeName = cordoned
	stuck.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}

	createPod(t, tekton, func(p *corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) == 2 && p.Status.ContainerStatuses[0].State.Terminated != nil &&
			p.Status.ContainerStatuses[1].State.Running != nil
	})
	createPod(t, check, finished)
	createPod(t, long, running)
	createPod(t, stuck, func(*corev1.Pod) bool { return true })
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "unit-cache", Labels: map[string]string{
			"concourse-ci.org/volume-type": "task-cache", "concourse-ci.org/team": "main", "concourse-ci.org/pipeline": "ops",
			"concourse-ci.org/job": "deploy", "concourse-ci.org/step-name": "test", "concourse-ci.org/handle": "cache-1"}},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
	}
	if _, err := testCluster.Client.CoreV1().PersistentVolumeClaims(ns).Create(context.Background(), claim, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("workers", func(t *testing.T) {
		items := viewItems(t, "workers")
		wantViewFields(t, viewItem(t, items, cordoned), map[string]any{"state": "landing", "team": "main", "tags": []string{"gpu"}, "containers": 1})
		wantViewFields(t, viewItem(t, items, notReady), map[string]any{"state": "stalled", "version": "v1.37.2-synthetic"})
		r := run(t, "", "kubectl", "concourse", "ws", "-d")
		if r.exitCode != 0 || !strings.Contains(r.stdout, "TAINTS") || !strings.Contains(r.stdout, cordoned) {
			t.Errorf("workers -d: exit %d\n%s%s", r.exitCode, r.stdout, r.stderr)
		}
	})
	t.Run("containers", func(t *testing.T) {
		items := viewItems(t, "containers", "-n", ns)
		wantViewFields(t, viewItem(t, items, "deploy-7/clone"), map[string]any{"container": "step-clone", "state": "exited 0", "step": "clone"})
		wantViewFields(t, viewItem(t, items, "deploy-7/test"), map[string]any{"container": "step-test", "state": "running"})
		wantViewFields(t, viewItem(t, items, "repo-check"), map[string]any{"type": "check", "resource": "repo", "state": "exited 0"})
		wantViewFields(t, viewItem(t, items, "long-1"), map[string]any{"pipeline": viewsLongPipeline, "state": "running"})
		wantViewFields(t, viewItem(t, items, "stuck-1"), map[string]any{"worker": cordoned, "state": "pending"})
		if got := viewItems(t, "cs", "-n", ns, "--pipeline", viewsLongPipeline); len(got) != 1 {
			t.Errorf("containers --pipeline LONG: %d items, want 1", len(got))
		}
	})
	t.Run("volumes", func(t *testing.T) {
		items := viewItems(t, "volumes", "-n", ns)
		wantViewFields(t, viewItem(t, items, "cache-1"), map[string]any{"type": "task-cache", "identifier": "ops/deploy/test", "size": "1Gi"})
		wantViewFields(t, viewItem(t, items, "deploy-7/workspace"), map[string]any{"type": "container",
			"identifier": "deploy-7", "detailedIdentifier": "container:deploy-7,path:/workspace"})
	})
	t.Run("builds", func(t *testing.T) {
		items := viewItems(t, "builds", "-n", ns)
		wantViewFields(t, viewItem(t, items, "9007"), map[string]any{"status": "started", "steps": []string{"clone", "test"}})
		wantViewFields(t, viewItem(t, items, "9001"), map[string]any{"status": "succeeded"})
		wantViewFields(t, viewItem(t, items, "9008"), map[string]any{"pipeline": viewsLongPipeline})
		r := run(t, "", "kubectl", "concourse", "builds", "-n", ns)
		if r.exitCode != 0 || !strings.HasPrefix(r.stdout, "ID ") || strings.Index(r.stdout, "9008") > strings.Index(r.stdout, "9001") {
			t.Errorf("builds: want newest first\n%s%s", r.stdout, r.stderr)
		}
	})
	t.Run("completion", func(t *testing.T) {
		for _, cmd := range []string{"containers", "watch", "hijack"} {
			r := run(t, "", "kubectl-concourse", "__complete", cmd, "-n", ns, "-j", "")
			for _, want := range []string{"ops/deploy\n", viewsLongPipeline + "/unit\n"} {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("__complete %s -j '': no %q in\n%s", cmd, want, r.stdout)
				}
			}
		}
		for _, tc := range []struct {
			args []string
			want string // the candidates, then cobra's directive line
		}{
			{[]string{"watch", "-j", "ops/deploy", "-b", ""}, "7\n6\n:4\n"},
			{[]string{"hijack", "-j", "ops/deploy", "-s", ""}, "clone\ndeploy\ntest\n:4\n"},
			{[]string{"hijack", "-c", ""}, "ops/repo\n:4\n"},
			{[]string{"builds", "--pipeline", "o"}, "ops\n:4\n"},
		} {
			r := run(t, "", "kubectl-concourse", append([]string{"__complete", tc.args[0], "-n", ns}, tc.args[1:]...)...)
			if !strings.HasPrefix(r.stdout, tc.want) {
				t.Errorf("__complete %v: got\n%s\nwant\n%s", tc.args, r.stdout, tc.want)
			}
		}
	})
}

// TestWatchFollowsSteps watches a build whose second step starts after the
// first one ends, then a failing build.
func TestWatchFollowsSteps(t *testing.T) {
	onEachNodeKindWhileWaiting(t, testWatchFollowsSteps)
}

func testWatchFollowsSteps(t *testing.T, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	createPod(t, viewPod(ns, "b1-fetch", viewBuildLabels("main", "unit", "1", "501", "fetch"), nil,
		viewContainer("main", "sh", "-c", "echo fetching; sleep 2; echo fetched")), func(*corev1.Pod) bool { return true })

	var out, errOut bytes.Buffer
	cmd := testCluster.Command(ctx, "kubectl", "concourse", "watch", "-n", ns, "-j", "main/unit", "-b", "1", "--settle", "8s")
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitPod(t, ns, "b1-fetch", finished)
	createPod(t, viewPod(ns, "b1-test", viewBuildLabels("main", "unit", "1", "501", "test"), nil,
		viewContainer("main", "sh", "-c", "echo testing; echo tested")), func(*corev1.Pod) bool { return true })
	err := cmd.Wait()
	if err != nil {
		t.Fatalf("watch: %v\n%s%s", err, out.String(), errOut.String())
	}
	want := []string{"==> task fetch\n", "fetching\n", "fetched\n", "==> task test\n", "testing\n", "tested\n", "succeeded\n"}
	rest := out.String()
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("watch output lacks %q (in order):\n%s\nstderr: %s", w, out.String(), errOut.String())
		}
		rest = rest[i+len(w):]
	}

	createPod(t, viewPod(ns, "b2-unit", viewBuildLabels("main", "unit", "2", "502", "unit"), nil,
		viewContainer("main", "sh", "-c", "echo broken; exit 3")), finished)
	waitLog(t, ns, "b2-unit", "main", "broken\n")
	// The failed task's own exit status is watch's, as fly's (fly/eventstream/render.go:74-75).
	// A failure's hooks may follow it: --settle is waited for them too.
	r := run(t, "", "kubectl", "concourse", "watch", "-n", ns, "-j", "main/unit", "--settle", "1s")
	if r.exitCode != 3 || !strings.Contains(r.stdout, "broken\n") || !strings.HasSuffix(r.stdout, "failed\n") {
		t.Errorf("watch of a failed build: exit %d, want the task's 3\n%s%s", r.exitCode, r.stdout, r.stderr)
	}
}

// viewOutput collects a running command's output for polling.
type viewOutput struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *viewOutput) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *viewOutput) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestViewsWatchRows follows `builds -w`: a build that appears after the
// listing gets a row, and another when its step ends.
func TestViewsWatchRows(t *testing.T) {
	onEachNodeKind(t, testViewsWatchRows)
}

func testViewsWatchRows(t *testing.T, ns string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out viewOutput
	cmd := testCluster.Command(ctx, "kubectl", "concourse", "builds", "-w", "-n", ns, "--no-headers")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitOutput := func(want ...string) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			s := out.String()
			found := true
			for _, w := range want {
				found = found && strings.Contains(s, w)
			}
			if found {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("builds -w: no line with %q in\n%s", want, s)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitOutput("No resources found")
	createPod(t, viewPod(ns, "b3-unit", viewBuildLabels("main", "unit", "3", "703", "unit"), nil,
		viewContainer("main", "sh", "-c", "sleep 2; exit 1")), func(*corev1.Pod) bool { return true })
	waitOutput("703 ", "started")
	waitOutput("703 ", "failed")
	cancel()
	_ = cmd.Wait() // killed: the view runs until interrupted
}
