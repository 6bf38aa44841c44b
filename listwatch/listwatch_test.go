package listwatch

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
)

func pod(name, rv string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: name, ResourceVersion: rv}}
}

// scripted is a pods API whose LISTs and WATCHes answer in turn.
type scripted struct {
	lists   []*corev1.PodList
	watches []*watch.FakeWatcher
	watchRV []string // the resource version each watch asked for
}

func (s *scripted) client() *fake.Clientset {
	c := fake.NewClientset()
	c.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		l := s.lists[0]
		s.lists = s.lists[1:]
		return true, l, nil
	})
	c.PrependWatchReactor("pods", func(a k8stesting.Action) (bool, watch.Interface, error) {
		s.watchRV = append(s.watchRV, a.(k8stesting.WatchActionImpl).WatchRestrictions.ResourceVersion)
		if len(s.watches) == 0 {
			return true, nil, errors.New("no more watches")
		}
		w := s.watches[0]
		s.watches = s.watches[1:]
		return true, w, nil
	})
	return c
}

func podSource(c *fake.Clientset) Source {
	pods := c.CoreV1().Pods("ci")
	return Source{List: Lister(pods.List), Watch: pods.Watch, Resource: "pods", Namespace: "ci"}
}

type seen struct {
	typ  watch.EventType
	name string
}

func next(t *testing.T, s *Stream) seen {
	t.Helper()
	select {
	case ev := <-s.Events():
		return seen{ev.Type, ev.Object.(*corev1.Pod).Name}
	case <-s.Done():
		t.Fatalf("stream ended: %v", s.Err())
	}
	return seen{}
}

// A 410 Gone in the middle of a watch lists again, and the relist comes out
// as the changes it stands for; the next watch goes on from the new LIST.
func TestGoneMidWatchRelists(t *testing.T) {
	first, second := watch.NewFakeWithChanSize(4, false), watch.NewFakeWithChanSize(4, false)
	s := &scripted{
		lists: []*corev1.PodList{
			{ListMeta: metav1.ListMeta{ResourceVersion: "10"}, Items: []corev1.Pod{*pod("a", "1"), *pod("b", "2")}},
			{ListMeta: metav1.ListMeta{ResourceVersion: "20"}, Items: []corev1.Pod{*pod("a", "1"), *pod("c", "15"), *pod("d", "16")}},
		},
		watches: []*watch.FakeWatcher{first, second},
	}
	c := s.client()
	first.Add(pod("c", "11"))
	first.Error(&apierrors.NewResourceExpired("too old resource version: 11 (18)").ErrStatus)
	second.Modify(pod("a", "21"))

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	st := Follow(ctx, podSource(c))
	want := []seen{
		{watch.Added, "a"}, {watch.Added, "b"}, // the first LIST
		{watch.Added, "c"},                                              // the first watch
		{watch.Modified, "c"}, {watch.Added, "d"}, {watch.Deleted, "b"}, // the relist: a is as it was
		{watch.Modified, "a"}, // the second watch
	}
	for i, w := range want {
		if got := next(t, st); got != w {
			t.Fatalf("event %d = %v, want %v", i, got, w)
		}
	}
	if len(s.watchRV) != 2 || s.watchRV[0] != "10" || s.watchRV[1] != "20" {
		t.Errorf("watches from %q, want [10 20]", s.watchRV)
	}
	cancel()
	<-st.Done()
	if err := st.Err(); err != nil {
		t.Errorf("Err() after ctx ended = %v, want nil", err)
	}
}

// A watch the server closes goes on from the last version seen, without a
// LIST; a bookmark moves that version and is not handed on.
func TestClosedWatchResumes(t *testing.T) {
	first, second := watch.NewFakeWithChanSize(4, false), watch.NewFakeWithChanSize(4, false)
	s := &scripted{watches: []*watch.FakeWatcher{first, second}}
	c := s.client()
	first.Add(pod("a", "5"))
	first.Action(watch.Bookmark, pod("", "7"))
	first.Stop()
	second.Delete(pod("a", "8"))

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	src := podSource(c)
	src.ResourceVersion, src.Known, src.Replay = "3", []runtime.Object{pod("z", "1")}, true
	st := Follow(ctx, src)
	for i, w := range []seen{{watch.Added, "z"}, {watch.Added, "a"}, {watch.Deleted, "a"}} {
		if got := next(t, st); got != w {
			t.Fatalf("event %d = %v, want %v", i, got, w)
		}
	}
	if len(s.watchRV) != 2 || s.watchRV[0] != "3" || s.watchRV[1] != "7" {
		t.Errorf("watches from %q, want [3 7]", s.watchRV)
	}
}

// A refused watch ends the stream with an error that names the verb.
func TestRefusedWatchEnds(t *testing.T) {
	c := fake.NewClientset()
	c.PrependWatchReactor("pods", func(k8stesting.Action) (bool, watch.Interface, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New("RBAC: no"))
	})
	err := Run(t.Context(), func(watch.Event) error { return nil }, podSource(c))
	var forbidden *cmderr.ForbiddenError
	if !errors.As(err, &forbidden) || forbidden.Verb != "watch" || forbidden.Resource != "pods" || forbidden.Namespace != "ci" {
		t.Errorf("Run() = %v, want a ForbiddenError for watch on pods in ci", err)
	}
}

// A handler's error ends Run with it.
func TestRunStopsAtHandlerError(t *testing.T) {
	c := fake.NewClientset(pod("a", "1"))
	stop := errors.New("stop")
	if err := Run(t.Context(), func(watch.Event) error { return stop }, podSource(c)); !errors.Is(err, stop) {
		t.Errorf("Run() = %v, want %v", err, stop)
	}
}
