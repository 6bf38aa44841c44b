package lzo

import (
	"bytes"
	"errors"
	"github.com/kubectl-concourse/kubectl-concourse/internal/compresstest"
	"io"
	"os/exec"
	"testing"
)

// lzop compresses b with the machine's busybox lzop, as a container would.
func lzop(t *testing.T, b []byte, args ...string) []byte {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox not installed")
	}
	cmd := exec.Command(bb, append([]string{"lzop", "-c"}, args...)...)
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("busybox lzop: %v", err)
	}
	return out
}

func TestReaderReadsBusybox(t *testing.T) {
	for name, in := range compresstest.Inputs() {
		for _, level := range []string{"-1", "-3", "-6"} {
			t.Run(name+level, func(t *testing.T) {
				z, err := NewReader(bytes.NewReader(lzop(t, in, level)))
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(z)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, in) {
					t.Fatalf("decompressed %d bytes, want %d (equal: %v)", len(got), len(in), bytes.Equal(got, in))
				}
			})
		}
	}
}

func TestReaderRefusesDamage(t *testing.T) {
	in := compresstest.Inputs()["text"]
	good := lzop(t, in)
	for name, damage := range map[string]func([]byte) []byte{
		"cut in a block":   func(b []byte) []byte { return b[:len(b)/2] },
		"no end block":     func(b []byte) []byte { return b[:len(b)-4] },
		"a flipped byte":   func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b },
		"a huge block":     func(b []byte) []byte { copy(b[38:], []byte{0x7f, 0, 0, 0}); return b },
		"a flipped header": func(b []byte) []byte { b[16] ^= 1; return b },
	} {
		t.Run(name, func(t *testing.T) {
			b := damage(append([]byte{}, good...))
			z, err := NewReader(bytes.NewReader(b))
			if err == nil {
				_, err = io.ReadAll(z)
			}
			if err == nil {
				t.Fatal("damaged stream read without error")
			}
			if !errors.Is(err, errCorrupt) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("error %v, want errCorrupt or a cut", err)
			}
		})
	}
}

// FuzzLZO1XDecompress checks that no input makes the decoder panic, and
// that a block it accepts decodes to bytes of its own: the same whatever
// the output buffer held before (a match reaching behind what was written
// would copy the buffer's old bytes), and only at its exact size.
func FuzzLZO1XDecompress(f *testing.F) {
	f.Add([]byte{0x11, 0, 0}, 0)
	f.Add([]byte{0x15, 'a', 'b', 'c', 'd', 0x11, 0, 0}, 4)
	f.Fuzz(func(t *testing.T, in []byte, n int) {
		if n < 0 || n > 64<<10 {
			return
		}
		zeros := make([]byte, n)
		if lzo1xDecompress(in, zeros) != nil {
			return
		}
		ones := bytes.Repeat([]byte{0xff}, n)
		if err := lzo1xDecompress(in, ones); err != nil || !bytes.Equal(zeros, ones) {
			t.Fatalf("a block decodes differently into a buffer that held other bytes (%v)", err)
		}
		if err := lzo1xDecompress(in, make([]byte, n+1)); err == nil {
			t.Fatalf("a block of %d bytes decodes into %d", n, n+1)
		}
	})
}
