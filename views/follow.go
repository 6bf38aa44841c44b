package views

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// source is a watch that continues a LIST (-w).
type source struct {
	rv      string // the LIST's resourceVersion
	opts    metav1.ListOptions
	watch   func(context.Context, metav1.ListOptions) (watch.Interface, error)
	initial []watch.Event // what the LIST returned, when the handler is to see it as events
}

// follow merges the events of sources into handle, one at a time, until ctx
// ends (the user interrupts, as with kubectl get -w) or a watch fails.
func follow(ctx context.Context, handle func(watch.Event) error, sources ...source) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := make(chan watch.Event)
	errs := make(chan error, len(sources))
	for _, s := range sources {
		go func() { errs <- s.run(ctx, events) }()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errs:
			if err != nil {
				return err
			}
		case ev := <-events:
			if err := handle(ev); err != nil {
				return err
			}
		}
	}
}

// run watches from the LIST's resourceVersion and starts again from the
// last one seen when the server ends a watch, so that no change is missed.
func (s source) run(ctx context.Context, events chan<- watch.Event) error {
	for _, ev := range s.initial {
		select {
		case events <- ev:
		case <-ctx.Done():
			return nil
		}
	}
	rv := s.rv
	for {
		opts := s.opts
		opts.ResourceVersion, opts.AllowWatchBookmarks = rv, true
		w, err := s.watch(ctx, opts)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := s.drain(ctx, w, &rv, events); err != nil || ctx.Err() != nil {
			return err
		}
	}
}

func (s source) drain(ctx context.Context, w watch.Interface, rv *string, events chan<- watch.Event) error {
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
				return apierrors.FromObject(ev.Object)
			}
			if m, err := meta.Accessor(ev.Object); err == nil && m.GetResourceVersion() != "" {
				*rv = m.GetResourceVersion()
			}
			if ev.Type == watch.Bookmark {
				continue
			}
			select {
			case events <- ev:
			case <-ctx.Done():
				return nil
			}
		}
	}
}
