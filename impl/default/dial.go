package reference

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
// 1009, and Read's error matches [protocols.CloseAbnormal] too: the
// connection ended without the server's close frame.
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
	return wsconn.Dial(ctx, url, &wsconn.Options{
		Name:             "reference",
		ReadBufferSize:   cmp.Or(d.ReadBufferSize, DefaultReadBufferSize),
		WriteBufferSize:  cmp.Or(d.WriteBufferSize, DefaultWriteBufferSize),
		HandshakeTimeout: d.HandshakeTimeout,
		ReadLimit:        cmp.Or(d.ReadLimit, DefaultReadLimit),
		CloseTimeout:     cmp.Or(d.CloseTimeout, DefaultCloseTimeout),
		Header:           d.Header,
		TLSConfig:        d.TLSConfig,
		NetDial:          d.NetDial,
	})
}
