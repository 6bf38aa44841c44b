package embedded

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// Every architecture the plugin starts the agent on has an ELF binary for
// it, and Digest is that binary's SHA-256.
func TestBinaries(t *testing.T) {
	for _, goarch := range []string{"amd64", "arm64"} {
		b, err := Binary(goarch)
		if err != nil || !bytes.HasPrefix(b, []byte("\x7fELF")) {
			t.Fatalf("Binary(%s): %d bytes (%v), want an ELF file", goarch, len(b), err)
		}
		sum := sha256.Sum256(b)
		if d, err := Digest(goarch); err != nil || d != hex.EncodeToString(sum[:]) {
			t.Errorf("Digest(%s) = %q, %v; want the binary's SHA-256", goarch, d, err)
		}
	}
	if _, err := Binary("mips"); err == nil {
		t.Error("Binary(mips) found an agent")
	}
	if _, err := Digest("mips"); err == nil {
		t.Error("Digest(mips) has a digest")
	}
}
