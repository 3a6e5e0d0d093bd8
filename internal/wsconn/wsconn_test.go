package wsconn_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cordkit/cordkit/internal/wsconn"
	"github.com/cordkit/cordkit/protocols"
)

// configs are the option sets every test runs with: the reference's
// (buffers kept) and the fast one's (every buffer pooled), with a small
// read buffer so that payloads both fit it and bypass it.
var configs = []struct {
	name string
	opts wsconn.Options
}{
	{"Kept", wsconn.Options{Name: "test", ReadBufferSize: 1024}},
	{"Pooled", wsconn.Options{Name: "test", ReadBufferSize: 1024, PoolMessageBuffer: true, PoolWriteBuffer: true, PoolReadBuffer: true}},
}

// serve starts a loopback websocket server whose first connection's server
// end is returned after the client dialed with o; onAccept, when not nil,
// runs right after the upgrade.
func serve(t *testing.T, o wsconn.Options, onAccept func(net.Conn)) (protocols.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		if _, err := (ws.Upgrader{}).Upgrade(nc); err != nil {
			_ = nc.Close()
			close(accepted)
			return
		}
		if onAccept != nil {
			onAccept(nc)
		}
		accepted <- nc
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := wsconn.Dial(ctx, "ws://"+ln.Addr().String()+"/", &o)
	require.NoError(t, err)
	srv, ok := <-accepted
	require.True(t, ok, "server side failed")
	t.Cleanup(func() {
		_ = c.Close(protocols.CloseNormal, "")
		_ = srv.Close()
	})
	return c, srv
}

// readFrame reads one frame from the client, unmasked.
func readFrame(srv net.Conn) (ws.Frame, error) {
	_ = srv.SetReadDeadline(time.Now().Add(10 * time.Second))
	h, err := ws.ReadHeader(srv)
	if err != nil {
		return ws.Frame{}, err
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(srv, p); err != nil {
		return ws.Frame{}, err
	}
	ws.Cipher(p, h.Mask, 0)
	h.Masked = false
	return ws.Frame{Header: h, Payload: p}, nil
}

func TestMessages(t *testing.T) {
	sizes := []int{0, 1, 125, 126, 1000, 1024, 5000, 65536, 70000, 3 << 20}
	for _, cfg := range configs {
		t.Run(cfg.name, func(t *testing.T) {
			c, srv := serve(t, cfg.opts, func(srv net.Conn) {
				_ = wsutil.WriteServerText(srv, []byte("right after the handshake"))
			})
			ctx := t.Context()
			typ, msg, err := c.Read(ctx)
			require.NoError(t, err)
			assert.Equal(t, protocols.MessageText, typ)
			assert.Equal(t, "right after the handshake", string(msg))

			go func() {
				for i, n := range sizes {
					p := bytes.Repeat([]byte{byte('a' + i)}, n)
					if i%2 == 0 {
						_ = wsutil.WriteServerBinary(srv, p)
						continue
					}
					// Fragmented, with a ping in the middle.
					_ = ws.WriteFrame(srv, ws.NewFrame(ws.OpText, false, p[:n/2]))
					_ = ws.WriteFrame(srv, ws.NewPingFrame([]byte("hi")))
					_ = ws.WriteFrame(srv, ws.NewFrame(ws.OpContinuation, true, p[n/2:]))
				}
			}()
			for i, n := range sizes {
				typ, msg, err := c.Read(ctx)
				require.NoError(t, err, "message %d", i)
				want := protocols.MessageText
				if i%2 == 0 {
					want = protocols.MessageBinary
				}
				assert.Equal(t, want, typ, "message %d", i)
				assert.True(t, bytes.Equal(bytes.Repeat([]byte{byte('a' + i)}, n), msg), "message %d: got %d bytes, want %d", i, len(msg), n)
			}

			// The pongs, then an echo of a Write.
			for range len(sizes) / 2 {
				f, err := readFrame(srv)
				require.NoError(t, err)
				assert.Equal(t, ws.OpPong, f.Header.OpCode)
			}
			for _, n := range []int{3, 2000, 100000} {
				p := bytes.Repeat([]byte{'w'}, n)
				require.NoError(t, c.Write(ctx, protocols.MessageText, p))
				got, op, err := wsutil.ReadClientData(srv)
				require.NoError(t, err)
				assert.Equal(t, ws.OpText, op)
				assert.Equal(t, p, got)
			}
		})
	}
}

func TestReadInterruptedBetweenFrames(t *testing.T) {
	for _, cfg := range configs {
		t.Run(cfg.name, func(t *testing.T) {
			c, srv := serve(t, cfg.opts, nil)
			// A long-lived ctx armed by a first Read, then a short one.
			long := t.Context()
			require.NoError(t, wsutil.WriteServerText(srv, []byte("one")))
			_, msg, err := c.Read(long)
			require.NoError(t, err)
			assert.Equal(t, "one", string(msg))

			short, cancel := context.WithTimeout(long, 50*time.Millisecond)
			_, _, err = c.Read(short)
			cancel()
			require.ErrorIs(t, err, context.DeadlineExceeded)

			require.NoError(t, wsutil.WriteServerText(srv, []byte("two")))
			_, msg, err = c.Read(long)
			require.NoError(t, err, "Read after an interrupted one")
			assert.Equal(t, "two", string(msg))

			// A ctx that ends between Reads fails the next one only.
			ended, cancel := context.WithCancel(long)
			require.NoError(t, wsutil.WriteServerText(srv, []byte("three")))
			_, _, err = c.Read(ended)
			require.NoError(t, err)
			cancel()
			_, _, err = c.Read(ended)
			require.ErrorIs(t, err, context.Canceled)
			require.NoError(t, wsutil.WriteServerText(srv, []byte("four")))
			_, msg, err = c.Read(long)
			require.NoError(t, err)
			assert.Equal(t, "four", string(msg))
		})
	}
}

func TestCloseUnblocksAndSticks(t *testing.T) {
	for _, cfg := range configs {
		t.Run(cfg.name, func(t *testing.T) {
			cfg.opts.CloseTimeout = 200 * time.Millisecond
			c, srv := serve(t, cfg.opts, nil)
			done := make(chan error, 1)
			go func() {
				_, _, err := c.Read(t.Context())
				done <- err
			}()
			go func() { // answer the close frame
				for {
					f, err := readFrame(srv)
					if err != nil {
						return
					}
					if f.Header.OpCode == ws.OpClose {
						_ = ws.WriteFrame(srv, ws.NewCloseFrame(f.Payload))
						return
					}
				}
			}()
			require.NoError(t, c.Close(4000, "bye"))
			err := <-done
			assert.True(t, errors.Is(err, protocols.ErrClosed), "Read during Close: %v", err)
			_, _, err = c.Read(t.Context())
			assert.ErrorIs(t, err, protocols.ErrClosed)
			assert.ErrorIs(t, c.Write(t.Context(), protocols.MessageText, []byte("x")), protocols.ErrClosed)
			assert.NoError(t, c.Close(4000, "again"))
		})
	}
}

func TestDropUnsendableClose(t *testing.T) {
	c, srv := serve(t, wsconn.Options{Name: "test", DropUnsendableClose: true}, nil)
	require.NoError(t, c.Close(protocols.CloseAbnormal, ""))
	_ = srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := readFrame(srv)
	assert.Error(t, err, "want the connection dropped without a close frame")
}

func TestProtocolErrorIsAbnormal(t *testing.T) {
	c, srv := serve(t, wsconn.Options{Name: "test", ReadLimit: 100}, nil)
	require.NoError(t, wsutil.WriteServerText(srv, make([]byte, 101)))
	_, _, err := c.Read(t.Context())
	var ce *protocols.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, protocols.CloseAbnormal, ce.Code)
	f, err := readFrame(srv)
	require.NoError(t, err)
	assert.Equal(t, ws.OpClose, f.Header.OpCode)
	code, _ := ws.ParseCloseFrameData(f.Payload)
	assert.Equal(t, ws.StatusMessageTooBig, code)
}
