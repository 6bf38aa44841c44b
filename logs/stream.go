package logs

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
	"github.com/kubectl-concourse/kubectl-concourse/helper"
	"github.com/kubectl-concourse/kubectl-concourse/kernel"
	"github.com/kubectl-concourse/kubectl-concourse/listwatch"
	"github.com/kubectl-concourse/kubectl-concourse/podlogs"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// stern's palette: a step keeps its colour from run to run.
var palette = []string{"\x1b[96m", "\x1b[92m", "\x1b[95m", "\x1b[93m", "\x1b[94m", "\x1b[91m"}

const colourReset = "\x1b[0m"

// printer writes the logs to Out: as they are for one step, else line by
// line, each under its step's label (compose's "label | line"), coloured
// per step on a terminal.
type printer struct {
	out         io.Writer
	prefix      bool
	colour      bool
	allAttempts bool

	mu     sync.Mutex // one line at a time
	width  int
	labels map[string]string // namespace/pod/container -> label
	taken  map[string]bool
}

func (o *LogsOptions) newPrinter(ms []selector.Match, follow bool) *printer {
	colour := kernel.UseColor(o.Color, o.IsTerminal, o.Out)
	p := &printer{out: o.Out, prefix: o.Prefix || len(ms) > 1 || follow, colour: colour, allAttempts: o.AllAttempts,
		labels: map[string]string{}, taken: map[string]bool{}}
	for _, m := range ms {
		p.width = max(p.width, len(p.label(m)))
	}
	return p
}

// label tells the lines of m's container apart from the others': its step,
// with the attempt when every attempt is shown, and its pod and container
// when that is not enough.
func (p *printer) label(m selector.Match) string {
	key := m.Pod.Namespace + "/" + m.Pod.Name + "/" + m.Container
	p.mu.Lock()
	defer p.mu.Unlock()
	if l, ok := p.labels[key]; ok {
		return l
	}
	l := cmp.Or(m.Step, m.Resource, m.Container)
	if p.allAttempts && m.Attempt != "" {
		l += " attempt " + m.Attempt
	}
	if p.taken[l] {
		l += " (" + m.Pod.Name + "/" + m.Container + ")"
	}
	l = printers.EscapeTerminal(l)
	p.labels[key], p.taken[l] = l, true
	return l
}

// writer is where m's log goes.
func (p *printer) writer(m selector.Match) io.WriteCloser {
	if !p.prefix {
		return nopCloser{podlogs.NewWriter(p.out)}
	}
	label := p.label(m)
	head := label + strings.Repeat(" ", max(p.width-len(label), 0)) + " | "
	if p.colour {
		h := fnv.New32a()
		h.Write([]byte(label))
		head = palette[h.Sum32()%uint32(len(palette))] + head + colourReset
	}
	return &lineWriter{p: p, head: head}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// lineWriter writes whole lines, each after the head: lines of several
// steps never mix.
type lineWriter struct {
	p    *printer
	head string
	buf  []byte
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		if err := w.line(w.buf[:i]); err != nil {
			return 0, err
		}
		w.buf = w.buf[i+1:]
	}
}

// Close writes what is left of a last line without its newline.
func (w *lineWriter) Close() error {
	if len(w.buf) == 0 {
		return nil
	}
	err := w.line(w.buf)
	w.buf = nil
	return err
}

// line writes one line, defused: colour kept (and ended, so that it does
// not run into the next head), and no carriage return that would let a
// line write over its head.
func (w *lineWriter) line(content []byte) error {
	content = bytes.TrimSuffix(content, []byte("\r"))
	var b bytes.Buffer
	b.WriteString(w.head)
	safe := podlogs.NewWriter(&b)
	if _, err := safe.Write(bytes.ReplaceAll(content, []byte("\r"), []byte("^M"))); err != nil {
		return err
	}
	if w.p.colour && bytes.IndexByte(content, 0x1b) >= 0 {
		b.WriteString(colourReset)
	}
	b.WriteByte('\n')
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	_, err := w.p.out.Write(b.Bytes())
	return err
}

// print writes the log of m as it is now; a step that has not started has
// none yet, and says why on stderr.
func (o *LogsOptions) print(ctx context.Context, p *printer, m selector.Match) error {
	if started(m).IsZero() {
		why, _ := helper.Waiting(m.Pod, m.Container)
		fmt.Fprintf(o.ErrOut, "warning: no log of %s: it has not started (%s)\n", describe(m), why)
		return nil
	}
	rc, err := o.Client.CoreV1().Pods(m.Pod.Namespace).GetLogs(m.Pod.Name, o.logOptions(m.Container, false)).Stream(ctx)
	if err != nil {
		return o.logError(m, err)
	}
	if err := p.copy(m, rc); err != nil && ctx.Err() == nil {
		return fmt.Errorf("log of %s cut short: %w", describe(m), err)
	}
	return ctx.Err()
}

// copy writes the log rc of m, and closes it.
func (p *printer) copy(m selector.Match, rc io.ReadCloser) error {
	defer rc.Close()
	w := p.writer(m)
	_, err := io.Copy(w, rc)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	return err
}

// logError says why a log cannot be read: a step that has not started, or
// has no previous run, is skipped with a line on stderr; a missing
// permission ends the command.
func (o *LogsOptions) logError(m selector.Match, err error) error {
	if apierrors.IsBadRequest(err) || apierrors.IsNotFound(err) {
		fmt.Fprintf(o.ErrOut, "warning: no log of %s: %s\n", describe(m), printers.EscapeTerminal(statusMessage(err)))
		return nil
	}
	return fmt.Errorf("log of %s: %w", describe(m), cmderr.ExplainForbidden(err, m.Pod.Namespace, "get", "pods/log"))
}

func statusMessage(err error) string {
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		return st.Status().Message
	}
	return err.Error()
}

func describe(m selector.Match) string {
	return fmt.Sprintf("step %s (pod %s, container %s)", printers.EscapeTerminal(cmp.Or(m.Step, m.Resource, m.Container)),
		printers.EscapeTerminal(m.Pod.Namespace+"/"+m.Pod.Name), printers.EscapeTerminal(m.Container))
}

// follow streams the steps' logs as they come: each once its container has
// started, until it ends. With watchBuild, the build's pods are watched
// for steps to come, until ctx ends (Ctrl-C) or the build is over.
func (o *LogsOptions) follow(ctx context.Context, p *printer, ms []selector.Match, watchBuild bool) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	seen := map[string]bool{}
	last := map[attemptKey]string{} // the last attempt of each step started
	start := func(m selector.Match) {
		key := m.Pod.Namespace + "/" + m.Pod.Name + "/" + m.Container + "/" + string(m.Pod.UID)
		if seen[key] {
			return
		}
		if !o.AllAttempts && o.Target.Attempt == "" {
			// Only a step's last attempt, and the next ones as they come.
			k := attemptKeyOf(m)
			if a, ok := last[k]; ok && selector.CompareNumbered(m.Attempt, a) < 0 {
				return
			}
			last[k] = m.Attempt
		}
		seen[key] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := o.stream(ctx, p, m); err != nil {
				cancel(err)
			}
		}()
	}
	for _, m := range ms {
		start(m)
	}
	if watchBuild && len(ms) > 0 {
		latest := selector.LatestBuild(ms)
		if err := o.watchBuild(ctx, latest, start); err != nil && ctx.Err() == nil {
			cancel(err)
		}
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// stream follows m's log, once its container has started, until it ends.
func (o *LogsOptions) stream(ctx context.Context, p *printer, m selector.Match) error {
	if started(m).IsZero() {
		if _, err := helper.WaitRunning(ctx, o.Client.CoreV1(), m.Pod.Namespace, m.Pod.Name, m.Container,
			helper.WaitOptions{Patient: true, Ended: true}); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			fmt.Fprintf(o.ErrOut, "warning: no log of %s: %v\n", describe(m), err)
			return nil
		}
	}
	rc, err := o.Client.CoreV1().Pods(m.Pod.Namespace).GetLogs(m.Pod.Name, o.logOptions(m.Container, true)).Stream(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return o.logError(m, err)
	}
	if err := p.copy(m, rc); err != nil && ctx.Err() == nil {
		fmt.Fprintf(o.ErrOut, "warning: log of %s cut short: %v\n", describe(m), err)
	}
	return nil
}

// watchBuild tells start of every step container of the build's pods, as
// they come, until ctx ends or the build is over (buildEnd).
func (o *LogsOptions) watchBuild(ctx context.Context, latest selector.Match, start func(selector.Match)) error {
	// The first LIST is seen whole before the build's end is judged: its
	// first pod alone may have ended long ago.
	list, pods, err := listBuild(ctx, o.Client, latest.Pod.Namespace, selector.BuildSelector(latest))
	if err != nil {
		return err
	}
	end := newBuildEnd(o.Settle, o.Clock)
	defer end.stop()
	for i := range list.Items {
		o.startSteps(&list.Items[i], start)
		end.see(&list.Items[i], false)
	}
	if end.over() {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changes := listwatch.Follow(ctx, pods)
	for {
		select {
		case <-changes.Done():
			return changes.Err()
		case <-end.settled():
		case ev := <-changes.Events():
			if pod, ok := ev.Object.(*corev1.Pod); ok {
				if ev.Type != watch.Deleted {
					o.startSteps(pod, start)
				}
				end.see(pod, ev.Type == watch.Deleted)
			}
		}
		if end.over() {
			return nil
		}
	}
}

// listBuild makes the first LIST of a build's pods (sel in ns), and the
// source that follows them from it: logs -f and watch follow a build alike.
func listBuild(ctx context.Context, client kubernetes.Interface, ns, sel string) (*corev1.PodList, listwatch.Source, error) {
	pods := client.CoreV1().Pods(ns)
	opts := metav1.ListOptions{LabelSelector: sel}
	list, err := pods.List(ctx, opts)
	if err != nil {
		return nil, listwatch.Source{}, fmt.Errorf("list the build's pods: %w", cmderr.ExplainForbidden(err, ns, "list", "pods"))
	}
	known := make([]runtime.Object, len(list.Items))
	for i := range list.Items {
		known[i] = &list.Items[i]
	}
	return list, listwatch.Source{List: listwatch.Lister(pods.List), Watch: pods.Watch, Options: opts,
		Resource: "pods", Namespace: ns, ResourceVersion: list.ResourceVersion, Known: known}, nil
}

// startSteps starts the step containers of pod that the target names.
func (o *LogsOptions) startSteps(pod *corev1.Pod, start func(selector.Match)) {
	for _, m := range selector.Steps(pod) {
		if o.Target.Attempt == "" || m.Attempt == o.Target.Attempt {
			start(m)
		}
	}
}
