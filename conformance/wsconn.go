package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/cordkit/cordkit/internal/wsconn"
	"github.com/cordkit/cordkit/protocols"
)

// The gateway suites hand the implementation a [protocols.Dialer] of their
// own: RFC 6455 websockets on github.com/gobwas/ws, dialed in memory to
// the mock ([mockdiscord.Server.NetDial]) so that they work inside a
// testing/synctest bubble. It keeps to the [protocols.Conn] contract and
// records what the shard dials and writes, for the cases to inspect.

// wsDialer dials websockets through netDial with the shared client of
// internal/wsconn, as the reference Dialer does. A Close with a code that
// cannot be sent (1005, 1006, ...) drops the connection without a close
// frame, so that a shard can end a connection the way a network failure
// would.
type wsDialer struct {
	netDial func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (d wsDialer) Dial(ctx context.Context, url string) (protocols.Conn, error) {
	return wsconn.Dial(ctx, url, &wsconn.Options{Name: "conformance", NetDial: d.netDial, DropUnsendableClose: true})
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
