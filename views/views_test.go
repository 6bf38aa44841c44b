package views

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// paginate makes the fake API server page LISTs of resource by Limit and
// Continue, as the real one does, and counts the LIST calls.
func paginate(client *fake.Clientset, resource string, kind string) *int {
	calls := new(int)
	client.PrependReactor("list", resource, func(action k8stesting.Action) (bool, runtime.Object, error) {
		*calls++
		la := action.(k8stesting.ListActionImpl)
		gvr := schema.GroupVersionResource{Version: "v1", Resource: resource}
		obj, err := client.Tracker().List(gvr, schema.GroupVersionKind{Version: "v1", Kind: kind}, la.Namespace)
		if err != nil {
			return true, nil, err
		}
		start, _ := strconv.Atoi(la.ListOptions.Continue)
		page := func(n int) (int, string) {
			end := n
			if la.ListOptions.Limit > 0 && start+int(la.ListOptions.Limit) < n {
				end = start + int(la.ListOptions.Limit)
				return end, strconv.Itoa(end)
			}
			return end, ""
		}
		switch l := obj.(type) {
		case *corev1.PodList:
			end, next := page(len(l.Items))
			l.Items, l.Continue = l.Items[start:end], next
		case *corev1.NodeList:
			end, next := page(len(l.Items))
			l.Items, l.Continue = l.Items[start:end], next
		case *corev1.PersistentVolumeClaimList:
			end, next := page(len(l.Items))
			l.Items, l.Continue = l.Items[start:end], next
		}
		return true, obj, nil
	})
	return calls
}

// manyPods returns n step pods spread over nodes, all of build id 1..n.
func manyPods(n, nodes int) []runtime.Object {
	var objs []runtime.Object
	for i := range n {
		objs = append(objs, pod(podSpec{ns: "ci", name: fmt.Sprintf("p-%05d", i), node: fmt.Sprintf("n-%03d", i%nodes),
			team: "main", pipeline: "main", job: "unit", build: strconv.Itoa(i), id: strconv.Itoa(i + 1), step: "unit",
			stepType: "task", containers: []string{"main"}, states: []corev1.ContainerState{running(time.Minute)}}))
	}
	for i := range nodes {
		objs = append(objs, node(nodeSpec{name: fmt.Sprintf("n-%03d", i), ready: corev1.ConditionTrue}))
	}
	return objs
}

func TestPagination(t *testing.T) {
	tests := []struct {
		view                    string
		chunk                   int64
		wantPodLists, wantLines int
		wantNodeLists           int
	}{
		// 1,050 pods in pages of 100: 11 LISTs; nodes: the worker probe + 1 page.
		{view: "containers", chunk: 100, wantPodLists: 11, wantLines: 1051},
		{view: "builds", chunk: 100, wantPodLists: 11, wantLines: 1051},
		{view: "volumes", chunk: 100, wantPodLists: 11, wantLines: 0},
		{view: "workers", chunk: 100, wantPodLists: 11, wantNodeLists: 2, wantLines: 21},
		{view: "workers", chunk: 7, wantPodLists: 150, wantNodeLists: 4, wantLines: 21},
		{view: "containers", chunk: 0, wantPodLists: 1, wantLines: 1051},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s-%d", tt.view, tt.chunk), func(t *testing.T) {
			o, client, out := newTestOptions(t, manyPods(1050, 20)...)
			pods, nodes := paginate(client, "pods", "Pod"), paginate(client, "nodes", "Node")
			paginate(client, "persistentvolumeclaims", "PersistentVolumeClaim")
			o.ChunkSize = tt.chunk
			if err := o.Complete(nil, nil, nil); err != nil {
				t.Fatal(err)
			}
			if err := views[tt.view](o).Run(t.Context()); err != nil {
				t.Fatal(err)
			}
			if *pods != tt.wantPodLists {
				t.Errorf("pod LISTs = %d, want %d", *pods, tt.wantPodLists)
			}
			if *nodes != tt.wantNodeLists {
				t.Errorf("node LISTs = %d, want %d", *nodes, tt.wantNodeLists)
			}
			if got := strings.Count(out.String(), "\n"); got != tt.wantLines {
				t.Errorf("lines = %d, want %d", got, tt.wantLines)
			}
		})
	}
}

func TestWorkerCountsAcrossPages(t *testing.T) {
	o, client, out := newTestOptions(t, manyPods(1050, 20)...)
	paginate(client, "pods", "Pod")
	o.ChunkSize = 64
	if err := o.Complete(nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := (&WorkersOptions{o}).Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	// 1,050 pods over 20 nodes: 53 on n-000..n-009, 52 on the others.
	for _, want := range []string{"n-000   53 ", "n-009   53 ", "n-010   52 ", "n-019   52 "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// Each filter keeps the pods it names and no other; a pod whose label
// holds the encoding of the asked name but whose annotation names another is
// TestEncodedTwinIsNotShown's.
func TestFilters(t *testing.T) {
	tests := []struct {
		name      string
		set       func(*ViewOptions)
		wantNames []string
		dontWant  []string
	}{
		{"team", func(o *ViewOptions) { o.Team = "ops" }, []string{"deploy-7/clone", "long-name-1"}, []string{"main-repo-check"}},
		{"pipeline", func(o *ViewOptions) { o.Pipeline = "main" }, []string{"main-repo-check", "9a8b7c6d-unit"}, []string{"deploy-7", "one-off-45"}},
		{"job", func(o *ViewOptions) { o.Job = "unit" }, []string{"9a8b7c6d-unit"}, []string{"main-repo-check"}},
		{"pipeline/job", func(o *ViewOptions) { o.Job = "ops/deploy" }, []string{"deploy-7/test"}, []string{"9a8b7c6d-unit"}},
		{"instance vars match", func(o *ViewOptions) { o.Job = `main/branch:release/1.x/unit` }, []string{"9a8b7c6d-unit"}, nil},
		{"instance vars differ", func(o *ViewOptions) { o.Job = `main/branch:main/unit` }, nil, []string{"9a8b7c6d-unit"}},
		{"long non-ASCII pipeline", func(o *ViewOptions) { o.Pipeline = longPipeline }, []string{"long-name-1"}, []string{"deploy-7"}},
		{"label selector", func(o *ViewOptions) { o.LabelSelector = selector.LabelStepType + "=check" }, []string{"main-repo-check"}, []string{"9a8b7c6d-unit"}},
		{"namespace", func(o *ViewOptions) { o.AllNamespaces = false }, []string{"main-repo-check"}, []string{"deploy-7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, _, out := newTestOptions(t, fixtures()...)
			o.AllNamespaces = true
			tt.set(o)
			if err := o.Complete(nil, nil, nil); err != nil {
				t.Fatal(err)
			}
			if err := (&ContainersOptions{o}).Run(t.Context()); err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.wantNames {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %s:\n%s", w, out)
				}
			}
			for _, w := range tt.dontWant {
				if strings.Contains(out.String(), w) {
					t.Errorf("output has %s:\n%s", w, out)
				}
			}
		})
	}
}

func TestEncodedTwinIsNotShown(t *testing.T) {
	// A pod whose label holds the encoding of the asked name but whose
	// annotation names another pipeline is someone else's.
	other := pod(podSpec{ns: "ci", name: "impostor", team: "main", pipeline: longPipeline, containers: []string{"main"},
		states: []corev1.ContainerState{running(time.Minute)}})
	other.Annotations[selector.LabelPipeline] = "another pipeline whose encoding collides"
	o, _, out := newTestOptions(t, other)
	o.Pipeline = longPipeline
	if err := o.Complete(nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := (&ContainersOptions{o}).Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "impostor") {
		t.Errorf("containers --pipeline shows a pod of another pipeline:\n%s", out)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		set  func(*ViewOptions)
		want string
	}{
		{"chunk", func(o *ViewOptions) { o.ChunkSize = -1 }, "--chunk-size must be 0 or more"},
		{"color", func(o *ViewOptions) { o.Color = "sometimes" }, `--color "sometimes": want auto, always or never`},
		{"json and -o", func(o *ViewOptions) { o.FlyJSON = true; *o.PrintFlags.OutputFormat = "yaml" }, "--json is fly's JSON"},
		{"selector", func(o *ViewOptions) { o.LabelSelector = "a in (" }, "-l/--selector:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewViewOptions(genericiooptions.NewTestIOStreamsDiscard())
			tt.set(o)
			err := o.Validate()
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want %q...", err, tt.want)
			}
		})
	}
}

func TestBadOutputFormat(t *testing.T) {
	for _, format := range []string{"xml", "custom-columns=", "custom-columns=NAME", "custom-columns=A:.x[0"} {
		o, _, _ := newTestOptions(t, fixtures()...)
		*o.PrintFlags.OutputFormat = format
		if err := o.Complete(nil, nil, nil); err != nil {
			t.Fatal(err)
		}
		if err := (&BuildsOptions{ViewOptions: o}).Run(t.Context()); err == nil {
			t.Errorf("-o %s: no error", format)
		}
	}
}

func TestNoResources(t *testing.T) {
	o, _, out := newTestOptions(t)
	errOut := o.ErrOut.(*bytes.Buffer)
	if err := o.Complete(nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := (&BuildsOptions{ViewOptions: o}).Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if out.String() != "" || errOut.String() != "No resources found in ci namespace.\n" {
		t.Errorf("out %q, errOut %q", out, errOut)
	}
}

// watchStarted makes the fake's watches of resource signal once they exist,
// so that a test changes objects only when the view can see the change.
func watchStarted(client *fake.Clientset, resource string) <-chan struct{} {
	started := make(chan struct{}, 8)
	client.PrependWatchReactor(resource, func(action k8stesting.Action) (bool, watch.Interface, error) {
		w, err := client.Tracker().Watch(action.GetResource(), action.GetNamespace())
		started <- struct{}{}
		return true, w, err
	})
	return started
}

// syncBuffer is written by the view's goroutine and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(s.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("output never had %q:\n%s", want, s.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWatchRows(t *testing.T) {
	tests := []struct {
		view   string
		change func(context.Context, *fake.Clientset) error
		want   string // a line printed after the change
	}{
		{"builds", func(ctx context.Context, c *fake.Clientset) error {
			p, err := c.CoreV1().Pods("ci").Get(ctx, "main-unit-3-unit", metav1.GetOptions{})
			if err != nil {
				return err
			}
			p.Status.ContainerStatuses[0].State = exited(2, 14*time.Minute, time.Minute)
			_, err = c.CoreV1().Pods("ci").UpdateStatus(ctx, p, metav1.UpdateOptions{})
			return err
		}, "42    main/branch:\"release/1.x\"/unit   3       failed"},
		{"containers", func(ctx context.Context, c *fake.Clientset) error {
			return c.CoreV1().Pods("ci").Delete(ctx, "one-off-45", metav1.DeleteOptions{})
		}, "deleted"},
		{"workers", func(ctx context.Context, c *fake.Clientset) error {
			_, err := c.CoreV1().Pods("ci").Create(ctx, pod(podSpec{ns: "ci", name: "new", node: "worker-b",
				containers: []string{"main"}, states: []corev1.ContainerState{running(0)}}), metav1.CreateOptions{})
			return err
		}, "worker-b   2 "},
		{"volumes", func(ctx context.Context, c *fake.Clientset) error {
			return c.CoreV1().PersistentVolumeClaims("ci").Delete(ctx, "repo-version", metav1.DeleteOptions{})
		}, "Deleted"},
	}
	for _, tt := range tests {
		t.Run(tt.view, func(t *testing.T) {
			o, client, _ := newTestOptions(t, fixtures()...)
			out := &syncBuffer{}
			o.Out, o.Watch = out, true
			started := watchStarted(client, "*")
			if err := o.Complete(nil, nil, nil); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- views[tt.view](o).Run(ctx) }()
			<-started
			if tt.view == "workers" || tt.view == "volumes" {
				<-started // two watches
			}
			if err := tt.change(t.Context(), client); err != nil {
				t.Fatal(err)
			}
			out.waitFor(t, tt.want)
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run() = %v after interruption, want nil", err)
			}
		})
	}
}

func TestLineColours(t *testing.T) {
	var b bytes.Buffer
	l := &lineColours{w: &b, atStart: true, queue: []string{"", colourRed, ""}}
	for _, chunk := range []string{"HEAD", "ER\nro", "w1\nrow2\n"} {
		if _, err := l.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	if want := "HEADER\n" + colourRed + "row1" + colourReset + "\nrow2\n"; b.String() != want {
		t.Errorf("lineColours wrote %q, want %q", b.String(), want)
	}
}
