package frame

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	var b bytes.Buffer
	fw := NewWriter(&b)
	if err := WriteHandshake(&b); err != nil {
		t.Fatal(err)
	}
	if err := fw.Write(Control, []byte(`{"op":"x"}`)); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789"), DataChunk/5) // two chunks
	dw := NewDataWriter(fw)
	if _, err := dw.Write(big); err != nil {
		t.Fatal(err)
	}
	if err := dw.Close(); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(io.MultiReader(bytes.NewReader([]byte("sh: noise\n")), &b))
	noise, err := ReadHandshake(br)
	if err != nil || string(noise) != "sh: noise\n" {
		t.Fatalf("ReadHandshake = %q, %v", noise, err)
	}
	fr := NewReader(br)
	typ, p, err := fr.Next()
	if err != nil || typ != Control || string(p) != `{"op":"x"}` {
		t.Fatalf("Next = %c %q %v", typ, p, err)
	}
	got, err := io.ReadAll(NewDataReader(fr))
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("data stream = %d bytes, %v; want %d", len(got), err, len(big))
	}
	if _, _, err := fr.Next(); err != io.EOF {
		t.Fatalf("Next at the end = %v, want io.EOF", err)
	}
}

func TestReaderRefuses(t *testing.T) {
	hdr := func(typ byte, n uint32) []byte {
		return binary.BigEndian.AppendUint32([]byte{typ}, n)
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"hostile length", hdr('D', 0xffffffff), ErrTooLarge},
		{"one over the cap", hdr('C', MaxPayload+1), ErrTooLarge},
		{"cut payload", append(hdr('D', 10), "abc"...), io.ErrUnexpectedEOF},
		{"cut header", []byte{'D', 0}, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := NewReader(bytes.NewReader(tt.in)).Next()
			if !errors.Is(err, tt.want) {
				t.Errorf("Next = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestHandshakeVersionMismatch(t *testing.T) {
	in := binary.BigEndian.AppendUint16([]byte(Magic), Version+1)
	if _, err := ReadHandshake(bufio.NewReader(bytes.NewReader(in))); err == nil {
		t.Fatal("ReadHandshake accepted another protocol version")
	}
}

func FuzzReader(f *testing.F) {
	var b bytes.Buffer
	fw := NewWriter(&b)
	fw.Write(Control, []byte(`{"op":"receive"}`))
	fw.Write(Data, []byte("abc"))
	fw.Write(End, nil)
	f.Add(b.Bytes())
	f.Add([]byte{'D', 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{'E', 0, 0, 0, 1, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		fr := NewReader(bytes.NewReader(in))
		for range 64 {
			typ, p, err := fr.Next()
			if err != nil {
				return
			}
			if len(p) > MaxPayload || len(p) > len(in) {
				t.Fatalf("payload of %d bytes from %d bytes of input", len(p), len(in))
			}
			if cap(fr.buf) > 2*len(in)+64<<10 {
				t.Fatalf("buffer of %d bytes from %d bytes of input", cap(fr.buf), len(in))
			}
			if typ == Data {
				io.Copy(io.Discard, NewDataReader(fr))
			}
		}
	})
}
