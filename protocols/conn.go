package protocols

import "context"

// MessageType is a websocket data frame type.
type MessageType int

// Message types.
const (
	MessageText   MessageType = 1
	MessageBinary MessageType = 2
)

// Dialer opens gateway websocket connections.
//
// A Dialer must be safe for concurrent use.
type Dialer interface {
	// Dial connects to url (ws:// or wss://, with its query) and completes
	// the websocket handshake, or fails with an error wrapping ctx.Err()
	// when ctx ends first.
	Dial(ctx context.Context, url string) (Conn, error)
}

// DialerFunc adapts a function to [Dialer].
type DialerFunc func(ctx context.Context, url string) (Conn, error)

// Dial calls f(ctx, url).
func (f DialerFunc) Dial(ctx context.Context, url string) (Conn, error) { return f(ctx, url) }

// Conn is one websocket connection. Read is called by one goroutine at a
// time and Write by one goroutine at a time, but the two may run
// concurrently with each other and with Close. Control frames (ping, pong,
// close) are handled inside the Conn.
type Conn interface {
	// Read returns the next data message. The slice is valid until the next
	// Read. When the peer closed the connection, the error matches a
	// *CloseError (errors.As) with the peer's code, [CloseNoStatus] for a
	// close frame without one; a drop without a close frame matches a
	// *CloseError with [CloseAbnormal] and may wrap the network error.
	// After Close, Read returns an error wrapping [ErrClosed].
	Read(ctx context.Context) (MessageType, []byte, error)
	// Write sends one data message. It must not retain p.
	Write(ctx context.Context, typ MessageType, p []byte) error
	// Close sends a close frame with code and reason and closes the
	// connection. It is idempotent.
	Close(code CloseCode, reason string) error
}

// Session is what a shard needs to resume.
type Session struct {
	// ShardID and ShardCount are the shard's [shard_id, num_shards].
	ShardID, ShardCount int
	// ID is READY's session_id.
	ID string
	// Seq is the last sequence number received.
	Seq int64
	// ResumeURL is READY's resume_gateway_url.
	ResumeURL string
}

// SessionStore keeps sessions so that a restarted process resumes instead
// of identifying.
//
// A SessionStore must be safe for concurrent use. Implementations should
// pass [github.com/cordkit/cordkit/conformance.TestSessionStore].
type SessionStore interface {
	// Load returns the session of shard id out of count, or an error
	// wrapping [ErrNoSession].
	Load(ctx context.Context, id, count int) (Session, error)
	// Save stores s, replacing the shard's previous session.
	Save(ctx context.Context, s Session) error
	// Delete forgets the shard's session; deleting nothing is not an error.
	Delete(ctx context.Context, id, count int) error
}
