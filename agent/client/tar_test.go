package client

import (
	"archive/tar"
	"io"
	"testing"
	"time"
)

// tarWriter writes test archives.
type tarWriter struct{ tw *tar.Writer }

func newTarWriter(w io.Writer) *tarWriter { return &tarWriter{tar.NewWriter(w)} }

func (w *tarWriter) file(name, body string) {
	w.tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(1700000000, 0)})
	io.WriteString(w.tw, body)
}

func (w *tarWriter) close(t *testing.T) {
	if err := w.tw.Close(); err != nil {
		t.Fatal(err)
	}
}
