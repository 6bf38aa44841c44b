package execute

import (
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// withDefaultClass is a fake cluster whose admission gives new claims the
// default StorageClass, as the DefaultStorageClass plugin does.
func withDefaultClass() *fake.Clientset {
	c := fake.NewClientset()
	c.PrependReactor("create", "persistentvolumeclaims", func(a k8stesting.Action) (bool, runtime.Object, error) {
		claim := a.(k8stesting.CreateAction).GetObject().(*corev1.PersistentVolumeClaim)
		class := "standard"
		claim.Spec.StorageClassName = &class
		return false, nil, nil
	})
	return c
}

func TestCacheLeases(t *testing.T) {
	now := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	client := withDefaultClass()
	leaser := func(holder string) *cacheLeaser {
		return &cacheLeaser{client: client, ns: "ns", user: "me@host", holder: holder, holdFor: time.Hour, now: func() time.Time { return now }}
	}
	size := func() int64 { return 0 }
	a, b := leaser("a"), leaser("b")
	leaseName := func(l *cacheLeaser) (string, error) {
		claim, err := l.lease(t.Context(), "repo", size)
		if claim == nil {
			return "", err
		}
		return claim.Name, err
	}
	first, err := leaseName(a)
	if err != nil || first != cacheClaimName("repo", "me@host", 0) {
		t.Fatalf("lease = %q, %v; want slot 0", first, err)
	}
	second, err := leaseName(b)
	if err != nil || second != cacheClaimName("repo", "me@host", 1) {
		t.Fatalf("a second run's lease = %q, %v; want slot 1", second, err)
	}
	if err := a.release(t.Context(), []string{first}); err != nil {
		t.Fatal(err)
	}
	if got, err := leaseName(leaser("c")); err != nil || got != first {
		t.Errorf("after the release, lease = %q, %v; want slot 0 again", got, err)
	}
	// b's lease expires: a run after that takes its slot.
	now = now.Add(2 * time.Hour)
	if got, err := leaseName(leaser("d")); err != nil || got != first {
		t.Errorf("after the leases expired, lease = %q, %v; want slot 0", got, err)
	}
	for i := range cacheSlots {
		leaser(string(rune('e'+i))).lease(t.Context(), "repo", size)
	}
	if got, err := leaseName(leaser("z")); err != nil || got != "" {
		t.Errorf("with every slot leased, lease = %q, %v; want none", got, err)
	}
}

// The task uses its cache in place: a lease holds while its pod's task may
// run, past its expiry (an execute -b has returned), and ends with the
// task; a lease whose pod is not there holds until it expires.
func TestCacheLeaseHeldByItsPod(t *testing.T) {
	now := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	client := withDefaultClass()
	leaser := func(holder, pod string) *cacheLeaser {
		return &cacheLeaser{client: client, ns: "ns", user: "me@host", holder: holder, pod: pod, holdFor: time.Hour, now: func() time.Time { return now }}
	}
	slot := func(l *cacheLeaser) string {
		t.Helper()
		claim, err := l.lease(t.Context(), "repo", func() int64 { return 0 })
		if err != nil || claim == nil {
			t.Fatalf("lease = %v, %v", claim, err)
		}
		return claim.Name
	}
	first := slot(leaser("a", "one-off-a"))
	if got := slot(leaser("b", "")); got == first {
		t.Fatalf("a second run took slot %s, held by a run whose pod is not made yet", got)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "one-off-a", Namespace: "ns"}, Status: corev1.PodStatus{Phase: corev1.PodRunning,
		ContainerStatuses: []corev1.ContainerStatus{{Name: taskContainer, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}}}
	if err := client.Tracker().Add(pod); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Hour) // past the expiry: the running task holds it
	if got := slot(leaser("c", "")); got == first {
		t.Errorf("a run took slot %s while the lease's task still ran", got)
	}
	pod.Status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}
	if err := client.Tracker().Update(corev1.SchemeGroupVersion.WithResource("pods"), pod, "ns"); err != nil {
		t.Fatal(err)
	}
	if got := slot(leaser("d", "")); got != first {
		t.Errorf("once the task ended, lease = %s, want %s", got, first)
	}
}

func TestCacheWithoutDefaultClass(t *testing.T) {
	client := fake.NewClientset()
	l := &cacheLeaser{client: client, ns: "ns", user: "me@host", holder: "a", holdFor: time.Hour, now: time.Now}
	_, err := l.lease(t.Context(), "repo", func() int64 { return 0 })
	var none errNoClaims
	if !errors.As(err, &none) || none.why != "the cluster has no default StorageClass" {
		t.Errorf("lease = %v, want no default StorageClass", err)
	}
	if claims, _ := client.CoreV1().PersistentVolumeClaims("ns").List(t.Context(), metav1.ListOptions{}); len(claims.Items) != 0 {
		t.Errorf("left %d claims", len(claims.Items))
	}
}

func TestCacheOnANodeTheBuildMayNotUse(t *testing.T) {
	client := withDefaultClass()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "win-1", Labels: map[string]string{corev1.LabelOSStable: "windows"}}}
	claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: cacheClaimName("repo", "me@host", 0), Namespace: "ns",
		Annotations: map[string]string{annotationSelectedNode: "win-1"}}}
	for _, obj := range []runtime.Object{node, claim} {
		if err := client.Tracker().Add(obj); err != nil {
			t.Fatal(err)
		}
	}
	var errOut strings.Builder
	o := &ExecuteOptions{}
	o.ErrOut, o.Client = &errOut, client
	b := oneOff{Namespace: "ns", Config: TaskConfig{Platform: "linux"}, Inputs: []input{{Name: "repo", Local: t.TempDir()}}}
	l := &cacheLeaser{client: client, ns: "ns", user: "me@host", holder: "a", holdFor: time.Hour, now: time.Now}
	if leased := o.leaseCaches(t.Context(), &b, l); len(leased) != 0 || b.Inputs[0].Cache != "" {
		t.Errorf("leased %v (input's cache %q), want none", leased, b.Inputs[0].Cache)
	}
	want := "warning: the warm cache of input repo is bound to node win-1, where this build may not run; uploading it in full\n"
	if errOut.String() != want {
		t.Errorf("said %q, want %q", errOut.String(), want)
	}
	got, err := client.CoreV1().PersistentVolumeClaims("ns").Get(t.Context(), claim.Name, metav1.GetOptions{})
	if err != nil || got.Annotations[selector.AnnotationLease] != "" {
		t.Errorf("the claim's lease after: %q, %v; want none", got.Annotations[selector.AnnotationLease], err)
	}
}

// A task that runs as another user than root gets no warm cache: its
// inputs are written as that user, and a cache's files are root's. No
// claim is touched; "root" and "0" keep it.
func TestCacheNotForATaskOfAnotherUser(t *testing.T) {
	for _, tt := range []struct {
		user   string
		cached bool
	}{{"1000", false}, {"root", true}, {"0", true}, {"", true}} {
		client := withDefaultClass()
		var errOut strings.Builder
		o := &ExecuteOptions{}
		o.ErrOut, o.Client = &errOut, client
		b := oneOff{Namespace: "ns", Config: TaskConfig{Platform: "linux", Run: RunConfig{Path: "true", User: tt.user}},
			Inputs: []input{{Name: "repo", Local: t.TempDir()}}}
		l := &cacheLeaser{client: client, ns: "ns", user: "me@host", holder: "a", holdFor: time.Hour, now: time.Now}
		leased := o.leaseCaches(t.Context(), &b, l)
		if got := len(leased) == 1 && b.Inputs[0].Cache != ""; got != tt.cached {
			t.Errorf("run.user %q: leased %v, want cached %v (said %q)", tt.user, leased, tt.cached, errOut.String())
		}
		if !tt.cached {
			want := "warning: no warm input cache: the task runs as user 1000 (run.user), and a cache's files are root's; uploading the inputs in full\n"
			if errOut.String() != want {
				t.Errorf("said %q, want %q", errOut.String(), want)
			}
			if claims, _ := client.CoreV1().PersistentVolumeClaims("ns").List(t.Context(), metav1.ListOptions{}); len(claims.Items) != 0 {
				t.Errorf("run.user %q: %d claims made", tt.user, len(claims.Items))
			}
		}
	}
}

// The task mounts a cached input's tree in place (the claim's tree, as a
// subPath) and the inputs container the claim's root; an input at an
// output's path shares its emptyDir and is not cached; a task's own cache
// volume keeps its name.
func TestCachedInputMounts(t *testing.T) {
	b := oneOff{Namespace: "ns", BuildID: "1", Config: TaskConfig{Platform: "linux",
		Inputs:  []Input{{Name: "src"}, {Name: "both"}},
		Outputs: []Output{{Name: "both"}},
		Caches:  []Cache{{Path: "gocache"}}},
		Inputs: []input{{Name: "src", Cache: "claim-src"}, {Name: "both"}}}
	if b.sharesPath("src") || !b.sharesPath("both") {
		t.Errorf("sharesPath(src), sharesPath(both) = %v, %v; want false, true", b.sharesPath("src"), b.sharesPath("both"))
	}
	pod, _ := b.objects()
	mounts := func(name string) map[string]corev1.VolumeMount {
		m := map[string]corev1.VolumeMount{}
		for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
			if c.Name == name {
				for _, vm := range c.VolumeMounts {
					m[vm.MountPath] = vm
				}
			}
		}
		return m
	}
	src := artifactPath(workingDir, "src", "")
	if got := mounts(taskContainer)[src]; got.Name != "input-cache-0" || got.SubPath != "tree" {
		t.Errorf("the task mounts %s as %+v, want the claim's tree", src, got)
	}
	if got, ok := mounts(inputsContainer)[src]; ok {
		t.Errorf("the inputs container mounts %s (%+v): it writes the claim", src, got)
	}
	if got := mounts(inputsContainer)[cacheMount(0)]; got.Name != "input-cache-0" || got.SubPath != "" {
		t.Errorf("the inputs container mounts %s as %+v, want the claim's root", cacheMount(0), got)
	}
	names := map[string]bool{}
	for _, v := range pod.Spec.Volumes {
		if names[v.Name] {
			t.Errorf("two volumes named %s", v.Name)
		}
		names[v.Name] = true
	}
}
