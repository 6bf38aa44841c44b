package artifacts

import (
	"bytes"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
)

// parallelGzip compresses on every core: the input is cut into blocks of
// gzipBlock bytes, each compressed as a gzip member of its own by one of
// the workers, and the members are written in order. Concatenated members
// are one gzip stream to every gunzip (RFC 1952, 2.2; busybox's, GNU's and
// Go's read them as one), so the container only decompresses, which costs
// it least. Memory stays flat: at most 2 blocks per worker are in flight.
type parallelGzip struct {
	w       io.Writer
	buf     []byte
	queue   chan *gzipBlockJob // in input order, to the writer goroutine
	work    chan *gzipBlockJob // to the workers
	done    chan struct{}      // the writer goroutine ended
	mu      sync.Mutex
	werr    error // the first error writing or compressing
	workers sync.WaitGroup
	closed  bool
}

const gzipBlock = 1 << 20

type gzipBlockJob struct {
	in  []byte
	out bytes.Buffer
	err error
	ok  chan struct{}
}

var gzipJobs = sync.Pool{New: func() any { return &gzipBlockJob{in: make([]byte, 0, gzipBlock)} }}

func newParallelGzip(w io.Writer) *parallelGzip {
	n := gzipWorkers()
	z := &parallelGzip{w: w, buf: make([]byte, 0, gzipBlock),
		queue: make(chan *gzipBlockJob, 2*n), work: make(chan *gzipBlockJob, 2*n), done: make(chan struct{})}
	for range n {
		z.workers.Add(1)
		go z.worker()
	}
	go z.writer()
	return z
}

func (z *parallelGzip) worker() {
	defer z.workers.Done()
	zw, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	for j := range z.work {
		j.out.Reset()
		zw.Reset(&j.out)
		if _, err := zw.Write(j.in); err != nil {
			j.err = err
		} else {
			j.err = zw.Close()
		}
		close(j.ok)
	}
}

func (z *parallelGzip) writer() {
	defer close(z.done)
	for j := range z.queue {
		<-j.ok
		if z.failed() == nil {
			err := j.err
			if err == nil {
				_, err = z.w.Write(j.out.Bytes())
			}
			if err != nil {
				z.mu.Lock()
				z.werr = err
				z.mu.Unlock()
			}
		}
		j.in = j.in[:0]
		gzipJobs.Put(j)
	}
}

func (z *parallelGzip) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if err := z.failed(); err != nil {
			return n, err
		}
		k := min(len(p), gzipBlock-len(z.buf))
		z.buf = append(z.buf, p[:k]...)
		p, n = p[k:], n+k
		if len(z.buf) == gzipBlock {
			z.flush()
		}
	}
	return n, nil
}

// failed returns the first error, if there is one yet.
func (z *parallelGzip) failed() error {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.werr
}

func (z *parallelGzip) flush() {
	if len(z.buf) == 0 {
		return
	}
	j := gzipJobs.Get().(*gzipBlockJob)
	j.in = append(j.in[:0], z.buf...)
	j.ok = make(chan struct{})
	z.buf = z.buf[:0]
	z.queue <- j
	z.work <- j
}

// Close compresses what is left and waits until everything is written.
func (z *parallelGzip) Close() error {
	if z.closed {
		return z.failed()
	}
	z.closed = true
	if z.failed() == nil {
		z.flush()
	}
	close(z.work)
	close(z.queue)
	z.workers.Wait()
	<-z.done
	return z.failed()
}
