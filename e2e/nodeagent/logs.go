package nodeagent

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"
)

// Container logs are kept in the CRI format that the kubelet reads:
//
//	<RFC3339Nano time> <stdout|stderr> <F|P> <content>
//
// one entry per line of output; P marks a piece of a line longer than
// maxLogLine (or cut by the end of the stream), F the piece that ends it.
const maxLogLine = 16 * 1024

const (
	streamStdout = "stdout"
	streamStderr = "stderr"
)

// logWriter appends entries of both streams of one container run to its file.
type logWriter struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

func (l *logWriter) writeEntry(stream string, content []byte, full bool) error {
	tag := "F"
	if !full {
		tag = "P"
	}
	var b bytes.Buffer
	b.WriteString(l.now().UTC().Format(time.RFC3339Nano))
	b.WriteByte(' ')
	b.WriteString(stream)
	b.WriteByte(' ')
	b.WriteString(tag)
	b.WriteByte(' ')
	b.Write(content)
	b.WriteByte('\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err := l.w.Write(b.Bytes())
	return err
}

// pumpLog copies one output stream of a process into the log, line by line,
// until r ends. tee, when set, also receives the raw output (for attach).
func pumpLog(r io.Reader, l *logWriter, stream string, tee func([]byte)) error {
	br := bufio.NewReaderSize(r, maxLogLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if tee != nil {
				tee(line)
			}
			full := line[len(line)-1] == '\n'
			content := line
			if full {
				content = line[:len(line)-1]
			}
			if werr := l.writeEntry(stream, content, full); werr != nil {
				return fmt.Errorf("write %s log: %w", stream, werr)
			}
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF), errors.Is(err, os.ErrClosed):
			return nil
		default:
			// A pty master reports EIO once the process side is closed.
			return nil
		}
	}
}

// logEntry is one parsed line of a CRI log file.
type logEntry struct {
	time    time.Time
	stream  string
	full    bool
	content []byte
}

func parseLogEntry(line []byte) (logEntry, error) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	fields := bytes.SplitN(line, []byte(" "), 4)
	if len(fields) < 3 {
		return logEntry{}, fmt.Errorf("malformed log line %q", line)
	}
	t, err := time.Parse(time.RFC3339Nano, string(fields[0]))
	if err != nil {
		return logEntry{}, fmt.Errorf("malformed log time: %w", err)
	}
	e := logEntry{time: t, stream: string(fields[1]), full: string(fields[2]) != "P"}
	if len(fields) == 4 {
		e.content = fields[3]
	}
	return e, nil
}

// logOptions are the kubelet's containerLogs query parameters.
type logOptions struct {
	follow     bool
	tailLines  int64 // -1: all
	since      time.Time
	timestamps bool
	limitBytes int64  // 0: no limit
	stream     string // "": both
	previous   bool
}

func parseLogOptions(q url.Values, now time.Time) (logOptions, error) {
	opts := logOptions{tailLines: -1}
	boolParam := func(name string) (bool, error) {
		v := q.Get(name)
		if v == "" {
			return false, nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, fmt.Errorf("invalid %s %q", name, v)
		}
		return b, nil
	}
	var err error
	if opts.follow, err = boolParam("follow"); err != nil {
		return opts, err
	}
	if opts.previous, err = boolParam("previous"); err != nil {
		return opts, err
	}
	if opts.timestamps, err = boolParam("timestamps"); err != nil {
		return opts, err
	}
	intParam := func(name string, min int64) (int64, bool, error) {
		v := q.Get(name)
		if v == "" {
			return 0, false, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < min {
			return 0, false, fmt.Errorf("invalid %s %q", name, v)
		}
		return n, true, nil
	}
	if n, ok, err := intParam("tailLines", 0); err != nil {
		return opts, err
	} else if ok {
		opts.tailLines = n
	}
	if n, ok, err := intParam("limitBytes", 1); err != nil {
		return opts, err
	} else if ok {
		opts.limitBytes = n
	}
	if n, ok, err := intParam("sinceSeconds", 1); err != nil {
		return opts, err
	} else if ok {
		opts.since = now.Add(-time.Duration(n) * time.Second)
	}
	if v := q.Get("sinceTime"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return opts, fmt.Errorf("invalid sinceTime %q", v)
		}
		opts.since = t
	}
	switch s := q.Get("stream"); s {
	case "", "All":
	case "Stdout":
		opts.stream = streamStdout
	case "Stderr":
		opts.stream = streamStderr
	default:
		return opts, fmt.Errorf("invalid stream %q", s)
	}
	return opts, nil
}

// errLimitReached ends a log read once limitBytes are written.
var errLimitReached = errors.New("log limit reached")

// logReader writes the selected entries of a log file to out.
type logReader struct {
	opts    logOptions
	out     io.Writer
	written int64
}

func (r *logReader) emit(e logEntry) error {
	if r.opts.stream != "" && e.stream != r.opts.stream {
		return nil
	}
	if !r.opts.since.IsZero() && e.time.Before(r.opts.since) {
		return nil
	}
	var b bytes.Buffer
	if r.opts.timestamps {
		b.WriteString(e.time.Format(time.RFC3339Nano))
		b.WriteByte(' ')
	}
	b.Write(e.content)
	if e.full {
		b.WriteByte('\n')
	}
	data := b.Bytes()
	if r.opts.limitBytes > 0 && r.written+int64(len(data)) >= r.opts.limitBytes {
		data = data[:r.opts.limitBytes-r.written]
		_, err := r.out.Write(data)
		if err != nil {
			return err
		}
		return errLimitReached
	}
	n, err := r.out.Write(data)
	r.written += int64(n)
	if f, ok := r.out.(interface{ Flush() }); ok && r.opts.follow {
		f.Flush()
	}
	return err
}

// tailOffset returns the offset of the first of the last n entries of the
// stream(s) selected, scanning the file once.
func tailOffset(f io.ReadSeeker, n int64, stream string) (int64, error) {
	if n < 0 {
		return 0, nil
	}
	if n == 0 {
		return f.Seek(0, io.SeekEnd)
	}
	ring := make([]int64, n)
	count := int64(0)
	var off int64
	br := bufio.NewReader(f)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			if e, perr := parseLogEntry(line); perr == nil && (stream == "" || e.stream == stream) {
				ring[count%n] = off
				count++
			}
			off += int64(len(line))
		}
		if err != nil {
			break
		}
	}
	if count <= n {
		return 0, nil
	}
	return ring[count%n], nil
}

// readLog writes the log file at path to out according to opts. With follow,
// it keeps reading new entries until finished reports that no more will be
// written (the container run ended) or ctx is done.
func readLog(ctx context.Context, path string, opts logOptions, out io.Writer, finished func() bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	start, err := tailOffset(f, opts.tailLines, opts.stream)
	if err != nil {
		return err
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return err
	}
	r := &logReader{opts: opts, out: out}
	br := bufio.NewReader(f)
	var pending []byte // a line whose end is not written yet
	for {
		chunk, err := br.ReadBytes('\n')
		pending = append(pending, chunk...)
		if len(pending) > 0 && pending[len(pending)-1] == '\n' {
			if e, perr := parseLogEntry(pending); perr == nil {
				if err := r.emit(e); err != nil {
					if errors.Is(err, errLimitReached) {
						return nil
					}
					return err
				}
			}
			pending = pending[:0]
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, io.EOF) {
			return err
		}
		if !opts.follow {
			return nil
		}
		// Check before waiting, then read once more: entries written just
		// before the run finished must not be lost.
		done := finished()
		if done {
			if rest, _ := io.ReadAll(br); len(rest) > 0 {
				br = bufio.NewReader(io.MultiReader(bytes.NewReader(rest), f))
				continue
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}
