// Package podlogs shows what containers print: their logs are hostile
// text, from the build's own tools, that reaches the user's terminal.
package podlogs

import (
	"bytes"
	"io"
)

// Writer passes build logs through but defuses terminal control: a log
// comes from the container and is hostile. Colour (SGR: ESC [ digits ; m),
// which build tools print and fly shows, is kept; any other escape sequence
// loses its ESC, written "^[" as kubectl's printers do.
type Writer struct {
	w       io.Writer
	pending []byte // an unfinished escape sequence, from ESC on
}

// maxSGR bounds a colour sequence; longer ones are not colour.
const maxSGR = 32

// NewWriter writes to w what a container printed, defused.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

func (l *Writer) Write(b []byte) (int, error) {
	var out bytes.Buffer
	for _, c := range b {
		switch {
		case len(l.pending) == 0 && c != 0x1b:
			out.WriteByte(c)
		case len(l.pending) == 0:
			l.pending = append(l.pending, c)
		case len(l.pending) == 1 && c == '[':
			l.pending = append(l.pending, c)
		case len(l.pending) > 1 && (c >= '0' && c <= '9' || c == ';') && len(l.pending) < maxSGR:
			l.pending = append(l.pending, c)
		case len(l.pending) > 1 && c == 'm':
			out.Write(l.pending)
			out.WriteByte(c)
			l.pending = l.pending[:0]
		default:
			out.WriteString("^[")
			out.Write(l.pending[1:])
			l.pending = l.pending[:0]
			if c == 0x1b {
				l.pending = append(l.pending, c)
			} else {
				out.WriteByte(c)
			}
		}
	}
	if _, err := l.w.Write(out.Bytes()); err != nil {
		return 0, err
	}
	return len(b), nil
}
