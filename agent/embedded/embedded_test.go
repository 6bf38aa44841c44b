package embedded

import (
	"bytes"
	"io"
	"testing"
)

// Binary's size, taken from the gzip trailer, is what its reader yields:
// the launcher reads exactly that many bytes.
func TestBinarySize(t *testing.T) {
	for _, goarch := range []string{"amd64", "arm64"} {
		r, size, err := Binary(goarch)
		if err != nil {
			t.Fatalf("Binary(%s): %v", goarch, err)
		}
		b, err := io.ReadAll(r)
		if err != nil || int64(len(b)) != size || !bytes.HasPrefix(b, []byte("\x7fELF")) {
			t.Errorf("Binary(%s): read %d bytes (%v), size %d, want an ELF file of that size", goarch, len(b), err, size)
		}
	}
	if _, _, err := Binary("mips"); err == nil {
		t.Error("Binary(mips) found an agent")
	}
}
