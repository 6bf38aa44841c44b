package transfer

import (
	"context"
	"io"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// progress draws one bar per transfer on ErrOut; several transfers may
// share it (fly draws one bar per input the same way). A nil *Progress
// draws nothing, so callers never test for it.
type Progress struct {
	p *mpb.Progress
}

// NewProgress returns nil unless on: progress is drawn only on a terminal
// or when the user forces it. Off a terminal the bars are redrawn as lines.
func NewProgress(ctx context.Context, w io.Writer, on, tty bool) *Progress {
	if !on {
		return nil
	}
	opts := []mpb.ContainerOption{mpb.WithOutput(w), mpb.WithWidth(32)}
	if !tty {
		opts = append(opts, mpb.WithAutoRefresh())
	}
	return &Progress{p: mpb.NewWithContext(ctx, opts...)}
}

// bar is one transfer's bar; its total is an estimate that may be
// exceeded (retries, du's rounding), so it only completes when told to.
type bar struct {
	b *mpb.Bar
}

// A total of 0 is unknown (a download through the agent learns its size
// only at the end): the bar then counts bytes, with no total and no ETA.
func (p *Progress) bar(label string, total int64) *bar {
	if p == nil {
		return nil
	}
	counted := decor.Counters(decor.SizeB1024(0), "% .1f / % .1f", decor.WCSyncSpace)
	after := []decor.Decorator{decor.AverageSpeed(decor.SizeB1024(0), "% .1f", decor.WCSyncSpace), decor.Name(" ETA "), decor.AverageETA(decor.ET_STYLE_MMSS)}
	if total <= 0 {
		counted = decor.Current(decor.SizeB1024(0), "% .1f", decor.WCSyncSpace)
		after = after[:1]
	}
	b := p.p.AddBar(0,
		mpb.PrependDecorators(decor.Name(label, decor.WCSyncSpaceR), counted),
		mpb.AppendDecorators(after...),
		mpb.BarFillerClearOnAbort(),
	)
	b.SetTotal(total, false)
	return &bar{b: b}
}

// add counts n bytes; it is the progress callback of packer and extractor.
func (b *bar) add(n int64) {
	if b != nil {
		b.b.IncrInt64(n)
	}
}

// counter returns add as a callback, nil when there is no bar.
func (b *bar) counter() func(int64) {
	if b == nil {
		return nil
	}
	return b.add
}

// progressWriter counts what is written through it as progress (nil: not
// counted): the packer tees what it sends into one.
type progressWriter func(int64)

func (p progressWriter) Write(b []byte) (int, error) {
	if p != nil {
		p(int64(len(b)))
	}
	return len(b), nil
}

func (b *bar) end(ok bool) {
	if b == nil {
		return
	}
	if ok {
		b.b.SetTotal(-1, true)
	} else {
		b.b.Abort(false)
	}
	b.b.Wait()
}

// Writer is where a line goes while p draws: above its bars, which a line
// written beside them would garble; w when p draws nothing (nil).
func (p *Progress) Writer(w io.Writer) io.Writer {
	if p == nil {
		return w
	}
	return p.p
}

// Wait returns once every bar is drawn for the last time.
func (p *Progress) Wait() {
	if p != nil {
		p.p.Wait()
	}
}
