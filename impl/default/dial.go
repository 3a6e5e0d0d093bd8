package reference

import (
	"bufio"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/cordkit/cordkit/protocols"
)

var (
	_ protocols.Dialer = (*Dialer)(nil)
	_ protocols.Conn   = (*wsConn)(nil)
)

// Defaults of [Dialer].
const (
	// DefaultReadBufferSize is the size of a connection's read buffer.
	// It is small because an idle connection keeps it: payloads larger
	// than it are read past it, straight into the message buffer, so it
	// costs no throughput (BenchmarkShardThroughput measured no loss
	// against 32 KiB).
	DefaultReadBufferSize = 4 << 10
	// DefaultWriteBufferSize is the size of the handshake's write buffer.
	DefaultWriteBufferSize = 4 << 10
	// DefaultReadLimit is the largest message a connection accepts: 16 MiB,
	// well above the largest (uncompressed) GUILD_CREATE.
	DefaultReadLimit = 16 << 20
	// DefaultCloseTimeout bounds Conn.Close: sending the close frame, then
	// waiting for the peer's.
	DefaultCloseTimeout = time.Second
)

// Dialer is the reference [protocols.Dialer]: RFC 6455 websockets on
// github.com/gobwas/ws. The zero value is ready to use, with the defaults
// each field names; a Dialer is safe for concurrent use and must not be
// changed while it dials.
type Dialer struct {
	// ReadBufferSize is the size of each connection's read buffer, used for
	// the handshake too. Defaults to [DefaultReadBufferSize].
	ReadBufferSize int
	// WriteBufferSize is the size of the handshake's write buffer. Frames
	// are written with one write call each and need no buffer. Defaults to
	// [DefaultWriteBufferSize].
	WriteBufferSize int
	// HandshakeTimeout bounds the TCP connect, the TLS handshake and the
	// websocket upgrade, on top of the context's deadline. Zero means no
	// bound other than the context.
	HandshakeTimeout time.Duration
	// ReadLimit is the largest message, in bytes, that Read accepts; a
	// bigger one fails the connection with close code 1009. Defaults to
	// [DefaultReadLimit].
	ReadLimit int
	// CloseTimeout bounds Conn.Close. Defaults to [DefaultCloseTimeout].
	CloseTimeout time.Duration
	// Header holds extra headers for the upgrade request.
	Header http.Header
	// TLSConfig configures wss:// connections; nil means the defaults.
	TLSConfig *tls.Config
	// NetDial opens the TCP connection; nil means a net.Dialer.
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// NewDialer returns a Dialer with the defaults; it is the same as &Dialer{}.
func NewDialer() *Dialer { return &Dialer{} }

// Dial connects to url (ws:// or wss://) and completes the websocket
// handshake. When ctx ends first, the error wraps ctx.Err(); a handshake
// answered with another status than 101 is an error too. Dial leaves no
// goroutine behind.
//
// # The connection
//
// Read returns whole messages: fragmented messages are reassembled,
// control frames are handled inside (a ping is answered with a pong, a
// pong is ignored), and the slice returned is valid until the next Read.
// Text messages are not checked for valid UTF-8: the JSON decoder that
// reads them next does that.
// When ctx ends during Read, Read returns an error wrapping ctx.Err(); if
// the interruption fell between frames the connection stays usable,
// otherwise later Reads fail, but Write and Close still work, so the shard
// can still close with the code it chooses.
//
// When the server sends a close frame, Read answers it with an empty close
// frame (no status code: repeating a 1000 or 1001 could end the session
// that a 4xxx close meant to keep), closes the TCP connection and returns a
// *[protocols.CloseError] with the server's code (1005 when the frame had
// none) and reason; later Reads return it too. When the connection drops
// without a close frame, Read returns an error that matches a
// *protocols.CloseError with code [protocols.CloseAbnormal] (errors.As)
// and wraps the network error. A protocol violation by the server, or a
// message over ReadLimit, fails the connection with close code 1002 or
// 1009.
//
// Write sends one unfragmented, masked frame with a single write call; it
// does not retain p. Writes are serialized: a Write waits for the one in
// progress, or for its ctx. When ctx ends during the write itself, Write
// returns an error wrapping ctx.Err() and, if part of the frame went out,
// the connection's write side is broken for good.
//
// Close sends a close frame with the code and reason (truncated to 123
// bytes), waits for the server's close frame while discarding what comes
// before it, and closes the TCP connection, all within CloseTimeout.
// Waiting matters: closing a socket that still has unread data makes the
// kernel send a reset, which can destroy the close frame before Discord
// reads it, and then Discord never learns whether the session should end.
// Close is idempotent, safe concurrently with Read and Write, and
// unblocks them; afterwards they return errors wrapping
// [protocols.ErrClosed]. The Conn starts no goroutine of its own.
func (d *Dialer) Dial(ctx context.Context, url string) (protocols.Conn, error) {
	readSize := cmp.Or(d.ReadBufferSize, DefaultReadBufferSize)
	wd := ws.Dialer{
		ReadBufferSize:  readSize,
		WriteBufferSize: cmp.Or(d.WriteBufferSize, DefaultWriteBufferSize),
		Timeout:         d.HandshakeTimeout,
		TLSConfig:       d.TLSConfig,
		NetDial:         d.NetDial,
	}
	if d.Header != nil {
		wd.Header = ws.HandshakeHeaderHTTP(d.Header)
	}
	nc, br, _, err := wd.Dial(ctx, url)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w: %w", ctxErr, err)
		}
		return nil, fmt.Errorf("reference: dial %s: %w", url, err)
	}
	if br == nil { // the server sent nothing after the handshake yet
		br = bufio.NewReaderSize(nc, readSize)
	}
	return &wsConn{
		nc:           nc,
		br:           br,
		readLimit:    cmp.Or(d.ReadLimit, DefaultReadLimit),
		closeTimeout: cmp.Or(d.CloseTimeout, DefaultCloseTimeout),
	}, nil
}

// errMessageTooBig is wrapped when a message exceeds the read limit.
var errMessageTooBig = errors.New("message exceeds the read limit")

// pastDeadline is a deadline in the past: setting it fails blocked I/O.
var pastDeadline = time.Unix(1, 0)

// wsConn is the client end of one websocket connection.
type wsConn struct {
	nc           net.Conn
	br           *bufio.Reader // reads nc
	readLimit    int
	closeTimeout time.Duration

	// Read holds readMu for its whole call, and Close while it waits for
	// the peer's close frame; it guards the read fields.
	readMu   fifoMutex
	hdr      [ws.MaxHeaderSize]byte
	ctl      [ws.MaxControlFramePayloadSize]byte
	msg      []byte    // the message being read; returned by Read
	msgOp    ws.OpCode // opcode of a fragmented message in progress; 0 if none
	midFrame bool      // part of a frame has been consumed
	readErr  error     // sticky

	// writeMu serializes writers; it guards the write fields.
	writeMu  fifoMutex
	wbuf     []byte
	writeErr error // sticky

	closing    atomic.Bool // Close was called
	peerClosed atomic.Bool // the peer's close frame was read
	closed     atomic.Bool // the TCP connection is closed
	closeOnce  sync.Once
	closeErr   error
}

func (c *wsConn) Read(ctx context.Context) (protocols.MessageType, []byte, error) {
	if c.closing.Load() {
		return 0, nil, fmt.Errorf("reference: websocket read: %w", protocols.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return 0, nil, fmt.Errorf("reference: websocket read: %w", err)
	}
	if err := c.readMu.lock(ctx); err != nil {
		return 0, nil, fmt.Errorf("reference: websocket read: %w", err)
	}
	defer c.readMu.unlock()
	if c.readErr != nil {
		return 0, nil, c.readErr
	}

	stop := c.interruptOn(ctx, c.nc.SetReadDeadline)
	typ, msg, err := c.readMessage(ctx)
	interrupted := stop()
	switch {
	case err == nil:
		return typ, msg, nil
	case interrupted && isTimeout(err) && !c.closing.Load():
		err = fmt.Errorf("reference: websocket read: %w", ctx.Err())
		if !c.midFrame {
			return 0, nil, err // nothing of a frame was consumed: go on later
		}
	default:
		err = c.readFailed(err)
	}
	c.readErr = err
	return 0, nil, err
}

// readMessage reads frames until a whole data message has arrived.
func (c *wsConn) readMessage(ctx context.Context) (protocols.MessageType, []byte, error) {
	if c.msgOp == 0 {
		if cap(c.msg) > maxKeptBuf {
			c.msg = nil
		}
		c.msg = c.msg[:0]
	}
	for {
		h, err := c.readHeader()
		if err != nil {
			return 0, nil, err
		}
		state := ws.StateClientSide
		if c.msgOp != 0 {
			state = state.Set(ws.StateFragmented)
		}
		if err := ws.CheckHeader(h, state); err != nil {
			return 0, nil, err
		}

		if h.OpCode.IsControl() {
			payload := c.ctl[:h.Length]
			if _, err := io.ReadFull(c.br, payload); err != nil {
				return 0, nil, err
			}
			c.midFrame = false
			switch h.OpCode {
			case ws.OpPing:
				c.writeControl(ctx, ws.OpPong, payload)
			case ws.OpClose:
				return 0, nil, c.peerClose(payload)
			}
			continue
		}

		if c.msgOp == 0 {
			c.msgOp = h.OpCode
		}
		if h.Length > int64(c.readLimit-len(c.msg)) {
			return 0, nil, fmt.Errorf("%w (%d bytes)", errMessageTooBig, c.readLimit)
		}
		c.msg, err = readPayload(c.br, c.msg, h.Length)
		if err != nil {
			return 0, nil, err
		}
		c.midFrame = false
		if h.Fin {
			typ := protocols.MessageText
			if c.msgOp == ws.OpBinary {
				typ = protocols.MessageBinary
			}
			c.msgOp = 0
			return typ, c.msg, nil
		}
	}
}

// readHeader reads a frame header. Until its first byte has arrived,
// nothing is consumed, so an interrupted wait leaves the stream intact.
func (c *wsConn) readHeader() (ws.Header, error) {
	if _, err := c.br.Peek(1); err != nil {
		return ws.Header{}, err
	}
	c.midFrame = true
	return ws.ReadHeaderBuffer(c.br, c.hdr[:])
}

// readPayload appends n bytes from r to dst, growing dst as the bytes
// arrive rather than trusting the declared length up front.
func readPayload(r io.Reader, dst []byte, n int64) ([]byte, error) {
	const step = 1 << 20
	for n > 0 {
		chunk := int(min(n, step))
		dst = slices.Grow(dst, chunk)
		m := len(dst)
		k, err := io.ReadFull(r, dst[m:m+chunk])
		dst = dst[:m+k]
		if err != nil {
			return dst, err
		}
		n -= int64(chunk)
	}
	return dst, nil
}

// readFailed turns an error of readMessage into what Read returns,
// failing the connection when the server broke the protocol.
func (c *wsConn) readFailed(err error) error {
	var (
		ce   *protocols.CloseError
		perr ws.ProtocolError
	)
	switch {
	case c.closing.Load():
		return fmt.Errorf("reference: websocket read: %w", protocols.ErrClosed)
	case errors.As(err, &ce):
		return err // the server's close frame
	case errors.As(err, &perr), errors.Is(err, ws.ErrHeaderLengthMSB), errors.Is(err, ws.ErrHeaderLengthUnexpected):
		c.fail(protocols.CloseCode(ws.StatusProtocolError), string(perr))
		return fmt.Errorf("reference: websocket: server broke the protocol: %w", err)
	case errors.Is(err, errMessageTooBig):
		c.fail(protocols.CloseCode(ws.StatusMessageTooBig), "message too big")
		return fmt.Errorf("reference: websocket read: %w", err)
	}
	// EOF, reset, or any other network failure: the connection is gone.
	c.shutdown()
	return fmt.Errorf("%w: %w", &protocols.CloseError{Code: protocols.CloseAbnormal}, err)
}

// peerClose handles the server's close frame.
func (c *wsConn) peerClose(payload []byte) error {
	ce := &protocols.CloseError{Code: protocols.CloseCode(ws.StatusNoStatusRcvd)}
	switch {
	case len(payload) == 1:
		return ws.ProtocolError("close frame payload of 1 byte")
	case len(payload) >= 2:
		ce.Code = protocols.CloseCode(binary.BigEndian.Uint16(payload))
		ce.Reason = string(payload[2:])
	}
	c.peerClosed.Store(true)
	if !c.closing.Load() {
		// Answer without a status code; see Dial's doc.
		c.writeControl(context.Background(), ws.OpClose, nil)
	}
	c.shutdown()
	return ce
}

// fail sends a close frame with code, as far as possible, and closes the
// TCP connection.
func (c *wsConn) fail(code protocols.CloseCode, reason string) {
	if !c.closing.Load() {
		c.writeControl(context.Background(), ws.OpClose, closeBody(code, reason))
	}
	c.shutdown()
}

// writeControl writes a control frame, waiting at most closeTimeout (or
// until ctx ends) for the writer in progress. Errors are dropped: the frame
// is a courtesy, and a broken write side shows in the next Write.
func (c *wsConn) writeControl(ctx context.Context, op ws.OpCode, payload []byte) {
	ctx, cancel := context.WithTimeout(ctx, c.closeTimeout)
	defer cancel()
	if c.writeMu.lock(ctx) != nil {
		return
	}
	defer c.writeMu.unlock()
	if c.writeErr != nil {
		return
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.closeTimeout))
	if n, err := c.writeFrame(op, payload); err != nil && n > 0 {
		c.writeErr = fmt.Errorf("reference: websocket write: %w", err)
	}
	if !c.closing.Load() {
		_ = c.nc.SetWriteDeadline(time.Time{})
	}
}

func (c *wsConn) Write(ctx context.Context, typ protocols.MessageType, p []byte) error {
	var op ws.OpCode
	switch typ {
	case protocols.MessageText:
		op = ws.OpText
	case protocols.MessageBinary:
		op = ws.OpBinary
	default:
		return fmt.Errorf("reference: websocket write: unknown message type %d", int(typ))
	}
	if c.closing.Load() || c.closed.Load() {
		return fmt.Errorf("reference: websocket write: %w", protocols.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("reference: websocket write: %w", err)
	}
	if err := c.writeMu.lock(ctx); err != nil {
		return fmt.Errorf("reference: websocket write: %w", err)
	}
	defer c.writeMu.unlock()
	if c.writeErr != nil {
		return c.writeErr
	}

	stop := c.interruptOn(ctx, c.nc.SetWriteDeadline)
	n, err := c.writeFrame(op, p)
	interrupted := stop()
	if cap(c.wbuf) > maxKeptBuf {
		c.wbuf = nil
	}
	if err == nil {
		return nil
	}
	switch {
	case c.closing.Load() || c.closed.Load():
		err = fmt.Errorf("reference: websocket write: %w", protocols.ErrClosed)
	case interrupted:
		err = fmt.Errorf("reference: websocket write: %w", ctx.Err())
		if n == 0 {
			return err // nothing went out: the connection is intact
		}
	default:
		err = fmt.Errorf("reference: websocket write: %w", err)
	}
	c.writeErr = err
	return err
}

// writeFrame writes one final, masked frame with a single write call and
// returns how many bytes went out.
func (c *wsConn) writeFrame(op ws.OpCode, payload []byte) (int, error) {
	mask := ws.NewMask()
	b := c.wbuf[:0]
	b = append(b, 0x80|byte(op)) // FIN
	switch n := len(payload); {
	case n <= 125:
		b = append(b, 0x80|byte(n)) // MASK bit and length
	case n <= 0xffff:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, mask[:]...)
	start := len(b)
	b = append(b, payload...)
	ws.Cipher(b[start:], mask, 0)
	c.wbuf = b
	return c.nc.Write(b)
}

// closeBody encodes a close frame's payload. Codes that must not be sent
// (RFC 6455 §7.4.1: 1005, 1006, 1015, or out of range) give an empty one.
func closeBody(code protocols.CloseCode, reason string) []byte {
	switch {
	case code < 1000 || code > 4999, code == 1005, code == 1006, code == 1015:
		return nil
	}
	if len(reason) > ws.MaxControlFramePayloadSize-2 {
		reason = reason[:ws.MaxControlFramePayloadSize-2]
		for len(reason) > 0 && !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1] // do not cut a rune in two
		}
	}
	b := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), uint16(code))
	return append(b, reason...)
}

func (c *wsConn) Close(code protocols.CloseCode, reason string) error {
	c.closeOnce.Do(func() { c.closeErr = c.close(code, reason) })
	return c.closeErr
}

func (c *wsConn) close(code protocols.CloseCode, reason string) error {
	c.closing.Store(true)
	if c.closed.Load() {
		return nil // the connection already ended: peer close or failure
	}
	deadline := time.Now().Add(c.closeTimeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()

	// Send the close frame. The deadline also unblocks a stuck Write.
	_ = c.nc.SetWriteDeadline(deadline)
	sent := false
	if c.writeMu.lock(ctx) == nil {
		if c.writeErr == nil && !c.peerClosed.Load() {
			_ = c.nc.SetWriteDeadline(deadline)
			_, err := c.writeFrame(ws.OpClose, closeBody(code, reason))
			sent = err == nil
		}
		c.writeErr = fmt.Errorf("reference: websocket write: %w", protocols.ErrClosed)
		c.writeMu.unlock()
	}

	// Wait for the server's close frame (see Dial's doc). A Read in
	// progress may be the one to get it; the deadline ends the wait.
	if sent {
		_ = c.nc.SetReadDeadline(deadline)
		if c.readMu.lock(ctx) == nil {
			if c.readErr == nil && !c.peerClosed.Load() {
				_ = c.nc.SetReadDeadline(deadline)
				c.drain()
			}
			c.readErr = fmt.Errorf("reference: websocket read: %w", protocols.ErrClosed)
			c.readMu.unlock()
		}
	}
	return c.shutdown()
}

// drain discards frames until the server's close frame or an error.
func (c *wsConn) drain() {
	for {
		h, err := c.readHeader()
		if err != nil {
			return
		}
		if _, err := io.CopyN(io.Discard, c.br, h.Length); err != nil {
			return
		}
		if h.OpCode == ws.OpClose {
			c.peerClosed.Store(true)
			return
		}
	}
}

// shutdown closes the TCP connection once.
func (c *wsConn) shutdown() error {
	if c.closed.Swap(true) {
		return nil
	}
	return c.nc.Close()
}

// interruptOn makes I/O blocked on c.nc fail when ctx ends, by moving the
// deadline that setDeadline sets into the past. The returned stop undoes it
// and reports whether ctx ended during the I/O. No goroutine outlives stop.
func (c *wsConn) interruptOn(ctx context.Context, setDeadline func(time.Time) error) (stop func() bool) {
	if ctx.Done() == nil {
		return func() bool { return false }
	}
	fired := make(chan struct{})
	cancel := context.AfterFunc(ctx, func() {
		_ = setDeadline(pastDeadline)
		close(fired)
	})
	return func() bool {
		if cancel() {
			return false
		}
		<-fired
		if !c.closing.Load() { // Close's own deadline must stand
			_ = setDeadline(time.Time{})
		}
		return true
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
