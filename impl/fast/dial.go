package fast

import (
	"cmp"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"time"

	"github.com/cordkit/cordkit/internal/wsconn"
	"github.com/cordkit/cordkit/protocols"
)

var _ protocols.Dialer = (*Dialer)(nil)

// Defaults of [Dialer] that differ from the reference Dialer's.
const (
	// DefaultReadBufferSize is the size of the read buffer a connection
	// takes from a shared pool while frames arrive; an idle connection
	// gives it back, so its size costs nothing at rest.
	DefaultReadBufferSize = 4 << 10
	// DefaultWriteBufferSize is the size of the handshake's write buffer,
	// which goes back to gobwas/ws's pool after the handshake.
	DefaultWriteBufferSize = 4 << 10
	// DefaultReadLimit is the largest message a connection accepts: 16 MiB,
	// well above the largest (uncompressed) GUILD_CREATE.
	DefaultReadLimit = 16 << 20
	// DefaultCloseTimeout bounds Conn.Close.
	DefaultCloseTimeout = time.Second
)

// Dialer is a [protocols.Dialer] for bots with many shards: RFC 6455
// websockets on github.com/gobwas/ws, the same client as the reference
// Dialer of impl/default (same fields, same documented behaviour of the
// Conn), set up so that an idle connection holds as little memory as
// possible. Every buffer comes from pools shared by all connections: the
// message Read returns goes back at the start of the next Read, before it
// blocks (it is valid until then, as [protocols.Conn] says); the frame a
// Write builds goes back after the write; the read buffer goes back
// whenever it is empty before Read waits. An idle connection then holds its
// structs, the network connection and the stack of the goroutine blocked in
// Read: 3 to 4.5 KiB on loopback TCP, against about 12.5 KiB for the
// reference Dialer (BenchmarkDialerIdle; wss:// adds crypto/tls's own
// buffers). In steady state Read allocates nothing per message when it is
// called with the same ctx each time.
//
// The price is that of the pools: a connection that is always busy copies
// a little more (a pooled message buffer grows by copying where the
// reference one grows in place) and makes one small extra read call each
// time its read buffer ran empty. Set the Keep fields to trade memory back
// for that.
//
// The zero value is ready to use, with the defaults each field names; a
// Dialer is safe for concurrent use and must not be changed while it dials.
type Dialer struct {
	// ReadBufferSize is the size of the read buffer, used for the
	// handshake too; payloads larger than it are read past it, straight
	// into the message buffer. Defaults to [DefaultReadBufferSize].
	ReadBufferSize int
	// WriteBufferSize is the size of the handshake's write buffer. Frames
	// are written with one write call each. Defaults to
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

	// KeepMessageBuffer makes each connection keep its own message buffer
	// (up to 1 MiB) between Reads instead of returning it to the pool.
	KeepMessageBuffer bool
	// KeepWriteBuffer makes each connection keep its own write buffer (up
	// to 1 MiB) between Writes instead of returning it to the pool.
	KeepWriteBuffer bool
	// KeepReadBuffer makes each connection keep its read buffer while it
	// waits for frames, saving the extra read call.
	KeepReadBuffer bool
}

// Dial connects to url (ws:// or wss://) and completes the websocket
// handshake; the Conn behaves as the reference Dialer's does (see
// reference.Dialer.Dial in impl/default), buffers aside. When ctx ends
// first, the error wraps ctx.Err(). Dial leaves no goroutine behind, and
// the Conn starts none of its own.
func (d *Dialer) Dial(ctx context.Context, url string) (protocols.Conn, error) {
	return wsconn.Dial(ctx, url, &wsconn.Options{
		Name:              "fast",
		ReadBufferSize:    cmp.Or(d.ReadBufferSize, DefaultReadBufferSize),
		WriteBufferSize:   cmp.Or(d.WriteBufferSize, DefaultWriteBufferSize),
		HandshakeTimeout:  d.HandshakeTimeout,
		ReadLimit:         cmp.Or(d.ReadLimit, DefaultReadLimit),
		CloseTimeout:      cmp.Or(d.CloseTimeout, DefaultCloseTimeout),
		Header:            d.Header,
		TLSConfig:         d.TLSConfig,
		NetDial:           d.NetDial,
		PoolMessageBuffer: !d.KeepMessageBuffer,
		PoolWriteBuffer:   !d.KeepWriteBuffer,
		PoolReadBuffer:    !d.KeepReadBuffer,
	})
}
