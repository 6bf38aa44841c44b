package untar

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

func TestHoldback(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789"), 100_000)
	tests := []struct {
		name       string
		in         []byte
		n          int
		pass, held string
	}{
		{"short stream", []byte("abc"), 5, "", "abc"},
		{"exactly the marker", []byte("marker"), 6, "", "marker"},
		{"data then marker", []byte("datamarker"), 6, "data", "marker"},
		{"a megabyte then marker", append(append([]byte{}, big...), "END"...), 3, string(big), "END"},
	}
	for _, tt := range tests {
		for _, wrap := range []struct {
			name string
			r    func(io.Reader) io.Reader
		}{{"whole reads", func(r io.Reader) io.Reader { return r }}, {"one byte reads", iotest.OneByteReader}} {
			t.Run(tt.name+"/"+wrap.name, func(t *testing.T) {
				h := NewHoldback(wrap.r(bytes.NewReader(tt.in)), tt.n)
				got, err := io.ReadAll(iotest.HalfReader(h))
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != tt.pass || string(h.Held()) != tt.held {
					t.Errorf("passed %d bytes, held %q; want %d bytes, %q", len(got), h.Held(), len(tt.pass), tt.held)
				}
			})
		}
	}
}
