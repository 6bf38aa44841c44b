package artifacts

import "io"

// holdback passes on a stream but for its last n bytes, which it keeps:
// the end marker a download's stream closes with (streamScript), which
// the extractor or decompressor reading through it never sees.
type holdback struct {
	r        io.Reader
	n        int
	buf      []byte
	from, to int // buf[from:to] is read from r and not yet passed on
	err      error
}

func newHoldback(r io.Reader, n int) *holdback {
	return &holdback{r: r, n: n, buf: make([]byte, max(256<<10, 2*n))}
}

func (h *holdback) Read(p []byte) (int, error) {
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

// held is the stream's last n bytes (fewer when the stream was shorter);
// meaningful once Read has returned io.EOF.
func (h *holdback) held() []byte {
	return h.buf[h.from:h.to]
}
