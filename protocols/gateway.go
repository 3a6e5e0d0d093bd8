package protocols

import (
	"context"
	"encoding/json"
	"strconv"
	"time"
)

// Opcode is a gateway opcode.
type Opcode int

// Gateway opcodes.
const (
	OpDispatch            Opcode = 0
	OpHeartbeat           Opcode = 1
	OpIdentify            Opcode = 2
	OpPresenceUpdate      Opcode = 3
	OpVoiceStateUpdate    Opcode = 4
	OpResume              Opcode = 6
	OpReconnect           Opcode = 7
	OpRequestGuildMembers Opcode = 8
	OpInvalidSession      Opcode = 9
	OpHello               Opcode = 10
	OpHeartbeatACK        Opcode = 11
	OpRequestSoundboard   Opcode = 31
	OpRequestChannelInfo  Opcode = 43
)

var opNames = map[Opcode]string{
	OpDispatch: "DISPATCH", OpHeartbeat: "HEARTBEAT", OpIdentify: "IDENTIFY",
	OpPresenceUpdate: "PRESENCE_UPDATE", OpVoiceStateUpdate: "VOICE_STATE_UPDATE",
	OpResume: "RESUME", OpReconnect: "RECONNECT", OpRequestGuildMembers: "REQUEST_GUILD_MEMBERS",
	OpInvalidSession: "INVALID_SESSION", OpHello: "HELLO", OpHeartbeatACK: "HEARTBEAT_ACK",
	OpRequestSoundboard: "REQUEST_SOUNDBOARD_SOUNDS", OpRequestChannelInfo: "REQUEST_CHANNEL_INFO",
}

// String returns the opcode's name, such as "HELLO", or "OP_n" when unknown.
// It is the key of a raw dispatcher (see [Dispatcher]).
func (o Opcode) String() string {
	if s, ok := opNames[o]; ok {
		return s
	}
	return "OP_" + strconv.Itoa(int(o))
}

// CloseCode is a websocket close code: Discord's 4000-4014 or a standard
// one such as 1000.
type CloseCode int

// Close codes.
const (
	CloseNormal               CloseCode = 1000
	CloseGoingAway            CloseCode = 1001
	CloseProtocolError        CloseCode = 1002
	CloseNoStatus             CloseCode = 1005
	CloseAbnormal             CloseCode = 1006
	CloseMessageTooBig        CloseCode = 1009
	CloseServiceRestart       CloseCode = 1012
	CloseUnknownError         CloseCode = 4000
	CloseUnknownOpcode        CloseCode = 4001
	CloseDecodeError          CloseCode = 4002
	CloseNotAuthenticated     CloseCode = 4003
	CloseAuthenticationFailed CloseCode = 4004
	CloseAlreadyAuthenticated CloseCode = 4005
	CloseInvalidSeq           CloseCode = 4007
	CloseRateLimited          CloseCode = 4008
	CloseSessionTimedOut      CloseCode = 4009
	CloseInvalidShard         CloseCode = 4010
	CloseShardingRequired     CloseCode = 4011
	CloseInvalidAPIVersion    CloseCode = 4012
	CloseInvalidIntents       CloseCode = 4013
	CloseDisallowedIntents    CloseCode = 4014
)

var closeNames = map[CloseCode]string{
	CloseNormal: "normal closure", CloseGoingAway: "going away", CloseAbnormal: "abnormal closure",
	CloseProtocolError: "protocol error", CloseNoStatus: "no status", CloseMessageTooBig: "message too big",
	CloseServiceRestart: "service restart",
	CloseUnknownError:   "unknown error", CloseUnknownOpcode: "unknown opcode", CloseDecodeError: "decode error",
	CloseNotAuthenticated: "not authenticated", CloseAuthenticationFailed: "authentication failed",
	CloseAlreadyAuthenticated: "already authenticated", CloseInvalidSeq: "invalid seq",
	CloseRateLimited: "rate limited", CloseSessionTimedOut: "session timed out",
	CloseInvalidShard: "invalid shard", CloseShardingRequired: "sharding required",
	CloseInvalidAPIVersion: "invalid API version", CloseInvalidIntents: "invalid intents",
	CloseDisallowedIntents: "disallowed intents",
}

// String returns the close code's name.
func (c CloseCode) String() string {
	if s, ok := closeNames[c]; ok {
		return s
	}
	return "close " + strconv.Itoa(int(c))
}

// CloseAction is what a client does after the gateway closed with a code.
type CloseAction int

// The actions of [CloseCode.Action].
const (
	// ActionResume reconnects and resumes the session.
	ActionResume CloseAction = iota
	// ActionIdentify reconnects and starts a new session.
	ActionIdentify
	// ActionStop ends the shard with a typed error: reconnecting cannot help.
	ActionStop
)

// Action returns what to do after a close with c, following Discord's close
// code table: 4004 and 4010-4014 stop; 4003, 4007 and 4009 start a new
// session; every other code, and a drop with no code, resumes.
func (c CloseCode) Action() CloseAction {
	switch c {
	case CloseAuthenticationFailed, CloseInvalidShard, CloseShardingRequired,
		CloseInvalidAPIVersion, CloseInvalidIntents, CloseDisallowedIntents:
		return ActionStop
	case CloseNotAuthenticated, CloseInvalidSeq, CloseSessionTimedOut:
		return ActionIdentify
	}
	return ActionResume
}

// Envelope is a gateway payload {op, d, s, t} with d left undecoded.
type Envelope struct {
	// Op is the opcode.
	Op Opcode
	// S is the sequence number of a dispatch; 0 when null or absent.
	S int64
	// T is the event name of a dispatch; "" when null or absent.
	T string
	// D is the raw JSON of d, nil when absent. After DecodeEnvelope it may
	// alias the decoded buffer (see [Codec]).
	D json.RawMessage
}

// GatewayBot is the answer of GET /gateway/bot.
type GatewayBot struct {
	URL               string            `json:"url"`
	Shards            int               `json:"shards"`
	SessionStartLimit SessionStartLimit `json:"session_start_limit"`
}

// SessionStartLimit is the daily identify budget reported by /gateway/bot.
type SessionStartLimit struct {
	Total int `json:"total"`
	// Remaining identifies before the reset.
	Remaining int `json:"remaining"`
	// ResetAfter is in milliseconds.
	ResetAfter int64 `json:"reset_after"`
	// MaxConcurrency is the number of identify buckets, each allowing one
	// identify per 5 seconds.
	MaxConcurrency int `json:"max_concurrency"`
}

// Event is one payload received by a shard, handed to a [Dispatcher].
type Event struct {
	// Shard is the receiving shard's ID.
	Shard int
	// Op is the payload's opcode.
	Op Opcode
	// Seq is the dispatch sequence number; 0 for other opcodes.
	Seq int64
	// Name is the dispatch event name, "" for other opcodes.
	Name string
	// Data is the raw JSON of d. It is valid only while the handler runs:
	// a handler that keeps it must copy it.
	Data json.RawMessage
}

// Handler receives events. A shard calls handlers from one goroutine, in
// the order the events arrived, apart from the goroutine that reads the
// connection, so heartbeat ACKs never wait for a handler; but the shard's
// later events do, so a handler must not block for long.
type Handler func(ev Event)

// AnyEvent is the name that listens to every event of a Dispatcher.
const AnyEvent = "*"

// Dispatcher delivers events to handlers by name. An event goes to the
// handlers listening to its Name ("MESSAGE_CREATE"), to its opcode's name
// [Opcode.String] ("HELLO", "DISPATCH"), and to [AnyEvent]. A gateway
// keeps two: one it hands dispatches (op 0), and a raw one it hands every
// payload.
//
// A Dispatcher must be safe for concurrent use: Listen, remove and WaitFor
// may be called from any goroutine while Dispatch runs. Implementations
// should pass [github.com/cordkit/cordkit/conformance.TestDispatcher].
type Dispatcher interface {
	// Listen registers h for events named name, or for all with [AnyEvent],
	// and returns a function that removes it; removing twice is harmless.
	// Handlers of one name run in the order they were added.
	Listen(name string, h Handler) (remove func())
	// Dispatch calls the handlers for ev, then wakes matching WaitFor calls,
	// and returns when all have run.
	Dispatch(ev Event)
	// WaitFor blocks until an event named name for which match returns
	// true (match may be nil) is dispatched, or ctx ends. The returned
	// event's Data is a copy the caller owns.
	WaitFor(ctx context.Context, name string, match func(Event) bool) (Event, error)
}

// ShardStatus is a snapshot of a shard's state.
type ShardStatus struct {
	// ID and Count are the shard's [shard_id, num_shards].
	ID, Count int
	// Ready reports that the shard has received READY or RESUMED on its
	// current connection.
	Ready bool
	// Session is the current session, if any.
	Session Session
	// Latency is the round trip of the latest acknowledged heartbeat.
	Latency time.Duration
}

// Shard is one gateway session: it connects, identifies or resumes, keeps
// the connection alive and reconnects as Discord's rules say.
//
// Rules (quoted by the conformance suite):
//   - Run dials URL with v=Version and encoding=json in the query, and IDENTIFY carries the bare token, the properties, Intents, [ID, Count] as shard and LargeThreshold.
//   - A heartbeat carries the last sequence number received, or null before the first dispatch.
//   - A server HEARTBEAT (op 1) is answered with a heartbeat at once, without moving the schedule.
//   - A connection without a heartbeat ACK between two heartbeats is closed with a code other than 1000 and 1001, and the session resumed.
//   - A resume dials the session's resume_gateway_url with the same query.
//   - When the resume URL cannot be reached, the shard resumes on URL.
//   - RECONNECT (op 7), at any time, even before HELLO, makes the shard reconnect and resume.
//   - INVALID_SESSION with d=true makes the shard reconnect and resume.
//   - After INVALID_SESSION with d=false, the shard waits 1 to 5 seconds and identifies anew on URL.
//   - Every IDENTIFY, reconnects included, waits for the IdentifyLimiter.
//   - The token never appears in errors or logs.
//   - A payload that cannot be read or decoded closes the connection with a code other than 1000 and 1001, and the session is resumed.
//   - Across reconnects, every dispatch reaches Events exactly once, in sequence order.
//   - A failed dial is retried with backoff until Run ends.
//
// A Shard must be safe for concurrent use. Implementations should pass
// [github.com/cordkit/cordkit/conformance.TestShard].
type Shard interface {
	// Run connects and keeps the shard connected until ctx ends (returning
	// nil), Close is called, or a fatal close code ends it (returning the
	// *CloseError). ready, when not nil, is called each time the shard
	// becomes ready.
	Run(ctx context.Context, ready func()) error
	// Send sends one payload, waiting for the send limiter.
	Send(ctx context.Context, op Opcode, d any) error
	// Close closes the connection with code and ends Run. Codes 1000 and
	// 1001 end the session; other codes keep it resumable. Idempotent.
	// Close may be called from a handler.
	Close(code CloseCode) error
	// Status returns a snapshot of the shard's state.
	Status() ShardStatus
}

// Gateway is the shard manager: it asks /gateway/bot for the URL, shard
// count and identify concurrency unless configured, runs the shards,
// identifies them no faster than Discord allows, and rescales without
// downtime.
//
// Rules (quoted by the conformance suite):
//   - When a shard is closed with 4011 and ShardCount is 0, the gateway rescales to a count that covers every guild, without reconnecting the refused shard.
//   - With ShardCount set, a 4011 is the fatal error Connect returns.
//
// A Gateway must be safe for concurrent use. Implementations should pass
// [github.com/cordkit/cordkit/conformance.TestGateway].
type Gateway interface {
	// Connect starts every shard and returns once all are ready, or with
	// the first fatal error. The shards keep running after it returns.
	Connect(ctx context.Context) error
	// Rescale brings up count shards (ids, or all of 0..count-1 when nil)
	// and closes the old ones once the new ones are ready.
	Rescale(ctx context.Context, count int, ids []int) error
	// Shard returns the shard with the given ID, or nil.
	Shard(id int) Shard
	// Close closes every shard and ends every goroutine. Idempotent.
	Close() error
}
