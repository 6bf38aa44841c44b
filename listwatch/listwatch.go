// Package listwatch is the plugin's one way to follow objects: a LIST, then
// a WATCH from its resource version, resumed from the last version seen
// when the server ends a watch, and listed again when that version has
// expired (410 Gone: etcd compacted it, or the watch cache moved on). A
// relist is handed on as the changes it stands for, so a follower never
// sees that it happened: the objects that came are Added, those that
// changed Modified, those that went Deleted (with their last known state).
//
// client-go's informers do the same with a cache, resyncs and a retry
// that never gives up; the plugin's followers want neither the cache nor
// the endless retry (a refused watch is the user's to hear at once), so
// the loop is this package's own: small, and one home for the rule.
package listwatch

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
)

// Source is one kind of object to follow under one selector.
type Source struct {
	List    func(context.Context, metav1.ListOptions) (runtime.Object, error)
	Watch   func(context.Context, metav1.ListOptions) (watch.Interface, error)
	Options metav1.ListOptions // the selectors; the resource version is the engine's
	// Resource and Namespace ("" for all) name what is followed, in the
	// errors: a refusal says which permission is missing, and where.
	Resource, Namespace string

	// ResourceVersion is that of a LIST the caller made itself (a view
	// pages through its own, to print it first), and Known the objects of
	// it that the caller kept, if any: a relist says which of them went.
	// With no ResourceVersion, Follow lists first and hands every object
	// on as Added.
	ResourceVersion string
	Known           []runtime.Object
	// Replay hands Known on as Added events before any change.
	Replay bool
}

// Stream is the merged changes of several sources, one at a time.
type Stream struct {
	events chan watch.Event
	done   chan struct{}
	err    error
}

// Follow starts following the sources until ctx ends or one of them fails.
func Follow(ctx context.Context, sources ...Source) *Stream {
	s := &Stream{events: make(chan watch.Event), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(ctx)
	errs := make(chan error, len(sources))
	for _, src := range sources {
		f := &follower{src: src, known: map[string]runtime.Object{}, events: s.events}
		go func() { errs <- f.run(ctx) }()
	}
	go func() {
		defer cancel()
		for range sources {
			if err := <-errs; err != nil && ctx.Err() == nil {
				s.err = err
				break
			}
		}
		close(s.done)
	}()
	return s
}

// Events are the changes, in the order each source saw them.
func (s *Stream) Events() <-chan watch.Event { return s.events }

// Done is closed when the stream has ended: a source failed (Err), or ctx
// ended.
func (s *Stream) Done() <-chan struct{} { return s.done }

// Err is why the stream ended once Done is closed, nil when ctx ended. A
// refusal is a cmderr.ForbiddenError.
func (s *Stream) Err() error {
	<-s.done
	return s.err
}

// Run hands every change of the sources to handle, one at a time, until
// ctx ends (nil, as kubectl get -w ends), handle fails or a source fails.
func Run(ctx context.Context, handle func(watch.Event) error, sources ...Source) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := Follow(ctx, sources...)
	for {
		select {
		case <-s.Done():
			return s.Err()
		case ev := <-s.Events():
			if err := handle(ev); err != nil {
				return err
			}
		}
	}
}

// follower follows one source: what it knows of each object (namespace/name),
// and the resource version it has seen up to.
type follower struct {
	src    Source
	known  map[string]runtime.Object
	rv     string
	events chan<- watch.Event
}

func (f *follower) run(ctx context.Context) error {
	f.rv = f.src.ResourceVersion
	for _, obj := range f.src.Known {
		f.known[key(obj)] = obj
		if f.src.Replay && !f.send(ctx, watch.Event{Type: watch.Added, Object: obj}) {
			return nil
		}
	}
	if f.rv == "" {
		if err := f.relist(ctx); err != nil {
			return err
		}
	}
	for ctx.Err() == nil {
		err := f.watch(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case expired(err):
			err = f.relist(ctx)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// expired: the resource version is too old to watch from; only a LIST
// gives a new one.
func expired(err error) bool {
	return apierrors.IsResourceExpired(err) || apierrors.IsGone(err)
}

// relist lists the source and sends what changed since what it knew.
func (f *follower) relist(ctx context.Context) error {
	opts := f.src.Options
	opts.ResourceVersion, opts.ResourceVersionMatch = "", ""
	list, err := f.src.List(ctx, opts)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return f.failed("list", err)
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return f.failed("list", err)
	}
	listed := make(map[string]bool, len(items))
	for _, obj := range items {
		k := key(obj)
		listed[k] = true
		ev := watch.Event{Type: watch.Added, Object: obj}
		if old, ok := f.known[k]; ok {
			if version(old) == version(obj) && version(obj) != "" {
				continue
			}
			ev.Type = watch.Modified
		}
		f.known[k] = obj
		if !f.send(ctx, ev) {
			return nil
		}
	}
	for k, obj := range f.known {
		if !listed[k] {
			delete(f.known, k)
			if !f.send(ctx, watch.Event{Type: watch.Deleted, Object: obj}) {
				return nil
			}
		}
	}
	if m, err := meta.ListAccessor(list); err == nil {
		f.rv = m.GetResourceVersion()
	}
	return nil
}

// watch sends the changes of one watch until the server ends it (nil: go
// on from the last version seen) or it fails.
func (f *follower) watch(ctx context.Context) error {
	opts := f.src.Options
	opts.ResourceVersion, opts.AllowWatchBookmarks = f.rv, true
	w, err := f.src.Watch(ctx, opts)
	if err != nil {
		if expired(err) {
			return err
		}
		return f.failed("watch", err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil
			}
			if ev.Type == watch.Error {
				err := apierrors.FromObject(ev.Object)
				if expired(err) {
					return err
				}
				return f.failed("watch", err)
			}
			if v := version(ev.Object); v != "" {
				f.rv = v
			}
			switch ev.Type {
			case watch.Bookmark:
				continue
			case watch.Deleted:
				delete(f.known, key(ev.Object))
			default:
				f.known[key(ev.Object)] = ev.Object
			}
			if !f.send(ctx, ev) {
				return nil
			}
		}
	}
}

func (f *follower) send(ctx context.Context, ev watch.Event) bool {
	select {
	case f.events <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

func key(obj runtime.Object) string {
	m, err := meta.Accessor(obj)
	if err != nil {
		return fmt.Sprintf("%p", obj)
	}
	return m.GetNamespace() + "/" + m.GetName()
}

func version(obj runtime.Object) string {
	m, err := meta.Accessor(obj)
	if err != nil {
		return ""
	}
	return m.GetResourceVersion()
}

// failed says which call failed on what, and explains a refusal.
func (f *follower) failed(verb string, err error) error {
	return fmt.Errorf("%s %s: %w", verb, f.src.Resource, cmderr.ExplainForbidden(err, f.src.Namespace, verb, f.src.Resource))
}

// Lister adapts a typed client's List (which returns its own list type) to
// a Source's.
func Lister[L runtime.Object](list func(context.Context, metav1.ListOptions) (L, error)) func(context.Context, metav1.ListOptions) (runtime.Object, error) {
	return func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) { return list(ctx, opts) }
}
