// Package frame is the wire format between the plugin and its in-container
// agent: a handshake, then frames of a type byte, a big-endian uint32 length
// and a payload of at most MaxPayload bytes. Control frames carry JSON, data
// frames carry a byte stream that an end frame closes. It imports the
// standard library only: it reads what a container sends, so it is fuzzed.
package frame

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Type says what a frame's payload is.
type Type byte

const (
	Control Type = 'C' // a JSON request or reply
	Data    Type = 'D' // a piece of a byte stream
	End     Type = 'E' // the end of a byte stream (empty payload)
)

// MaxPayload caps a frame's payload, so a hostile or broken length costs at
// most this much memory. Data frames are written DataChunk at a time.
const (
	MaxPayload = 1 << 20
	DataChunk  = 256 << 10
)

// Magic opens the agent's stdout, before its protocol version (a
// big-endian uint16). Whatever a shell or the runtime printed before it
// is noise, never parsed as a frame.
const Magic = "\x00kubectl-concourse-agent\x00"

// Version is the protocol version; plugin and agent must agree exactly
// (they are built from the same commit).
const Version uint16 = 1

// maxNoise bounds what ReadHandshake skips before the magic.
const maxNoise = 64 << 10

const headerLen = 5

// WriteHandshake writes the magic and the protocol version.
func WriteHandshake(w io.Writer) error {
	b := make([]byte, 0, len(Magic)+2)
	b = append(b, Magic...)
	b = binary.BigEndian.AppendUint16(b, Version)
	_, err := w.Write(b)
	return err
}

// ReadHandshake skips up to 64 KiB of noise, then reads the magic and the
// version, and fails unless the version is this one. It returns the noise,
// which says why an agent that never started did not.
func ReadHandshake(r *bufio.Reader) (noise []byte, err error) {
	var seen []byte
	for {
		b, err := r.ReadByte()
		if err != nil {
			return seen, fmt.Errorf("no handshake from the agent: %w", err)
		}
		seen = append(seen, b)
		if bytes.HasSuffix(seen, []byte(Magic)) {
			break
		}
		if len(seen) > maxNoise {
			return seen, errors.New("no handshake from the agent in its first 64 KiB of output")
		}
	}
	noise = seen[:len(seen)-len(Magic)]
	var v [2]byte
	if _, err := io.ReadFull(r, v[:]); err != nil {
		return noise, fmt.Errorf("agent handshake cut: %w", err)
	}
	if got := binary.BigEndian.Uint16(v[:]); got != Version {
		return noise, fmt.Errorf("agent speaks protocol version %d, the plugin %d", got, Version)
	}
	return noise, nil
}

// Reader reads frames.
type Reader struct {
	r   io.Reader
	hdr [headerLen]byte
	buf []byte
}

// NewReader reads frames from r (buffer it: a frame is two reads).
func NewReader(r io.Reader) *Reader { return &Reader{r: r} }

// ErrTooLarge is a frame whose length exceeds MaxPayload.
var ErrTooLarge = errors.New("frame larger than the protocol allows")

// Next reads the next frame. The payload is valid until the next call. A
// stream that ends cleanly between frames returns io.EOF; one cut inside a
// frame returns io.ErrUnexpectedEOF.
func (fr *Reader) Next() (Type, []byte, error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		return 0, nil, err
	}
	t := Type(fr.hdr[0])
	n := binary.BigEndian.Uint32(fr.hdr[1:])
	switch {
	case t != Control && t != Data && t != End:
		return 0, nil, fmt.Errorf("unknown frame type %#x", byte(t))
	case n > MaxPayload:
		return 0, nil, ErrTooLarge
	case t == End && n != 0:
		return 0, nil, errors.New("end frame with a payload")
	}
	// The buffer grows with the bytes that really arrive, never to a
	// length announced by a frame that then ends short.
	p := fr.buf[:0]
	for len(p) < int(n) {
		step := min(int(n)-len(p), max(len(p), 64<<10))
		p = slices.Grow(p, step)
		if _, err := io.ReadFull(fr.r, p[len(p):len(p)+step]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, nil, err
		}
		p = p[:len(p)+step]
	}
	fr.buf = p
	return t, p, nil
}

// Writer writes frames. It is not safe for concurrent use.
type Writer struct {
	w   io.Writer
	hdr [headerLen]byte
}

// NewWriter writes frames to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write writes one frame.
func (fw *Writer) Write(t Type, p []byte) error {
	if len(p) > MaxPayload {
		return ErrTooLarge
	}
	fw.hdr[0] = byte(t)
	binary.BigEndian.PutUint32(fw.hdr[1:], uint32(len(p)))
	if _, err := fw.w.Write(fw.hdr[:]); err != nil {
		return err
	}
	_, err := fw.w.Write(p)
	return err
}

// DataWriter turns writes into data frames of at most DataChunk bytes;
// Close ends the stream with an end frame (it does not close the
// underlying writer).
type DataWriter struct{ fw *Writer }

// NewDataWriter starts a byte stream on fw.
func NewDataWriter(fw *Writer) *DataWriter { return &DataWriter{fw: fw} }

func (d *DataWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		c := p[:min(len(p), DataChunk)]
		if err := d.fw.Write(Data, c); err != nil {
			return n, err
		}
		n += len(c)
		p = p[len(c):]
	}
	return n, nil
}

// Close writes the end frame.
func (d *DataWriter) Close() error { return d.fw.Write(End, nil) }

// DataReader reads a byte stream of data frames up to its end frame, which
// it returns as io.EOF. Any other frame before the end is an error.
type DataReader struct {
	fr   *Reader
	rest []byte
	done bool
}

// NewDataReader reads the byte stream that comes next on fr.
func NewDataReader(fr *Reader) *DataReader { return &DataReader{fr: fr} }

func (d *DataReader) Read(p []byte) (int, error) {
	for len(d.rest) == 0 {
		if d.done {
			return 0, io.EOF
		}
		t, payload, err := d.fr.Next()
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // the stream ended without its end frame
		}
		if err != nil {
			return 0, err
		}
		switch t {
		case Data:
			d.rest = payload
		case End:
			d.done = true
		default:
			return 0, fmt.Errorf("frame %q inside a byte stream", byte(t))
		}
	}
	n := copy(p, d.rest)
	d.rest = d.rest[n:]
	return n, nil
}

// Drain reads the rest of the stream, up to its end frame: what a receiver
// that already failed does, so the next frame is the next request.
func (d *DataReader) Drain() error {
	_, err := io.Copy(io.Discard, d)
	return err
}
