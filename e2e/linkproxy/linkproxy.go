// Package linkproxy is a TCP proxy that limits throughput in each direction,
// so benchmarks can see what a laptop talking to a remote cluster sees. It
// forwards TLS untouched: clients keep verifying the API server's certificate.
package linkproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"

	"golang.org/x/time/rate"
)

// Proxy forwards connections from its listener to Target.
type Proxy struct {
	Target   string
	listener net.Listener
	up, down *rate.Limiter // shared by all connections: one link
	wg       sync.WaitGroup
}

// burst is the largest single write; also the limiter's bucket size, so a
// short burst never exceeds the link by more than this.
const burst = 64 << 10

// Listen starts a proxy on a free loopback port that carries at most
// bytesPerSecond each way to target.
func Listen(target string, bytesPerSecond int) (*Proxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	limit := rate.Limit(bytesPerSecond)
	return &Proxy{
		Target: target, listener: l,
		up:   rate.NewLimiter(limit, burst),
		down: rate.NewLimiter(limit, burst),
	}, nil
}

// Addr is the address clients dial.
func (p *Proxy) Addr() string { return p.listener.Addr().String() }

// Serve accepts connections until ctx is done, then closes them all.
func (p *Proxy) Serve(ctx context.Context) {
	go func() {
		<-ctx.Done()
		p.listener.Close()
	}()
	for {
		client, err := p.listener.Accept()
		if err != nil {
			break
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.forward(ctx, client)
		}()
	}
	p.wg.Wait()
}

func (p *Proxy) forward(ctx context.Context, client net.Conn) {
	defer client.Close()
	server, err := (&net.Dialer{}).DialContext(ctx, "tcp", p.Target)
	if err != nil {
		return
	}
	defer server.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // unblock both copies when either side or ctx ends
		<-ctx.Done()
		client.Close()
		server.Close()
	}()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); pipe(ctx, cancel, server, client, p.up) }()
	go func() { defer wg.Done(); pipe(ctx, cancel, client, server, p.down) }()
	wg.Wait()
}

// pipe copies src to dst at the limiter's pace. At EOF it half-closes dst so
// the peer sees the end, and the other direction goes on; any other failure
// ends the whole connection.
func pipe(ctx context.Context, cancel context.CancelFunc, dst, src net.Conn, l *rate.Limiter) {
	buf := make([]byte, burst)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if l.WaitN(ctx, n) != nil {
				cancel()
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				cancel()
				return
			}
		}
		if errors.Is(err, io.EOF) {
			if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
				return
			}
		}
		if err != nil {
			cancel()
			return
		}
	}
}
