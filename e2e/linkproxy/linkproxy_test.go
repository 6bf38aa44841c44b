package linkproxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"testing"
)

// TestForwardsBothWaysWithHalfClose sends a payload through the proxy to a
// server that answers only after reading to EOF: the bytes must arrive intact
// each way, and the client's half-close must reach the server.
func TestForwardsBothWaysWithHalfClose(t *testing.T) {
	server, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	go func() {
		conn, err := server.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		got, _ := io.ReadAll(conn) // until the client's half-close
		_, _ = conn.Write(reverse(got))
	}()

	p, err := Listen(server.Addr().String(), 8<<20)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { p.Serve(ctx); close(served) }()

	payload := make([]byte, 1<<20)
	_, _ = rand.Read(payload)
	conn, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(payload); err != nil {
		t.Fatal(err)
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	answer, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if !bytes.Equal(answer, reverse(payload)) {
		t.Errorf("answer through the proxy: %d bytes, not the reversed %d-byte payload", len(answer), len(payload))
	}

	cancel()
	<-served // Serve returns once every connection is closed
}

func reverse(b []byte) []byte {
	r := make([]byte, len(b))
	for i, c := range b {
		r[len(b)-1-i] = c
	}
	return r
}
