package protocols

import (
	"context"
	"time"
)

// KeepAlive is a shard's heartbeater.
//
// Rules (quoted by the conformance suite):
//   - The first heartbeat is sent after interval times a random jitter in [0, 1), then one every interval.
//   - BeatNow sends a heartbeat at once, without waiting for the timer.
//   - When no Ack arrived between two scheduled heartbeats, Run returns ErrZombieConnection.
//   - Ack and BeatNow return at once, even while beat runs.
//   - Each Run starts afresh, as on a new connection: no ACK is owed for the heartbeats of an earlier Run.
//
// Run is called by one goroutine per connection; Ack and BeatNow may be
// called from any goroutine while Run runs. It must use package time for its
// timers, so testing/synctest can drive it. Implementations should pass
// [github.com/cordkit/cordkit/conformance.TestKeepAlive].
type KeepAlive interface {
	// Run beats until ctx ends (returning an error wrapping ctx.Err()), beat
	// fails (returning its error), or an ACK is missed (returning
	// [ErrZombieConnection]).
	Run(ctx context.Context, interval time.Duration, beat func(ctx context.Context) error) error
	// Ack records a heartbeat ACK.
	Ack()
	// BeatNow asks Run to beat at once, for a server op 1. Such a beat
	// does not move the schedule and is not a scheduled heartbeat.
	BeatNow()
}

// IdentifyLimiter spaces identifies as Discord requires: max_concurrency
// buckets keyed by shard_id % max_concurrency, one identify per bucket per 5
// seconds, and the daily session-start budget.
//
// Rules (quoted by the conformance suite):
//   - Identifies in one bucket are at least 5 seconds apart.
//   - Shards in different buckets identify concurrently.
//   - When the session-start budget is spent, Wait waits for its reset, or returns an error wrapping [ErrSessionStartLimit] when ctx's deadline comes first.
//
// A limiter must be safe for concurrent use. Implementations should pass
// [github.com/cordkit/cordkit/conformance.TestIdentifyLimiter].
type IdentifyLimiter interface {
	// Wait blocks until shardID may identify, or ctx ends.
	Wait(ctx context.Context, shardID int) error
}

// IdentifyLimiterFunc adapts a function to [IdentifyLimiter].
type IdentifyLimiterFunc func(ctx context.Context, shardID int) error

// Wait calls f(ctx, shardID).
func (f IdentifyLimiterFunc) Wait(ctx context.Context, shardID int) error { return f(ctx, shardID) }

// SendLimiter paces the payloads one connection sends: 120 per 60 seconds,
// with a few slots kept for heartbeats. A payload admitted at time t counts
// during [t, t+60s).
//
// Rules (quoted by the conformance suite):
//   - No more than 120 payloads are admitted in any 60 seconds.
//   - Heartbeats are admitted even when other payloads have used their share.
//   - Other payloads leave room for every heartbeat the interval given to Reset brings in 60 seconds, plus one.
//
// A SendLimiter must be safe for concurrent use. Implementations should pass
// [github.com/cordkit/cordkit/conformance.TestSendLimiter].
type SendLimiter interface {
	// Wait blocks until one payload may be sent, or ctx ends. heartbeat
	// marks a heartbeat, which may use the reserved slots.
	Wait(ctx context.Context, heartbeat bool) error
	// Reset forgets what was sent, for a new connection whose HELLO
	// announced heartbeatInterval; the limiter sizes the room it keeps for
	// heartbeats from it. Zero means unknown: Discord's usual 41.25 s.
	Reset(heartbeatInterval time.Duration)
}
