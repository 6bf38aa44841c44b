package logs

import (
	"bytes"
	"io"
	"time"
)

// stampWriter prefixes every line with the time of what it says, as fly's
// -t does (fly/eventstream/timestamped_writer.go): HH:MM:SS and two spaces
// in the local time zone, or ten spaces for a line without a time.
type stampWriter struct {
	w       io.Writer
	on      bool
	loc     *time.Location
	prefix  []byte
	atStart bool
}

const noStamp = "          " // fly's timestampLen spaces

func newStampWriter(w io.Writer, on bool, loc *time.Location) *stampWriter {
	return &stampWriter{w: w, on: on, loc: loc, prefix: []byte(noStamp), atStart: true}
}

// stamp sets the time of the lines written next; zero for none.
func (s *stampWriter) stamp(t time.Time) {
	if !s.on {
		return
	}
	if t.IsZero() {
		s.prefix = append(s.prefix[:0], noStamp...)
		return
	}
	s.prefix = append(t.In(s.loc).AppendFormat(s.prefix[:0], "15:04:05"), ' ', ' ')
}

func (s *stampWriter) Write(b []byte) (int, error) {
	if !s.on {
		return s.w.Write(b)
	}
	n := len(b)
	var out bytes.Buffer
	for len(b) > 0 {
		if s.atStart {
			out.Write(s.prefix)
			s.atStart = false
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			out.Write(b)
			break
		}
		out.Write(b[:i+1])
		b, s.atStart = b[i+1:], true
	}
	if _, err := s.w.Write(out.Bytes()); err != nil {
		return 0, err
	}
	return n, nil
}

// kubeletStamps reads the RFC 3339 time the kubelet puts before each log
// line (PodLogOptions.Timestamps), stamps the line with it and passes the
// rest of the line on to w.
type kubeletStamps struct {
	stamps *stampWriter
	w      io.Writer
	head   []byte // the start of a line, until its time is read
	inLine bool   // past the time of the current line
}

// maxStamp bounds the time at the start of a line; longer is no time.
const maxStamp = len("2006-01-02T15:04:05.999999999+07:00")

func (k *kubeletStamps) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		if !k.inLine {
			i := bytes.IndexAny(b, " \n")
			if i < 0 && len(k.head)+len(b) <= maxStamp {
				k.head = append(k.head, b...)
				return n, nil
			}
			rest := b
			if i >= 0 && len(k.head)+i <= maxStamp {
				k.head, rest = append(k.head, b[:i]...), b[i:]
			}
			if t, err := time.Parse(time.RFC3339Nano, string(k.head)); err == nil {
				k.stamps.stamp(t)
				rest = bytes.TrimPrefix(rest, []byte(" "))
			} else if _, err := k.w.Write(k.head); err != nil {
				return 0, err
			}
			k.head, k.inLine, b = k.head[:0], true, rest
			continue
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			_, err := k.w.Write(b)
			return n, err
		}
		if _, err := k.w.Write(b[:i+1]); err != nil {
			return 0, err
		}
		b, k.inLine = b[i+1:], false
	}
	return n, nil
}
