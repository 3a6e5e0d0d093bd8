// Package wsconn is the websocket client shared by reference.Dialer,
// fast.Dialer and the conformance suites' own Dialer: RFC 6455 on
// github.com/gobwas/ws's low-level API, keeping to the [protocols.Conn]
// contract. Each user configures it with [Options] and documents the
// behaviour to its own users; this package is where that behaviour lives.
//
// # Memory
//
// A bot may hold thousands of idle shard connections, so [Options] has
// knobs that make an idle Conn hold no buffer at all: the message buffer
// returned by Read goes back to a shared pool at the start of the next Read
// (the contract says it is valid until then), the frame buffer of a Write
// goes back after the write, and the read buffer goes back whenever it is
// empty before Read blocks (the Conn then waits with a 16-byte array of its
// own). The pools are sync.Pools of power-of-two size classes, from 512
// bytes to 1 MiB, shared by every Conn of the process.
//
// # Contexts
//
// Read and Write interrupt blocked I/O when their ctx ends by moving the
// connection's deadline into the past, from a [context.AfterFunc]. The
// registration stays in place across calls made with the same ctx (the same
// Done channel), so that a steady stream of Reads allocates nothing; it is
// undone when a call fails, when a call comes with another ctx, and by
// Close. A Conn that is never closed keeps one registration in each ctx it
// last read and wrote with, until that ctx ends.
package wsconn

import (
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
	_ protocols.Conn   = (*Conn)(nil)
)

// Defaults of [Options].
const (
	// DefaultReadBufferSize is the size of a connection's read buffer.
	DefaultReadBufferSize = 4 << 10
	// DefaultWriteBufferSize is the size of the handshake's write buffer.
	DefaultWriteBufferSize = 4 << 10
	// DefaultReadLimit is the largest message a connection accepts: 16 MiB.
	DefaultReadLimit = 16 << 20
	// DefaultCloseTimeout bounds Conn.Close.
	DefaultCloseTimeout = time.Second
)

// maxKeptBuf is the largest buffer a Conn keeps after a message when it
// does not pool its buffers: a bigger one, left by a rare huge message, is
// dropped rather than held for the connection's life.
const maxKeptBuf = 1 << 20

// Options configures a [Dialer]. The zero value means the defaults each
// field names.
type Options struct {
	// Name starts every error message, such as "reference".
	Name string
	// ReadBufferSize is the size of the read buffer, used for the
	// handshake too. Reads of payloads larger than it bypass it. Defaults
	// to [DefaultReadBufferSize].
	ReadBufferSize int
	// WriteBufferSize is the size of the handshake's write buffer; frames
	// are written with one write call each. Defaults to
	// [DefaultWriteBufferSize].
	WriteBufferSize int
	// HandshakeTimeout bounds the TCP connect, the TLS handshake and the
	// upgrade, on top of the context's deadline. Zero means no bound.
	HandshakeTimeout time.Duration
	// ReadLimit is the largest message, in bytes, that Read accepts; a
	// bigger one fails the connection with close code 1009. Defaults to
	// [DefaultReadLimit].
	ReadLimit int
	// CloseTimeout bounds Close. Defaults to [DefaultCloseTimeout].
	CloseTimeout time.Duration
	// Header holds extra headers for the upgrade request.
	Header http.Header
	// TLSConfig configures wss:// connections; nil means the defaults.
	TLSConfig *tls.Config
	// NetDial opens the network connection; nil means a net.Dialer.
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)

	// PoolMessageBuffer makes Read take message buffers from the shared
	// pools and give the last one back at the start of the next Read,
	// before it blocks. Off, a Conn keeps its message buffer (up to 1 MiB).
	PoolMessageBuffer bool
	// PoolWriteBuffer makes Write take its frame buffer from the shared
	// pools and give it back after the write. Off, a Conn keeps it (up to
	// 1 MiB).
	PoolWriteBuffer bool
	// PoolReadBuffer makes the read buffer go back to the shared pools
	// whenever it is empty before Read waits for the next frame, so an
	// idle Conn holds none. It costs one small extra read call each time
	// the buffer ran empty. Off, a Conn keeps its read buffer.
	PoolReadBuffer bool
	// DropUnsendableClose makes Close with a code that must not be sent
	// (RFC 6455 §7.4.1: 1005, 1006, 1015, or out of range) drop the
	// connection without a close frame. Off, Close sends an empty close
	// frame for such a code.
	DropUnsendableClose bool
}

// Dialer dials websockets with its Options. A Dialer is safe for
// concurrent use; its Options must not change while it dials.
type Dialer struct {
	Options Options
}

// Dial connects to url (ws:// or wss://) and completes the websocket
// handshake. When ctx ends first, the error wraps ctx.Err(). Dial leaves no
// goroutine behind.
func (d *Dialer) Dial(ctx context.Context, url string) (protocols.Conn, error) {
	return Dial(ctx, url, &d.Options)
}

// Dial is [Dialer.Dial] with o; the Conn it returns is a *[Conn].
func Dial(ctx context.Context, url string, o *Options) (protocols.Conn, error) {
	readSize := cmp.Or(o.ReadBufferSize, DefaultReadBufferSize)
	wd := ws.Dialer{
		ReadBufferSize:  readSize,
		WriteBufferSize: cmp.Or(o.WriteBufferSize, DefaultWriteBufferSize),
		Timeout:         o.HandshakeTimeout,
		TLSConfig:       o.TLSConfig,
		NetDial:         o.NetDial,
	}
	if o.Header != nil {
		wd.Header = ws.HandshakeHeaderHTTP(o.Header)
	}
	nc, br, _, err := wd.Dial(ctx, url)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w: %w", ctxErr, err)
		}
		return nil, fmt.Errorf("%s: dial %s: %w", o.Name, url, err)
	}
	c := &Conn{
		nc:             nc,
		name:           o.Name,
		readLimit:      cmp.Or(o.ReadLimit, DefaultReadLimit),
		closeTimeout:   cmp.Or(o.CloseTimeout, DefaultCloseTimeout),
		poolMsg:        o.PoolMessageBuffer,
		poolWrite:      o.PoolWriteBuffer,
		dropUnsendable: o.DropUnsendableClose,
		readMu:         make(chanMutex, 1),
		writeMu:        make(chanMutex, 1),
	}
	c.readWatch.set, c.writeWatch.set = nc.SetReadDeadline, nc.SetWriteDeadline
	c.rd.init(nc, readSize, o.PoolReadBuffer)
	if br != nil { // frames that came with the handshake's answer
		c.rd.adopt(br)
		ws.PutReader(br)
	}
	return c, nil
}

// errMessageTooBig is wrapped when a message exceeds the read limit.
var errMessageTooBig = errors.New("message exceeds the read limit")

// pastDeadline is a deadline in the past: setting it fails blocked I/O.
var pastDeadline = time.Unix(1, 0)

// Conn is the client end of one websocket connection: a [protocols.Conn].
type Conn struct {
	nc             net.Conn
	name           string
	readLimit      int
	closeTimeout   time.Duration
	poolMsg        bool
	poolWrite      bool
	dropUnsendable bool

	// Read holds readMu for its whole call, and Close while it waits for
	// the peer's close frame; it guards the read fields.
	readMu    chanMutex
	rd        reader
	readWatch watch
	hdr       [ws.MaxHeaderSize]byte
	ctl       [ws.MaxControlFramePayloadSize]byte
	msg       []byte    // the message being read; returned by Read
	msgBox    *[]byte   // msg's pool box, when pooled
	msgOp     ws.OpCode // opcode of a fragmented message in progress; 0 if none
	midFrame  bool      // part of a frame has been consumed
	readErr   error     // sticky

	// writeMu serializes writers; it guards the write fields.
	writeMu    chanMutex
	writeWatch watch
	wbuf       []byte
	writeErr   error // sticky

	closing    atomic.Bool // Close was called
	peerClosed atomic.Bool // the peer's close frame was read
	closed     atomic.Bool // the network connection is closed
	closeOnce  sync.Once
	closeErr   error
}

// Read returns the next data message; see [protocols.Conn].
func (c *Conn) Read(ctx context.Context) (protocols.MessageType, []byte, error) {
	if c.closing.Load() {
		return 0, nil, fmt.Errorf("%s: websocket read: %w", c.name, protocols.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return 0, nil, fmt.Errorf("%s: websocket read: %w", c.name, err)
	}
	if err := c.readMu.lock(ctx); err != nil {
		return 0, nil, fmt.Errorf("%s: websocket read: %w", c.name, err)
	}
	defer c.readMu.unlock()
	if c.readErr != nil {
		return 0, nil, c.readErr
	}

	c.readWatch.arm(ctx, &c.closing)
	typ, msg, err := c.readMessage(ctx)
	if err == nil {
		return typ, msg, nil
	}
	interrupted := c.readWatch.disarm(&c.closing)
	if interrupted && isTimeout(err) && !c.closing.Load() {
		err = fmt.Errorf("%s: websocket read: %w", c.name, ctx.Err())
		if !c.midFrame {
			return 0, nil, err // nothing of a frame was consumed: go on later
		}
	} else {
		err = c.readFailed(err)
	}
	c.readErr = err
	return 0, nil, err
}

// readMessage reads frames until a whole data message has arrived.
func (c *Conn) readMessage(ctx context.Context) (protocols.MessageType, []byte, error) {
	if c.msgOp == 0 {
		switch {
		case c.poolMsg:
			putBuf(c.msgBox)
			c.msg, c.msgBox = nil, nil
		case cap(c.msg) > maxKeptBuf:
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
			if _, err := io.ReadFull(&c.rd, payload); err != nil {
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
		if err := c.readPayload(h.Length); err != nil {
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
func (c *Conn) readHeader() (ws.Header, error) {
	if err := c.rd.wait(); err != nil {
		return ws.Header{}, err
	}
	c.midFrame = true
	return ws.ReadHeaderBuffer(&c.rd, c.hdr[:])
}

// readPayload appends n bytes to c.msg, growing it as the bytes arrive
// rather than trusting the declared length up front.
func (c *Conn) readPayload(n int64) error {
	const step = 1 << 20
	for n > 0 {
		chunk := int(min(n, step))
		c.growMsg(chunk)
		m := len(c.msg)
		k, err := io.ReadFull(&c.rd, c.msg[m:m+chunk])
		c.msg = c.msg[:m+k]
		if err != nil {
			return err
		}
		n -= int64(chunk)
	}
	return nil
}

// growMsg makes room for n more bytes in c.msg.
func (c *Conn) growMsg(n int) {
	need := len(c.msg) + n
	if need <= cap(c.msg) {
		return
	}
	if !c.poolMsg {
		c.msg = slices.Grow(c.msg, n)
		return
	}
	box := getBuf(need)
	*box = append(*box, c.msg...)
	putBuf(c.msgBox)
	c.msg, c.msgBox = *box, box
}

// readFailed turns an error of readMessage into what Read returns,
// failing the connection when the server broke the protocol.
func (c *Conn) readFailed(err error) error {
	var (
		ce   *protocols.CloseError
		perr ws.ProtocolError
	)
	abnormal := &protocols.CloseError{Code: protocols.CloseAbnormal}
	switch {
	case c.closing.Load():
		return fmt.Errorf("%s: websocket read: %w", c.name, protocols.ErrClosed)
	case errors.As(err, &ce):
		return err // the server's close frame
	case errors.As(err, &perr), errors.Is(err, ws.ErrHeaderLengthMSB), errors.Is(err, ws.ErrHeaderLengthUnexpected):
		c.fail(protocols.CloseCode(ws.StatusProtocolError), string(perr))
		return fmt.Errorf("%s: websocket: server broke the protocol: %w: %w", c.name, abnormal, err)
	case errors.Is(err, errMessageTooBig):
		c.fail(protocols.CloseCode(ws.StatusMessageTooBig), "message too big")
		return fmt.Errorf("%s: websocket read: %w: %w", c.name, abnormal, err)
	}
	// EOF, reset, or any other network failure: the connection is gone.
	c.shutdown()
	return fmt.Errorf("%w: %w", abnormal, err)
}

// peerClose handles the server's close frame: it answers it with an empty
// close frame (no status code: repeating a 1000 or 1001 could end the
// session that a 4xxx close meant to keep) and closes the connection.
func (c *Conn) peerClose(payload []byte) error {
	ce := &protocols.CloseError{Code: protocols.CloseNoStatus}
	switch {
	case len(payload) == 1:
		return ws.ProtocolError("close frame payload of 1 byte")
	case len(payload) >= 2:
		ce.Code = protocols.CloseCode(binary.BigEndian.Uint16(payload))
		ce.Reason = string(payload[2:])
	}
	c.peerClosed.Store(true)
	if !c.closing.Load() {
		c.writeControl(context.Background(), ws.OpClose, nil)
	}
	c.shutdown()
	return ce
}

// fail sends a close frame with code, as far as possible, and closes the
// network connection.
func (c *Conn) fail(code protocols.CloseCode, reason string) {
	if !c.closing.Load() {
		c.writeControl(context.Background(), ws.OpClose, closeBody(code, reason))
	}
	c.shutdown()
}

// writeControl writes a control frame, waiting at most closeTimeout (or
// until ctx ends) for the writer in progress. Errors are dropped: the frame
// is a courtesy, and a broken write side shows in the next Write.
func (c *Conn) writeControl(ctx context.Context, op ws.OpCode, payload []byte) {
	ctx, cancel := context.WithTimeout(ctx, c.closeTimeout)
	defer cancel()
	if c.writeMu.lock(ctx) != nil {
		return
	}
	defer c.writeMu.unlock()
	if c.writeErr != nil || c.closed.Load() {
		return
	}
	// The last Write's ctx must not interrupt this frame.
	c.writeWatch.disarm(&c.closing)
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.closeTimeout))
	if n, err := c.writeFrame(op, payload); err != nil && n > 0 {
		c.writeErr = fmt.Errorf("%s: websocket write: %w", c.name, err)
	}
	if !c.closing.Load() {
		_ = c.nc.SetWriteDeadline(time.Time{})
	}
}

// Write sends one data message; see [protocols.Conn].
func (c *Conn) Write(ctx context.Context, typ protocols.MessageType, p []byte) error {
	var op ws.OpCode
	switch typ {
	case protocols.MessageText:
		op = ws.OpText
	case protocols.MessageBinary:
		op = ws.OpBinary
	default:
		return fmt.Errorf("%s: websocket write: unknown message type %d", c.name, int(typ))
	}
	if c.closing.Load() || c.closed.Load() {
		return fmt.Errorf("%s: websocket write: %w", c.name, protocols.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: websocket write: %w", c.name, err)
	}
	if err := c.writeMu.lock(ctx); err != nil {
		return fmt.Errorf("%s: websocket write: %w", c.name, err)
	}
	defer c.writeMu.unlock()
	if c.writeErr != nil {
		return c.writeErr
	}

	c.writeWatch.arm(ctx, &c.closing)
	n, err := c.writeFrame(op, p)
	if err == nil {
		return nil
	}
	interrupted := c.writeWatch.disarm(&c.closing)
	switch {
	case c.closing.Load() || c.closed.Load():
		err = fmt.Errorf("%s: websocket write: %w", c.name, protocols.ErrClosed)
	case interrupted:
		err = fmt.Errorf("%s: websocket write: %w", c.name, ctx.Err())
		if n == 0 {
			return err // nothing went out: the connection is intact
		}
	default:
		err = fmt.Errorf("%s: websocket write: %w", c.name, err)
	}
	c.writeErr = err
	return err
}

// writeFrame writes one final, masked frame with a single write call and
// returns how many bytes went out. The caller holds writeMu.
func (c *Conn) writeFrame(op ws.OpCode, payload []byte) (int, error) {
	var box *[]byte
	b := c.wbuf[:0]
	if c.poolWrite {
		box = getBuf(len(payload) + ws.MaxHeaderSize)
		b = *box
	}
	mask := ws.NewMask()
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
	n, err := c.nc.Write(b)
	switch {
	case c.poolWrite:
		putBuf(box)
	case cap(b) > maxKeptBuf:
		c.wbuf = nil
	default:
		c.wbuf = b
	}
	return n, err
}

// closeBody encodes a close frame's payload. Codes that must not be sent
// (RFC 6455 §7.4.1: 1005, 1006, 1015, or out of range) give an empty one.
// The reason is cut to fit the frame, never inside a rune.
func closeBody(code protocols.CloseCode, reason string) []byte {
	if !sendable(code) {
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

// sendable reports whether code may appear in a close frame.
func sendable(code protocols.CloseCode) bool {
	return code >= 1000 && code <= 4999 && code != 1005 && code != 1006 && code != 1015
}

// Close sends a close frame with code and reason, waits for the server's
// close frame while discarding what comes before it, and closes the
// network connection, all within the close timeout; see
// [protocols.Conn]. It is idempotent and unblocks Read and Write.
func (c *Conn) Close(code protocols.CloseCode, reason string) error {
	c.closeOnce.Do(func() { c.closeErr = c.close(code, reason) })
	return c.closeErr
}

func (c *Conn) close(code protocols.CloseCode, reason string) error {
	c.closing.Store(true)
	defer c.release()
	if c.closed.Load() {
		return nil // the connection already ended: peer close or failure
	}
	if c.dropUnsendable && !sendable(code) {
		return c.shutdown()
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
		c.writeErr = fmt.Errorf("%s: websocket write: %w", c.name, protocols.ErrClosed)
		c.writeMu.unlock()
	}

	// Wait for the server's close frame: closing a socket that still has
	// unread data makes the kernel send a reset, which can destroy the
	// close frame before the server reads it. A Read in progress may be
	// the one to get it; the deadline ends the wait.
	if sent {
		_ = c.nc.SetReadDeadline(deadline)
		if c.readMu.lock(ctx) == nil {
			if c.readErr == nil && !c.peerClosed.Load() {
				_ = c.nc.SetReadDeadline(deadline)
				c.drain()
			}
			c.readErr = fmt.Errorf("%s: websocket read: %w", c.name, protocols.ErrClosed)
			c.readMu.unlock()
		}
	}
	return c.shutdown()
}

// release, once the network connection is closed, undoes the context
// registrations and gives the read buffer back. Reads and Writes in
// progress end promptly once the connection is closed, so the waits are
// short; the close timeout bounds them anyway.
func (c *Conn) release() {
	c.shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), c.closeTimeout)
	defer cancel()
	if c.writeMu.lock(ctx) == nil {
		c.writeWatch.disarm(&c.closing)
		c.wbuf = nil
		c.writeMu.unlock()
	}
	if c.readMu.lock(ctx) == nil {
		c.readWatch.disarm(&c.closing)
		c.rd.free()
		c.readMu.unlock()
	}
}

// drain discards frames until the server's close frame or an error.
func (c *Conn) drain() {
	for {
		h, err := c.readHeader()
		if err != nil {
			return
		}
		if err := c.rd.discard(h.Length); err != nil {
			return
		}
		if h.OpCode == ws.OpClose {
			c.peerClosed.Store(true)
			return
		}
	}
}

// shutdown closes the network connection once.
func (c *Conn) shutdown() error {
	if c.closed.Swap(true) {
		return nil
	}
	return c.nc.Close()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// chanMutex is a mutex whose lock gives up when a context ends. Waiting is
// a channel operation, so testing/synctest sees it as durably blocked.
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

// watch makes blocked I/O fail when a context ends, by moving a deadline
// into the past. It stays armed across calls with the same context (the
// same Done channel), so a steady stream of calls allocates nothing. The
// caller serializes arm and disarm.
type watch struct {
	set   func(time.Time) error // sets the deadline; a method value made once
	done  <-chan struct{}       // the armed context's Done; nil when unarmed
	stop  func() bool
	fired chan struct{}
}

// arm makes I/O fail once ctx ends, undoing an arming for another context
// first.
func (w *watch) arm(ctx context.Context, closing *atomic.Bool) {
	done := ctx.Done()
	if done == w.done {
		return
	}
	w.disarm(closing)
	if done == nil {
		return
	}
	fired, set := make(chan struct{}), w.set
	w.stop = context.AfterFunc(ctx, func() {
		_ = set(pastDeadline)
		close(fired)
	})
	w.done, w.fired = done, fired
}

// disarm undoes arm and reports whether the context ended meanwhile, in
// which case it clears the deadline again, unless the Conn is closing
// (Close's own deadline must stand). No goroutine of the watch outlives it.
func (w *watch) disarm(closing *atomic.Bool) bool {
	if w.done == nil {
		return false
	}
	stop, fired := w.stop, w.fired
	w.done, w.stop, w.fired = nil, nil, nil
	if stop() {
		return false
	}
	<-fired
	if !closing.Load() {
		_ = w.set(time.Time{})
	}
	return true
}
