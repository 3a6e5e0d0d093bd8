package reference_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	reference "github.com/cordkit/cordkit/impl/default"
	"github.com/cordkit/cordkit/protocols"
)

// wsTimeout bounds every wait in these tests.
const wsTimeout = 10 * time.Second

// wsServer is a tiny websocket server on loopback: it upgrades every
// connection and hands the server end to the test.
type wsServer struct {
	url   string
	conns chan net.Conn
}

// startWSServer starts a server; onAccept, when not nil, runs right after
// the upgrade (to write before the client reads anything).
func startWSServer(t *testing.T, onAccept func(net.Conn)) *wsServer {
	t.Helper()
	return startWSServerWith(t, ws.Upgrader{}, onAccept)
}

// startWSServerWith is startWSServer with a custom upgrader.
func startWSServerWith(t *testing.T, up ws.Upgrader, onAccept func(net.Conn)) *wsServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &wsServer{url: "ws://" + ln.Addr().String() + "/?v=10&encoding=json", conns: make(chan net.Conn, 8)}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.SetDeadline(time.Now().Add(wsTimeout))
			if _, err := up.Upgrade(c); err != nil {
				_ = c.Close()
				continue
			}
			_ = c.SetDeadline(time.Time{})
			if onAccept != nil {
				onAccept(c)
			}
			s.conns <- c
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
		close(s.conns)
		for c := range s.conns {
			_ = c.Close()
		}
	})
	return s
}

// checkNoLeaks fails the test if it leaves goroutines behind, checked
// after every other cleanup (the server's) has run.
func checkNoLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// wsDial dials s and returns both ends.
func wsDial(t *testing.T, s *wsServer, d *reference.Dialer) (protocols.Conn, net.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wsTimeout)
	defer cancel()
	c, err := d.Dial(ctx, s.url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(4000, "test over") })
	select {
	case srv := <-s.conns:
		t.Cleanup(func() { _ = srv.Close() })
		return c, srv
	case <-time.After(wsTimeout):
		t.Fatal("the server got no connection")
		return nil, nil
	}
}

// srvRead reads one frame sent by the client, checking that it is masked,
// and returns it unmasked.
func srvRead(t *testing.T, srv net.Conn) ws.Frame {
	t.Helper()
	_ = srv.SetReadDeadline(time.Now().Add(wsTimeout))
	h, err := ws.ReadHeader(srv)
	require.NoError(t, err)
	require.True(t, h.Masked, "client frames are masked (RFC 6455 §5.3)")
	p := make([]byte, h.Length)
	_, err = io.ReadFull(srv, p)
	require.NoError(t, err)
	ws.Cipher(p, h.Mask, 0)
	h.Masked = false
	return ws.Frame{Header: h, Payload: p}
}

func srvWrite(t *testing.T, srv net.Conn, f ws.Frame) {
	t.Helper()
	_ = srv.SetWriteDeadline(time.Now().Add(wsTimeout))
	require.NoError(t, ws.WriteFrame(srv, f))
}

// clientRead reads one message with a bounded context.
func clientRead(t *testing.T, c protocols.Conn) (protocols.MessageType, []byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wsTimeout)
	defer cancel()
	return c.Read(ctx)
}

func closeCode(f ws.Frame) protocols.CloseCode {
	if len(f.Payload) < 2 {
		return 1005
	}
	return protocols.CloseCode(binary.BigEndian.Uint16(f.Payload))
}

func TestConnEcho(t *testing.T) {
	checkNoLeaks(t)
	s := startWSServer(t, nil)
	c, srv := wsDial(t, s, reference.NewDialer())
	ctx, cancel := context.WithTimeout(t.Context(), wsTimeout)
	defer cancel()

	big := bytes.Repeat([]byte("0123456789"), 20000) // 8-byte length
	for _, m := range []struct {
		typ protocols.MessageType
		p   []byte
	}{
		{protocols.MessageText, []byte(`{"op":1,"d":null}`)},
		{protocols.MessageBinary, []byte{0, 1, 2, 0xff}},
		{protocols.MessageText, bytes.Repeat([]byte("x"), 300)}, // 2-byte length
		{protocols.MessageBinary, big},
		{protocols.MessageText, nil},
	} {
		p := bytes.Clone(m.p)
		require.NoError(t, c.Write(ctx, m.typ, p))
		assert.Equal(t, m.p, p, "Write does not change p")
		f := srvRead(t, srv)
		assert.True(t, f.Header.Fin)
		assert.Equal(t, ws.OpCode(m.typ), f.Header.OpCode)
		assert.Equal(t, len(m.p), len(f.Payload))
		assert.True(t, bytes.Equal(m.p, f.Payload))

		srvWrite(t, srv, ws.NewFrame(ws.OpCode(m.typ), true, f.Payload))
		typ, got, err := c.Read(ctx)
		require.NoError(t, err)
		assert.Equal(t, m.typ, typ)
		assert.True(t, bytes.Equal(m.p, got))
	}
	assert.Error(t, c.Write(ctx, protocols.MessageType(9), []byte("x")), "not a data type")
}

func TestConnFragmentedAndPing(t *testing.T) {
	checkNoLeaks(t)
	s := startWSServer(t, nil)
	c, srv := wsDial(t, s, reference.NewDialer())

	srvWrite(t, srv, ws.NewFrame(ws.OpText, false, []byte(`{"op":0,`)))
	srvWrite(t, srv, ws.NewPingFrame([]byte("are you there")))
	srvWrite(t, srv, ws.NewFrame(ws.OpContinuation, false, []byte(`"t":"READY",`)))
	srvWrite(t, srv, ws.NewPongFrame([]byte("unsolicited")))
	srvWrite(t, srv, ws.NewFrame(ws.OpContinuation, true, []byte(`"s":1}`)))
	srvWrite(t, srv, ws.NewBinaryFrame([]byte("next")))

	typ, msg, err := clientRead(t, c)
	require.NoError(t, err)
	assert.Equal(t, protocols.MessageText, typ)
	assert.Equal(t, `{"op":0,"t":"READY","s":1}`, string(msg), "fragments are reassembled across control frames")

	pong := srvRead(t, srv)
	assert.Equal(t, ws.OpPong, pong.Header.OpCode, "a ping is answered")
	assert.Equal(t, "are you there", string(pong.Payload))

	typ, msg, err = clientRead(t, c)
	require.NoError(t, err)
	assert.Equal(t, protocols.MessageBinary, typ)
	assert.Equal(t, "next", string(msg))
}

func TestConnFramesRightAfterHandshake(t *testing.T) {
	checkNoLeaks(t)
	s := startWSServer(t, func(srv net.Conn) {
		_ = ws.WriteFrame(srv, ws.NewTextFrame([]byte(`{"op":10,"d":{"heartbeat_interval":41250}}`)))
	})
	c, _ := wsDial(t, s, reference.NewDialer())
	_, msg, err := clientRead(t, c)
	require.NoError(t, err)
	assert.Equal(t, `{"op":10,"d":{"heartbeat_interval":41250}}`, string(msg))
}

func TestConnServerClose(t *testing.T) {
	checkNoLeaks(t)
	s := startWSServer(t, nil)
	c, srv := wsDial(t, s, reference.NewDialer())
	srvWrite(t, srv, ws.NewCloseFrame(ws.NewCloseFrameBody(4004, "Authentication failed.")))

	_, _, err := clientRead(t, c)
	var ce *protocols.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, protocols.CloseAuthenticationFailed, ce.Code)
	assert.Equal(t, "Authentication failed.", ce.Reason)
	assert.ErrorIs(t, err, protocols.ErrInvalidToken)

	reply := srvRead(t, srv)
	assert.Equal(t, ws.OpClose, reply.Header.OpCode, "the close frame is answered")
	assert.Empty(t, reply.Payload, "without a status code, so never 1000 or 1001")

	_, _, again := clientRead(t, c)
	assert.Equal(t, protocols.CloseAuthenticationFailed, protocols.CloseStatus(again), "later Reads report the close too")
	assert.NoError(t, c.Close(4000, ""))
	assert.ErrorIs(t, c.Write(t.Context(), protocols.MessageText, []byte("x")), protocols.ErrClosed)
}

func TestConnServerCloseWithoutCode(t *testing.T) {
	checkNoLeaks(t)
	s := startWSServer(t, nil)
	c, srv := wsDial(t, s, reference.NewDialer())
	srvWrite(t, srv, ws.NewCloseFrame(nil))
	_, _, err := clientRead(t, c)
	assert.Equal(t, protocols.CloseCode(1005), protocols.CloseStatus(err))
}

func TestConnAbruptClose(t *testing.T) {
	checkNoLeaks(t)
	s := startWSServer(t, nil)
	for _, partial := range []bool{false, true} {
		c, srv := wsDial(t, s, reference.NewDialer())
		if partial {
			_, _ = srv.Write([]byte{0x81, 10, 'a', 'b'}) // a frame cut short
		}
		require.NoError(t, srv.Close())
		_, _, err := clientRead(t, c)
		var ce *protocols.CloseError
		require.ErrorAs(t, err, &ce, "partial=%v", partial)
		assert.Equal(t, protocols.CloseAbnormal, ce.Code)
		assert.Equal(t, protocols.CloseAbnormal, protocols.CloseStatus(err))
		assert.NoError(t, c.Close(4000, "after a drop"))
	}
}

func TestConnReadHonorsContext(t *testing.T) {
	checkNoLeaks(t)
	s := startWSServer(t, nil)
	c, srv := wsDial(t, s, reference.NewDialer())

	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, _, err := c.Read(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Less(t, time.Since(start), 2*time.Second, "promptly")

	ctx, cancel = context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, _, err = c.Read(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	// The waits ended between frames: the connection goes on.
	srvWrite(t, srv, ws.NewTextFrame([]byte("still here")))
	_, msg, err := clientRead(t, c)
	require.NoError(t, err)
	assert.Equal(t, "still here", string(msg))

	// Interrupted in the middle of a frame: reading is over, writing and closing are not.
	_, err = srv.Write([]byte{0x81, 10, 'a', 'b'})
	require.NoError(t, err)
	ctx, cancel = context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, _, err = c.Read(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	_, _, err = clientRead(t, c)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "the stream is out of step: the error sticks")
	require.NoError(t, c.Write(t.Context(), protocols.MessageText, []byte("bye")))
	assert.Equal(t, "bye", string(srvRead(t, srv).Payload))
}

func TestConnClose(t *testing.T) {
	checkNoLeaks(t)
	s := startWSServer(t, nil)
	c, srv := wsDial(t, s, &reference.Dialer{CloseTimeout: wsTimeout})

	// A Read is blocked when Close comes.
	readErr := make(chan error, 1)
	go func() {
		_, _, err := clientRead(t, c)
		readErr <- err
	}()
	time.Sleep(20 * time.Millisecond)

	closed := make(chan error, 1)
	go func() { closed <- c.Close(4000, "resume later") }()
	f := srvRead(t, srv)
	require.Equal(t, ws.OpClose, f.Header.OpCode)
	assert.Equal(t, protocols.CloseCode(4000), closeCode(f))
	assert.Equal(t, "resume later", string(f.Payload[2:]))
	srvWrite(t, srv, ws.NewCloseFrame(f.Payload)) // the server echoes, then hangs up
	_ = srv.Close()

	select {
	case err := <-closed:
		assert.NoError(t, err)
	case <-time.After(wsTimeout):
		t.Fatal("Close hung")
	}
	assert.ErrorIs(t, <-readErr, protocols.ErrClosed, "Close ends a blocked Read")
	assert.NoError(t, c.Close(1000, ""), "Close is idempotent")
	_, _, err := clientRead(t, c)
	assert.ErrorIs(t, err, protocols.ErrClosed)
	assert.ErrorIs(t, c.Write(t.Context(), protocols.MessageText, []byte("x")), protocols.ErrClosed)
}

// With no Read in progress, Close reads up to the server's close frame
// itself, discarding what comes before it.
func TestConnCloseHandshake(t *testing.T) {
	checkNoLeaks(t)
	s := startWSServer(t, nil)
	c, srv := wsDial(t, s, &reference.Dialer{CloseTimeout: wsTimeout})
	srvWrite(t, srv, ws.NewTextFrame([]byte("in flight")))
	closed := make(chan error, 1)
	start := time.Now()
	go func() { closed <- c.Close(1000, "logging off") }()
	f := srvRead(t, srv)
	assert.Equal(t, protocols.CloseNormal, closeCode(f))
	srvWrite(t, srv, ws.NewTextFrame([]byte("still in flight")))
	srvWrite(t, srv, ws.NewCloseFrame(f.Payload))
	require.NoError(t, <-closed)
	assert.Less(t, time.Since(start), wsTimeout/2, "Close returned on the server's close frame, not on its timeout")
}

func TestConnCloseFrameBody(t *testing.T) {
	checkNoLeaks(t)
	s := startWSServer(t, nil)
	long := strings.Repeat("é", 100) // 200 bytes of two-byte runes
	tests := []struct {
		code   protocols.CloseCode
		reason string
		want   []byte
	}{
		{4000, "x", append([]byte{0x0f, 0xa0}, 'x')},
		{1005, "not sendable", []byte{}},
		{protocols.CloseAbnormal, "", []byte{}},
		{4001, long, append([]byte{0x0f, 0xa1}, strings.Repeat("é", 61)...)}, // 122 of the 123 bytes: no rune cut
	}
	for _, tt := range tests {
		c, srv := wsDial(t, s, &reference.Dialer{CloseTimeout: 100 * time.Millisecond})
		require.NoError(t, c.Close(tt.code, tt.reason))
		f := srvRead(t, srv)
		assert.Equal(t, ws.OpClose, f.Header.OpCode)
		assert.Equal(t, tt.want, f.Payload, "code %d", tt.code)
	}
}

func TestDialerHeader(t *testing.T) {
	checkNoLeaks(t)
	var mu sync.Mutex
	var agent string
	s := startWSServerWith(t, ws.Upgrader{OnHeader: func(key, value []byte) error {
		if strings.EqualFold(string(key), "User-Agent") {
			mu.Lock()
			agent = string(value)
			mu.Unlock()
		}
		return nil
	}}, nil)
	d := &reference.Dialer{Header: http.Header{"User-Agent": {"DiscordBot (https://example.com, 1.0)"}}}
	wsDial(t, s, d)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, "DiscordBot (https://example.com, 1.0)", agent)
}

func TestConnCloseUnresponsivePeer(t *testing.T) {
	checkNoLeaks(t)
	s := startWSServer(t, nil)
	c, srv := wsDial(t, s, &reference.Dialer{CloseTimeout: 200 * time.Millisecond})
	// The server keeps sending and never answers the close.
	srvWrite(t, srv, ws.NewTextFrame([]byte("unread")))
	start := time.Now()
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { assert.NoError(t, c.Close(4900, "zombie")) })
	}
	wg.Wait()
	assert.Less(t, time.Since(start), 2*time.Second, "Close is bounded by CloseTimeout")
	f := srvRead(t, srv)
	assert.Equal(t, protocols.CloseCode(4900), closeCode(f), "one close frame")
	_ = srv.SetReadDeadline(time.Now().Add(wsTimeout))
	_, err := srv.Read(make([]byte, 1))
	assert.Error(t, err, "then the connection is closed")
}

func TestConnProtocolErrors(t *testing.T) {
	checkNoLeaks(t)
	tests := []struct {
		name string
		send func(srv net.Conn)
		code protocols.CloseCode
	}{
		{"MaskedServerFrame", func(srv net.Conn) {
			_ = ws.WriteFrame(srv, ws.MaskFrame(ws.NewTextFrame([]byte("masked"))))
		}, 1002},
		{"UnexpectedContinuation", func(srv net.Conn) {
			_ = ws.WriteFrame(srv, ws.NewFrame(ws.OpContinuation, true, []byte("x")))
		}, 1002},
		{"ReservedBits", func(srv net.Conn) {
			f := ws.NewTextFrame([]byte("x"))
			f.Header.Rsv = ws.Rsv(true, false, false)
			_ = ws.WriteFrame(srv, f)
		}, 1002},
		{"TooBig", func(srv net.Conn) {
			_ = ws.WriteFrame(srv, ws.NewFrame(ws.OpText, false, make([]byte, 800)))
			_ = ws.WriteFrame(srv, ws.NewFrame(ws.OpContinuation, true, make([]byte, 800)))
		}, 1009},
		{"TooBigDeclared", func(srv net.Conn) {
			_, _ = srv.Write([]byte{0x82, 127, 0, 0, 1, 0, 0, 0, 0, 0}) // 1 TiB, never sent
		}, 1009},
	}
	s := startWSServer(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, srv := wsDial(t, s, &reference.Dialer{ReadLimit: 1024})
			tt.send(srv)
			_, _, err := clientRead(t, c)
			require.Error(t, err)
			f := srvRead(t, srv)
			assert.Equal(t, ws.OpClose, f.Header.OpCode)
			assert.Equal(t, tt.code, closeCode(f))
		})
	}
}

func TestConnWriteHonorsContext(t *testing.T) {
	checkNoLeaks(t)
	s := startWSServer(t, nil)
	c, srv := wsDial(t, s, reference.NewDialer())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	assert.ErrorIs(t, c.Write(ctx, protocols.MessageText, []byte("x")), context.Canceled)

	// The server stops reading: a big write blocks until its deadline.
	big := make([]byte, 64<<20)
	ctx, cancel = context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.Write(ctx, protocols.MessageBinary, big)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 5*time.Second)
	_ = srv
}

func TestConnConcurrentSafe(t *testing.T) {
	checkNoLeaks(t)
	s := startWSServer(t, nil)
	c, srv := wsDial(t, s, reference.NewDialer())
	const writers, each = 4, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				p := []byte(strings.Repeat(string(rune('a'+w)), 10+i))
				assert.NoError(t, c.Write(t.Context(), protocols.MessageText, p))
			}
		})
	}
	counts := map[byte]int{}
	for range writers * each {
		f := srvRead(t, srv)
		require.NotEmpty(t, f.Payload)
		require.Equal(t, strings.Repeat(string(f.Payload[0]), len(f.Payload)), string(f.Payload), "frames are not interleaved")
		counts[f.Payload[0]]++
	}
	wg.Wait()
	assert.Len(t, counts, writers)

	// Read, Write and Close at once.
	wg.Go(func() {
		for {
			if _, _, err := clientRead(t, c); err != nil {
				return
			}
		}
	})
	wg.Go(func() {
		for {
			if c.Write(t.Context(), protocols.MessageText, []byte("x")) != nil {
				return
			}
		}
	})
	wg.Go(func() {
		for {
			if _, err := ws.ReadHeader(srv); err != nil {
				return
			}
		}
	})
	time.Sleep(20 * time.Millisecond)
	assert.NoError(t, c.Close(4000, ""))
	_ = srv.Close()
	wg.Wait()
}

func TestDialerErrors(t *testing.T) {
	checkNoLeaks(t)
	// A server that accepts TCP but never answers the handshake.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var accepted []net.Conn
	var mu sync.Mutex
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			accepted = append(accepted, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
		for _, c := range accepted {
			_ = c.Close()
		}
	})
	url := "ws://" + ln.Addr().String() + "/"

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err = reference.NewDialer().Dial(ctx, url)
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	ctx, cancel2 := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel2)
	_, err = reference.NewDialer().Dial(ctx, url)
	assert.ErrorIs(t, err, context.Canceled)

	_, err = (&reference.Dialer{HandshakeTimeout: 50 * time.Millisecond}).Dial(t.Context(), url)
	assert.Error(t, err, "HandshakeTimeout")

	// A plain HTTP server refuses the upgrade.
	hln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusBadRequest)
	}), ReadHeaderTimeout: wsTimeout}
	var hwg sync.WaitGroup
	hwg.Go(func() { _ = hs.Serve(hln) })
	ctx, cancel3 := context.WithTimeout(t.Context(), wsTimeout)
	defer cancel3()
	_, err = reference.NewDialer().Dial(ctx, "ws://"+hln.Addr().String()+"/")
	assert.Error(t, err)
	assert.False(t, errors.Is(err, context.DeadlineExceeded))
	require.NoError(t, hs.Close())
	hwg.Wait()

	_, err = reference.NewDialer().Dial(t.Context(), "http://example.com/")
	assert.Error(t, err, "not a websocket URL")
}
