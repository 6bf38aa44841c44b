package untar

import "io"

// Holdback passes on a stream but for its last n bytes, which it keeps:
// the end marker a container prints after the archive, which the
// Extractor or decompressor reading through it never sees, and which the
// caller checks once the stream has ended (a stream cut between two
// entries looks like a whole archive; it lacks the marker).
type Holdback struct {
	r        io.Reader
	n        int
	buf      []byte
	from, to int // buf[from:to] is read from r and not yet passed on
	err      error
}

// NewHoldback reads r, holding back its last n bytes.
func NewHoldback(r io.Reader, n int) *Holdback {
	return &Holdback{r: r, n: n, buf: make([]byte, max(256<<10, 2*n))}
}

func (h *Holdback) Read(p []byte) (int, error) {
	for {
		if pass := h.to - h.from - h.n; pass > 0 {
			k := copy(p, h.buf[h.from:h.from+pass])
			h.from += k
			return k, nil
		}
		if h.err != nil {
			return 0, h.err
		}
		if h.from > 0 { // at most n bytes left: keep them at the start
			h.to = copy(h.buf, h.buf[h.from:h.to])
			h.from = 0
		}
		m, err := h.r.Read(h.buf[h.to:])
		h.to += m
		h.err = err
	}
}

// Held is the stream's last n bytes (fewer when the stream was shorter);
// meaningful once Read has returned io.EOF.
func (h *Holdback) Held() []byte {
	return h.buf[h.from:h.to]
}
