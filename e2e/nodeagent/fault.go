package nodeagent

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
)

// Fault injection switches, read from the pod's annotations at each exec.
const (
	// AnnotationExecCutAfterBytes cuts an exec session's connection once N
	// bytes of stdout have been sent, as a network failure would.
	AnnotationExecCutAfterBytes = "testcluster.kubectl-concourse.dev/exec-cut-after-bytes"
	// AnnotationExecCutTimes limits the cut to the first K sessions of the
	// pod that reach N bytes; by default every one is cut.
	AnnotationExecCutTimes = "testcluster.kubectl-concourse.dev/exec-cut-times"
	// AnnotationExecBytesPerSecond throttles exec stdin and stdout to R
	// bytes per second.
	AnnotationExecBytesPerSecond = "testcluster.kubectl-concourse.dev/exec-bytes-per-second"
	// AnnotationExecCutSilently "true" makes a cut session (stdout after
	// exec-cut-after-bytes, stdin after exec-cut-stdin-after-bytes) end as
	// a success, the way a connection that just drops can look through
	// the API server.
	AnnotationExecCutSilently = "testcluster.kubectl-concourse.dev/exec-cut-silently"
	// AnnotationExecCutStdinAfterBytes ends the process's stdin after N
	// bytes (the rest is read and dropped), as bytes lost on the way in.
	// Sessions count against exec-cut-times like stdout cuts.
	AnnotationExecCutStdinAfterBytes = "testcluster.kubectl-concourse.dev/exec-cut-stdin-after-bytes"
	// AnnotationExecCutCountsFrom makes the cuts count bytes from the end
	// of the first occurrence of this string in the stream being cut, so
	// that a test can cut a payload at an exact offset whatever header of
	// variable length precedes it (the plugin's decision line on stdin, its
	// probe's answers on stdout). A stream without it is never cut.
	AnnotationExecCutCountsFrom = "testcluster.kubectl-concourse.dev/exec-cut-counts-from"
)

// faults is the fault injection asked for by a pod.
type faults struct {
	cutAfter       int64 // 0: never cut
	cutStdinAfter  int64 // 0: never cut
	cutTimes       int   // -1: every session
	cutSilently    bool
	countsFrom     string // "": from the first byte
	bytesPerSecond int64  // 0: no throttling
}

func parseFaults(annotations map[string]string) (faults, error) {
	f := faults{cutTimes: -1}
	parse := func(key string) (int64, error) {
		v, ok := annotations[key]
		if !ok {
			return 0, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("annotation %s: %q is not a non-negative integer", key, v)
		}
		return n, nil
	}
	var err error
	if f.cutAfter, err = parse(AnnotationExecCutAfterBytes); err != nil {
		return f, err
	}
	if _, ok := annotations[AnnotationExecCutTimes]; ok {
		n, err := parse(AnnotationExecCutTimes)
		if err != nil {
			return f, err
		}
		f.cutTimes = int(n)
	}
	if f.bytesPerSecond, err = parse(AnnotationExecBytesPerSecond); err != nil {
		return f, err
	}
	if f.cutStdinAfter, err = parse(AnnotationExecCutStdinAfterBytes); err != nil {
		return f, err
	}
	f.countsFrom = annotations[AnnotationExecCutCountsFrom]
	if v, ok := annotations[AnnotationExecCutSilently]; ok {
		if f.cutSilently, err = strconv.ParseBool(v); err != nil {
			return f, fmt.Errorf("annotation %s: %q is not a boolean", AnnotationExecCutSilently, v)
		}
	}
	return f, nil
}

// errCut is returned by a cutWriter once it has cut the session.
var errCut = errors.New("exec session cut by fault injection")

// cutWriter passes through the first limit bytes, then asks claim whether
// this session is to be cut and, if so, calls cut (which kills the process)
// and fails every write.
type cutWriter struct {
	w     io.Writer
	limit int64
	claim func() bool
	cut   func()
	// header, when set, is passed before counting starts.
	header  *markerScanner
	mu      sync.Mutex
	written int64
	spared  bool
	isCut   bool
}

func (c *cutWriter) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isCut {
		return 0, errCut
	}
	if c.header != nil && !c.header.passed() {
		end := c.header.scan(b)
		if end < 0 {
			return c.w.Write(b)
		}
		n, err := c.w.Write(b[:end])
		if err != nil || end == len(b) {
			return n, err
		}
		m, err := c.writeCounted(b[end:])
		return n + m, err
	}
	return c.writeCounted(b)
}

func (c *cutWriter) writeCounted(b []byte) (int, error) {
	if c.spared || c.written+int64(len(b)) < c.limit {
		n, err := c.w.Write(b)
		c.written += int64(n)
		return n, err
	}
	head := b[:c.limit-c.written]
	n, err := c.w.Write(head)
	c.written += int64(n)
	if err != nil {
		return n, err
	}
	if !c.claim() {
		c.spared = true
		m, err := c.w.Write(b[len(head):])
		c.written += int64(m)
		return n + m, err
	}
	c.isCut = true
	c.cut()
	return n, errCut
}

// markerScanner finds the end of the first occurrence of a marker in a
// stream fed to it piece by piece.
type markerScanner struct {
	marker  []byte
	matched int // bytes of marker matched at the end of what was fed
	done    bool
}

func newMarkerScanner(marker string) *markerScanner {
	return &markerScanner{marker: []byte(marker)}
}

func (m *markerScanner) passed() bool { return m.done }

// scan feeds b and returns the offset in b just past the marker's end, or
// -1 when the marker has not ended in b.
func (m *markerScanner) scan(b []byte) int {
	for i, c := range b {
		// A failed match restarts at the longest suffix of what matched
		// that is also the marker's prefix.
		for m.matched > 0 && m.marker[m.matched] != c {
			m.matched = m.fallback(m.matched)
		}
		if m.marker[m.matched] == c {
			m.matched++
		}
		if m.matched == len(m.marker) {
			m.done = true
			return i + 1
		}
	}
	return -1
}

// fallback is the length of the longest proper suffix of marker[:n] that is
// also a prefix of the marker.
func (m *markerScanner) fallback(n int) int {
	for k := n - 1; k > 0; k-- {
		if string(m.marker[n-k:n]) == string(m.marker[:k]) {
			return k
		}
	}
	return 0
}

// passHeader copies from r to w up to and including the marker's end, a
// byte at a time so that nothing after it is consumed; it reports whether
// the marker was found.
func passHeader(w io.Writer, r io.Reader, marker string) bool {
	m := newMarkerScanner(marker)
	b := make([]byte, 1)
	for {
		if _, err := io.ReadFull(r, b); err != nil {
			return false
		}
		if _, err := w.Write(b); err != nil {
			return false
		}
		if m.scan(b) == 1 {
			return true
		}
	}
}

func (c *cutWriter) wasCut() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.isCut
}

// throttle paces a stream to a rate in bytes per second.
type throttle struct {
	rate  int64
	start time.Time
	sent  int64
	now   func() time.Time
	sleep func(time.Duration)
}

func newThrottle(rate int64) *throttle {
	return &throttle{rate: rate, start: time.Now(), now: time.Now, sleep: time.Sleep}
}

// chunk is the largest piece sent at once: a tenth of a second's worth.
func (t *throttle) chunk() int {
	return int(max(1, t.rate/10))
}

// account records n bytes and waits until the rate allows them.
func (t *throttle) account(n int) {
	t.sent += int64(n)
	due := t.start.Add(time.Duration(float64(t.sent) / float64(t.rate) * float64(time.Second)))
	if d := due.Sub(t.now()); d > 0 {
		t.sleep(d)
	}
}

type throttledWriter struct {
	w io.Writer
	t *throttle
}

func (tw *throttledWriter) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		piece := b[:min(len(b), tw.t.chunk())]
		n, err := tw.w.Write(piece)
		written += n
		tw.t.account(n)
		if err != nil {
			return written, err
		}
		b = b[n:]
	}
	return written, nil
}

type throttledReader struct {
	r io.Reader
	t *throttle
}

func (tr *throttledReader) Read(b []byte) (int, error) {
	if len(b) > tr.t.chunk() {
		b = b[:tr.t.chunk()]
	}
	n, err := tr.r.Read(b)
	tr.t.account(n)
	return n, err
}
