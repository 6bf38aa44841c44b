package transfer

import (
	"bytes"
	"compress/gzip"
	"errors"
	"github.com/kubectl-concourse/kubectl-concourse/internal/compresstest"
	"io"
	"os/exec"
	"testing"
)

func TestUploadGzipIsOneStream(t *testing.T) {
	for name, in := range compresstest.Inputs() {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			z := newUploadGzip(&b)
			// Odd write sizes, so blocks are cut inside writes.
			for rest := in; len(rest) > 0; {
				k := min(len(rest), 300_001)
				if _, err := z.Write(rest[:k]); err != nil {
					t.Fatal(err)
				}
				rest = rest[k:]
			}
			if err := z.Close(); err != nil {
				t.Fatal(err)
			}
			zr, err := gzip.NewReader(bytes.NewReader(b.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(zr)
			if err != nil || !bytes.Equal(got, in) {
				t.Fatalf("Go's gunzip: %d bytes, %v; want %d", len(got), err, len(in))
			}
			bb, err := exec.LookPath("busybox")
			if err != nil {
				return
			}
			cmd := exec.Command(bb, "gzip", "-dc")
			cmd.Stdin = bytes.NewReader(b.Bytes())
			if got, err := cmd.Output(); err != nil || !bytes.Equal(got, in) {
				t.Fatalf("busybox gunzip: %d bytes, %v; want %d", len(got), err, len(in))
			}
		})
	}
}

type failingWriter struct{ after int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.after -= len(p); f.after < 0 {
		return 0, errors.New("pipe closed")
	}
	return len(p), nil
}

func TestUploadGzipStopsOnAWriteError(t *testing.T) {
	z := newUploadGzip(&failingWriter{after: 100})
	var err error
	for i := 0; i < 200 && err == nil; i++ {
		_, err = z.Write(make([]byte, 1<<20))
	}
	if cerr := z.Close(); err == nil && cerr == nil {
		t.Fatal("no error from a writer that fails")
	}
}
