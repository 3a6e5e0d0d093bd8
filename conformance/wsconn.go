package conformance

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/cordkit/cordkit/protocols"
)

// The gateway suites hand the implementation a [protocols.Dialer] of their
// own: RFC 6455 websockets on github.com/gobwas/ws, dialed in memory to
// the mock ([mockdiscord.Server.NetDial]) so that they work inside a
// testing/synctest bubble. It keeps to the [protocols.Conn] contract and
// records what the shard dials and writes, for the cases to inspect.

// wsReadLimit is the largest message the suite's Conn accepts.
const wsReadLimit = 16 << 20

// wsCloseTimeout bounds Conn.Close: sending the close frame, then waiting
// for the peer's.
const wsCloseTimeout = time.Second

// longAgo is a deadline in the past: setting it fails blocked I/O.
var longAgo = time.Unix(1, 0)

// wsDialer dials websockets through netDial.
type wsDialer struct {
	netDial func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (d wsDialer) Dial(ctx context.Context, url string) (protocols.Conn, error) {
	nc, br, _, err := ws.Dialer{NetDial: d.netDial}.Dial(ctx, url)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w: %w", ctxErr, err)
		}
		return nil, fmt.Errorf("conformance: dial %s: %w", url, err)
	}
	if br == nil {
		br = bufio.NewReader(nc)
	}
	return &wsConn{nc: nc, br: br, readMu: make(chanMutex, 1), writeMu: make(chanMutex, 1)}, nil
}

// chanMutex is a mutex whose lock gives up when a context ends.
type chanMutex chan struct{}

func (m chanMutex) lock(ctx context.Context) error {
	select {
	case m <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m chanMutex) unlock() { <-m }

// wsConn is the client end of one websocket connection.
type wsConn struct {
	nc net.Conn
	br *bufio.Reader

	readMu   chanMutex // held by Read, and by Close while it drains
	msg      []byte    // the message being read; returned by Read
	msgOp    ws.OpCode // opcode of a fragmented message in progress, or 0
	midFrame bool      // part of a frame was consumed
	readErr  error     // sticky

	writeMu  chanMutex
	writeErr error // sticky

	closing    atomic.Bool // Close was called
	peerClosed atomic.Bool // the peer's close frame was read
	closed     atomic.Bool // the network connection is closed
	closeOnce  sync.Once
}

// interruptOn makes blocked I/O on c.nc fail when ctx ends, by moving the
// deadline into the past. stop undoes it and reports whether ctx ended
// during the I/O.
func (c *wsConn) interruptOn(ctx context.Context, setDeadline func(time.Time) error) (stop func() bool) {
	fired := make(chan struct{})
	cancel := context.AfterFunc(ctx, func() {
		_ = setDeadline(longAgo)
		close(fired)
	})
	return func() bool {
		if cancel() {
			return false
		}
		<-fired
		if !c.closing.Load() {
			_ = setDeadline(time.Time{})
		}
		return true
	}
}

func (c *wsConn) Read(ctx context.Context) (protocols.MessageType, []byte, error) {
	if c.closing.Load() {
		return 0, nil, fmt.Errorf("conformance: websocket read: %w", protocols.ErrClosed)
	}
	if err := c.readMu.lock(ctx); err != nil {
		return 0, nil, fmt.Errorf("conformance: websocket read: %w", err)
	}
	defer c.readMu.unlock()
	if c.readErr != nil {
		return 0, nil, c.readErr
	}
	stop := c.interruptOn(ctx, c.nc.SetReadDeadline)
	typ, msg, err := c.readMessage(ctx)
	interrupted := stop()
	if err == nil {
		return typ, msg, nil
	}
	var ne net.Error
	switch {
	case c.closing.Load():
		err = fmt.Errorf("conformance: websocket read: %w", protocols.ErrClosed)
	case interrupted && errors.As(err, &ne) && ne.Timeout():
		err = fmt.Errorf("conformance: websocket read: %w", ctx.Err())
		if !c.midFrame {
			return 0, nil, err // nothing of a frame was consumed: usable later
		}
	default:
		err = c.readFailed(err)
	}
	c.readErr = err
	return 0, nil, err
}

// errProtocol is a websocket protocol violation by the server.
type errProtocol string

func (e errProtocol) Error() string { return "websocket protocol error: " + string(e) }

// readMessage reads frames until a whole data message has arrived.
func (c *wsConn) readMessage(ctx context.Context) (protocols.MessageType, []byte, error) {
	if c.msgOp == 0 {
		c.msg = c.msg[:0]
	}
	for {
		if _, err := c.br.Peek(1); err != nil {
			return 0, nil, err
		}
		c.midFrame = true
		h, err := ws.ReadHeader(c.br)
		if err != nil {
			return 0, nil, err
		}
		switch {
		case h.Masked:
			return 0, nil, errProtocol("masked server frame")
		case h.Rsv != 0:
			return 0, nil, errProtocol("reserved bits set")
		case h.OpCode.IsReserved():
			return 0, nil, errProtocol(fmt.Sprintf("reserved opcode %#x", byte(h.OpCode)))
		case h.OpCode.IsControl() && (h.Length > ws.MaxControlFramePayloadSize || !h.Fin):
			return 0, nil, errProtocol("invalid control frame")
		case h.OpCode == ws.OpContinuation && c.msgOp == 0:
			return 0, nil, errProtocol("continuation frame without a message")
		case (h.OpCode == ws.OpText || h.OpCode == ws.OpBinary) && c.msgOp != 0:
			return 0, nil, errProtocol("new message inside a fragmented one")
		}
		if h.OpCode.IsControl() {
			p := make([]byte, h.Length)
			if _, err := io.ReadFull(c.br, p); err != nil {
				return 0, nil, err
			}
			c.midFrame = false
			switch h.OpCode {
			case ws.OpPing:
				c.writeControl(ctx, ws.OpPong, p)
			case ws.OpClose:
				return 0, nil, c.peerClose(p)
			}
			continue
		}
		if c.msgOp == 0 {
			c.msgOp = h.OpCode
		}
		if h.Length > int64(wsReadLimit-len(c.msg)) {
			return 0, nil, errProtocol("message too big")
		}
		start := len(c.msg)
		c.msg = append(c.msg, make([]byte, h.Length)...)
		if _, err := io.ReadFull(c.br, c.msg[start:]); err != nil {
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

// readFailed turns a read error into what Read returns.
func (c *wsConn) readFailed(err error) error {
	var (
		ce *protocols.CloseError
		pe errProtocol
	)
	switch {
	case errors.As(err, &ce):
		return err // the server's close frame
	case errors.As(err, &pe):
		c.writeControl(context.Background(), ws.OpClose, closeFrameBody(protocols.CloseProtocolError, string(pe)))
		c.shutdown()
		return fmt.Errorf("conformance: websocket read: %w: %w", &protocols.CloseError{Code: protocols.CloseAbnormal}, err)
	}
	c.shutdown()
	return fmt.Errorf("conformance: websocket read: %w: %w", &protocols.CloseError{Code: protocols.CloseAbnormal}, err)
}

// peerClose handles the server's close frame: it answers it without a
// status code and closes the connection.
func (c *wsConn) peerClose(p []byte) error {
	ce := &protocols.CloseError{Code: protocols.CloseNoStatus}
	switch {
	case len(p) == 1:
		return errProtocol("close frame payload of 1 byte")
	case len(p) >= 2:
		ce.Code = protocols.CloseCode(binary.BigEndian.Uint16(p))
		ce.Reason = string(p[2:])
	}
	c.peerClosed.Store(true)
	if !c.closing.Load() {
		c.writeControl(context.Background(), ws.OpClose, nil)
	}
	c.shutdown()
	return ce
}

// writeControl writes a control frame, best effort.
func (c *wsConn) writeControl(ctx context.Context, op ws.OpCode, p []byte) {
	ctx, cancel := context.WithTimeout(ctx, wsCloseTimeout)
	defer cancel()
	if c.writeMu.lock(ctx) != nil {
		return
	}
	defer c.writeMu.unlock()
	if c.writeErr != nil || c.closed.Load() {
		return
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(wsCloseTimeout))
	if n, err := c.nc.Write(frame(op, p)); err != nil && n > 0 {
		c.writeErr = fmt.Errorf("conformance: websocket write: %w", err)
	}
	if !c.closing.Load() {
		_ = c.nc.SetWriteDeadline(time.Time{})
	}
}

func (c *wsConn) Write(ctx context.Context, typ protocols.MessageType, p []byte) error {
	op := ws.OpText
	switch typ {
	case protocols.MessageText:
	case protocols.MessageBinary:
		op = ws.OpBinary
	default:
		return fmt.Errorf("conformance: websocket write: unknown message type %d", int(typ))
	}
	if c.closing.Load() || c.closed.Load() {
		return fmt.Errorf("conformance: websocket write: %w", protocols.ErrClosed)
	}
	if err := c.writeMu.lock(ctx); err != nil {
		return fmt.Errorf("conformance: websocket write: %w", err)
	}
	defer c.writeMu.unlock()
	if c.writeErr != nil {
		return c.writeErr
	}
	stop := c.interruptOn(ctx, c.nc.SetWriteDeadline)
	n, err := c.nc.Write(frame(op, p))
	interrupted := stop()
	if err == nil {
		return nil
	}
	switch {
	case c.closing.Load() || c.closed.Load():
		err = fmt.Errorf("conformance: websocket write: %w", protocols.ErrClosed)
	case interrupted:
		err = fmt.Errorf("conformance: websocket write: %w", ctx.Err())
		if n == 0 {
			return err
		}
	default:
		err = fmt.Errorf("conformance: websocket write: %w", err)
	}
	c.writeErr = err
	return err
}

// frame encodes one final, masked frame.
func frame(op ws.OpCode, p []byte) []byte {
	mask := ws.NewMask()
	b := make([]byte, 0, len(p)+14)
	b = append(b, 0x80|byte(op))
	switch n := len(p); {
	case n <= 125:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, mask[:]...)
	start := len(b)
	b = append(b, p...)
	ws.Cipher(b[start:], mask, 0)
	return b
}

// sendableClose reports whether code may appear in a close frame (RFC 6455
// §7.4.1).
func sendableClose(code protocols.CloseCode) bool {
	return code >= 1000 && code <= 4999 && code != 1004 && code != 1005 && code != 1006 && code != 1015
}

// closeFrameBody encodes a close frame's payload.
func closeFrameBody(code protocols.CloseCode, reason string) []byte {
	if !sendableClose(code) {
		return nil
	}
	if len(reason) > ws.MaxControlFramePayloadSize-2 {
		reason = reason[:ws.MaxControlFramePayloadSize-2]
	}
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

// Close sends a close frame with code and reason, waits for the server's
// close frame and closes the connection. A code that cannot be sent
// (1005, 1006, ...) drops the connection without a close frame.
func (c *wsConn) Close(code protocols.CloseCode, reason string) error {
	c.closeOnce.Do(func() { c.close(code, reason) })
	return nil
}

func (c *wsConn) close(code protocols.CloseCode, reason string) {
	c.closing.Store(true)
	if c.closed.Load() {
		return
	}
	if !sendableClose(code) {
		c.shutdown()
		return
	}
	deadline := time.Now().Add(wsCloseTimeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	_ = c.nc.SetWriteDeadline(deadline) // also unblocks a stuck Write
	sent := false
	if c.writeMu.lock(ctx) == nil {
		if c.writeErr == nil && !c.peerClosed.Load() {
			_ = c.nc.SetWriteDeadline(deadline)
			_, err := c.nc.Write(frame(ws.OpClose, closeFrameBody(code, reason)))
			sent = err == nil
		}
		c.writeErr = fmt.Errorf("conformance: websocket write: %w", protocols.ErrClosed)
		c.writeMu.unlock()
	}
	if sent {
		// Wait for the server's close frame: a Read in progress may be
		// the one to get it.
		_ = c.nc.SetReadDeadline(deadline)
		if c.readMu.lock(ctx) == nil {
			if c.readErr == nil && !c.peerClosed.Load() {
				_ = c.nc.SetReadDeadline(deadline)
				c.drain()
			}
			c.readErr = fmt.Errorf("conformance: websocket read: %w", protocols.ErrClosed)
			c.readMu.unlock()
		}
	}
	c.shutdown()
}

// drain discards frames until the server's close frame or an error.
func (c *wsConn) drain() {
	for {
		h, err := ws.ReadHeader(c.br)
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

// shutdown closes the network connection once.
func (c *wsConn) shutdown() {
	if !c.closed.Swap(true) {
		_ = c.nc.Close()
	}
}

// wire records what the shards of a case dial and write, through
// recDialer, and scripts dial failures.
type wire struct {
	mu    sync.Mutex
	dials []dialRecord
	sent  []sentPayload
	// failDials fails the next dials with an error; hangDials makes the
	// next dials hang until their context ends; hangHellos makes the next
	// connections deliver nothing (no HELLO) until they are closed.
	failDials, hangDials, hangHellos int
	// dispatchDelay delays the first dispatch read by a shard, once.
	dispatchDelay time.Duration
}

// dialRecord is one Dial call.
type dialRecord struct {
	at     time.Time
	url    string
	failed bool
	// ended is when a hanging dial gave up, or when the connection was
	// closed.
	ended time.Time
}

// sentPayload is one payload a shard wrote.
type sentPayload struct {
	at   time.Time
	conn int // the dial's index, from 1
	op   protocols.Opcode
	d    json.RawMessage
	raw  []byte
}

// recDialer is the Dialer the suites hand the implementation.
type recDialer struct {
	next protocols.Dialer
	w    *wire
}

// errDialRefused is what a scripted dial failure returns.
var errDialRefused = errors.New("conformance: scripted dial failure: connection refused")

func (d *recDialer) Dial(ctx context.Context, url string) (protocols.Conn, error) {
	w := d.w
	w.mu.Lock()
	w.dials = append(w.dials, dialRecord{at: time.Now(), url: url})
	idx := len(w.dials)
	hang, fail := w.hangDials > 0, w.failDials > 0 && w.hangDials == 0
	switch {
	case hang:
		w.hangDials--
	case fail:
		w.failDials--
	}
	if hang || fail {
		w.dials[idx-1].failed = true
	}
	w.mu.Unlock()
	if hang {
		<-ctx.Done()
		w.mu.Lock()
		w.dials[idx-1].ended = time.Now()
		w.mu.Unlock()
		return nil, fmt.Errorf("conformance: scripted hanging dial: %w", ctx.Err())
	}
	if fail {
		return nil, errDialRefused
	}
	c, err := d.next.Dial(ctx, url)
	if err != nil {
		w.mu.Lock()
		w.dials[idx-1].failed = true
		w.mu.Unlock()
		return nil, err
	}
	w.mu.Lock()
	mute := w.hangHellos > 0
	if mute {
		w.hangHellos--
	}
	w.mu.Unlock()
	return &recConn{Conn: c, w: w, id: idx, mute: mute, closed: make(chan struct{})}, nil
}

// dialed returns the dials so far.
func (w *wire) dialed() []dialRecord {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]dialRecord(nil), w.dials...)
}

// payloads returns the payloads written with op.
func (w *wire) payloads(op protocols.Opcode) []sentPayload {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []sentPayload
	for _, p := range w.sent {
		if p.op == op {
			out = append(out, p)
		}
	}
	return out
}

// recConn records the payloads written on one connection.
type recConn struct {
	protocols.Conn
	w    *wire
	id   int
	mute bool // deliver nothing until closed

	closeOnce sync.Once
	closed    chan struct{}
}

func (c *recConn) Close(code protocols.CloseCode, reason string) error {
	c.closeOnce.Do(func() {
		c.w.mu.Lock()
		c.w.dials[c.id-1].ended = time.Now()
		c.w.mu.Unlock()
		close(c.closed)
	})
	return c.Conn.Close(code, reason)
}

func (c *recConn) Write(ctx context.Context, typ protocols.MessageType, p []byte) error {
	sp := sentPayload{at: time.Now(), conn: c.id, op: -1, raw: append([]byte(nil), p...)}
	var env struct {
		Op *int            `json:"op"`
		D  json.RawMessage `json:"d"`
	}
	if json.Unmarshal(p, &env) == nil && env.Op != nil {
		sp.op, sp.d = protocols.Opcode(*env.Op), env.D
	}
	err := c.Conn.Write(ctx, typ, p)
	if err == nil {
		c.w.mu.Lock()
		c.w.sent = append(c.w.sent, sp)
		c.w.mu.Unlock()
	}
	return err
}

func (c *recConn) Read(ctx context.Context) (protocols.MessageType, []byte, error) {
	if c.mute {
		select {
		case <-ctx.Done():
			return 0, nil, fmt.Errorf("conformance: websocket read: %w", ctx.Err())
		case <-c.closed:
			return 0, nil, fmt.Errorf("conformance: websocket read: %w", protocols.ErrClosed)
		}
	}
	typ, p, err := c.Conn.Read(ctx)
	if err != nil || typ != protocols.MessageText {
		return typ, p, err
	}
	c.w.mu.Lock()
	delay := c.w.dispatchDelay
	c.w.mu.Unlock()
	if delay <= 0 {
		return typ, p, nil
	}
	var env struct {
		Op int `json:"op"`
	}
	if json.Unmarshal(p, &env) != nil || env.Op != int(protocols.OpDispatch) {
		return typ, p, nil
	}
	c.w.mu.Lock()
	delay, c.w.dispatchDelay = c.w.dispatchDelay, 0
	c.w.mu.Unlock()
	timer := time.NewTimer(delay)
	defer timer.Stop()
	select {
	case <-timer.C:
		return typ, p, nil
	case <-ctx.Done():
		return 0, nil, fmt.Errorf("conformance: websocket read: %w", ctx.Err())
	}
}
