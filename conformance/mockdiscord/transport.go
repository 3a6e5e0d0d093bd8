package mockdiscord

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
)

// pipeListener is a net.Listener whose connections come from dial over a
// channel: one end of a net.Pipe each.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

// Accept waits for the next in-memory connection.
func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops Accept and dial. It is idempotent.
func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr returns a placeholder address.
func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "mockdiscord.test:80" }

// dialPipe returns the client end of a new in-memory connection to the
// server, starting the in-memory http.Server on first use.
func (s *Server) dialPipe(ctx context.Context) (net.Conn, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, net.ErrClosed
	}
	if s.pipe == nil {
		l := newPipeListener()
		s.pipe = l
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = s.srv.Serve(l)
		}()
	}
	l := s.pipe
	s.mu.Unlock()

	client, server := net.Pipe()
	select {
	case l.conns <- server:
	case <-l.done:
		_, _ = client.Close(), server.Close()
		return nil, net.ErrClosed
	case <-ctx.Done():
		_, _ = client.Close(), server.Close()
		return nil, ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = client.Close()
		return nil, net.ErrClosed
	}
	s.clientConns[client] = struct{}{}
	return client, nil
}

func (s *Server) forgetClientConn(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.clientConns, c)
}

// pipeTransport is the http.RoundTripper of Server.Client: one in-memory
// connection per request, closed with the response body.
type pipeTransport struct{ s *Server }

// RoundTrip sends req to the mock over a new net.Pipe connection, whatever
// its URL's scheme and host.
func (t *pipeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	closeBody := func() {
		if req.Body != nil {
			_ = req.Body.Close()
		}
	}
	if req.URL == nil {
		closeBody()
		return nil, errors.New("mockdiscord: request has no URL")
	}
	ctx := req.Context()
	conn, err := t.s.dialPipe(ctx)
	if err != nil {
		closeBody()
		return nil, fmt.Errorf("mockdiscord: dial: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	fail := func(err error) (*http.Response, error) {
		stop()
		_ = conn.Close()
		t.s.forgetClientConn(conn)
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, err
	}

	out := req.Clone(ctx)
	out.Close = true // one request per connection: the server closes after responding
	// Write the request concurrently: the server may answer before it has
	// read the whole body, and net.Pipe has no buffer.
	if !t.s.goTracked(func() {
		if err := out.Write(conn); err != nil {
			_ = conn.Close()
		}
	}) {
		closeBody()
		return fail(fmt.Errorf("mockdiscord: %w", net.ErrClosed))
	}
	br := bufio.NewReader(conn)
	for {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return fail(fmt.Errorf("mockdiscord: read response: %w", err))
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			_ = resp.Body.Close()
			continue // 100 Continue and friends: the real response follows
		}
		resp.Body = &pipeBody{rc: resp.Body, conn: conn, stop: stop, ctx: ctx, s: t.s}
		return resp, nil
	}
}

// pipeBody is a response body that closes its connection when closed.
type pipeBody struct {
	rc   io.ReadCloser
	conn net.Conn
	stop func() bool
	ctx  context.Context
	s    *Server
	once sync.Once
}

// Read reads the body; after the request's context ends it returns the
// context's error.
func (b *pipeBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF {
		if cerr := b.ctx.Err(); cerr != nil {
			err = cerr
		}
	}
	return n, err
}

// Close closes the body and its connection. It is idempotent.
func (b *pipeBody) Close() error {
	b.once.Do(func() {
		b.stop()
		_ = b.conn.Close()
		_ = b.rc.Close()
		b.s.forgetClientConn(b.conn)
	})
	return nil
}
