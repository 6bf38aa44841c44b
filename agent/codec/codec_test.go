package codec

import (
	"bytes"
	"crypto/rand"
	"io"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"

	"github.com/kubectl-concourse/kubectl-concourse/agent/protocol"
)

// A zstd stream from NewWriter reads back whole; one whose frame asks for
// a larger window than NewWriter's (a hostile end's way to make the
// reader hold up to 512 MiB of history) is refused.
func TestZstdWindowIsBounded(t *testing.T) {
	data := make([]byte, 12<<20)
	rand.Read(data[:1<<20])
	for i := 1 << 20; i < len(data); i += 1 << 20 {
		copy(data[i:], data[:1<<20]) // repeats beyond 4 MiB back
	}
	big := new(bytes.Buffer)
	bw, _ := zstd.NewWriter(big, zstd.WithWindowSize(64<<20), zstd.WithEncoderConcurrency(1))
	bw.Write(data)
	bw.Close()
	readsOursRefusesLarger(t, protocol.CodecZstd, data, "a 64 MiB window", big.Bytes())
}

// An S2 stream from NewWriter reads back whole; one whose blocks are larger
// than NewWriter's (a hostile end's way to make the reader hold them) is
// refused.
func TestS2BlocksAreBounded(t *testing.T) {
	data := make([]byte, 6<<20)
	rand.Read(data)
	big := new(bytes.Buffer)
	bw := s2.NewWriter(big, s2.WriterBlockSize(4<<20), s2.WriterConcurrency(1))
	bw.Write(data)
	bw.Close()
	readsOursRefusesLarger(t, protocol.CodecS2, data, "4 MiB blocks", big.Bytes())
}

// readsOursRefusesLarger checks that NewWriter's stream of data reads back
// whole, and that larger (data written by another encoder with larger
// buffers than ours) is refused.
func readsOursRefusesLarger(t *testing.T, codec string, data []byte, name string, larger []byte) {
	t.Helper()
	ours := new(bytes.Buffer)
	w, err := NewWriter(codec, ours)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	w.Close()
	for _, tt := range []struct {
		name   string
		stream []byte
		ok     bool
	}{{"ours", ours.Bytes(), true}, {name, larger, false}} {
		r, err := NewReader(codec, bytes.NewReader(tt.stream))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if ok := err == nil && bytes.Equal(got, data); ok != tt.ok {
			t.Errorf("%s: read %d bytes, %v; want it read whole %v", tt.name, len(got), err, tt.ok)
		}
	}
}
