// Package codec compresses and decompresses the byte streams of the agent's
// protocol (protocol.Codec...), the same way on both ends.
package codec

import (
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"

	"github.com/kubectl-concourse/kubectl-concourse/agent/protocol"
)

// NewReader reads r as codec names it. Close releases the decoder.
func NewReader(codec string, r io.Reader) (io.ReadCloser, error) {
	switch codec {
	case protocol.CodecNone:
		return io.NopCloser(r), nil
	case protocol.CodecGzip:
		return gzip.NewReader(r)
	case protocol.CodecZstd:
		// One goroutine: the container's cores extract and hash.
		// The content checksum is what verifies a download's bytes
		// (protocol.Request.NoFileSums): never ignored. The other end
		// may be hostile: a frame may not ask for a window larger than
		// NewWriter's (4 MiB at SpeedFastest), where the library would
		// allow 512 MiB of history.
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.IgnoreChecksum(false),
			zstd.WithDecoderMaxWindow(maxWindow))
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	case protocol.CodecS2:
		// A hostile end may not ask for blocks larger than NewWriter's.
		return io.NopCloser(s2.NewReader(r, s2.ReaderMaxBlockSize(s2BlockSize))), nil
	}
	return nil, fmt.Errorf("unknown codec %q", codec)
}

// NewWriter writes to w as codec names it; Close ends the compressed stream
// (not w).
func NewWriter(codec string, w io.Writer) (io.WriteCloser, error) {
	switch codec {
	case protocol.CodecNone:
		return nopWriteCloser{w}, nil
	case protocol.CodecGzip:
		return gzip.NewWriterLevel(w, gzip.BestSpeed)
	case protocol.CodecZstd:
		return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(true),
			zstd.WithWindowSize(maxWindow))
	case protocol.CodecS2:
		return s2.NewWriter(w, s2.WriterConcurrency(1), s2.WriterBlockSize(s2BlockSize)), nil
	}
	return nil, fmt.Errorf("unknown codec %q", codec)
}

// maxWindow is the zstd window both ends use, and the most a reader
// accepts: 4 MiB, SpeedFastest's own.
const maxWindow = 4 << 20

// s2BlockSize is the S2 blocks both ends use, and the largest a reader
// accepts: each block carries the CRC-32C of its data.
const s2BlockSize = 1 << 20

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
