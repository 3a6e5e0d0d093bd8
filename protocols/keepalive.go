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

// KeepAliveStarter is a [KeepAlive] that can also beat on timers, with no
// goroutine of its own between beats. A shard that finds it (by type
// assertion) calls Start instead of running Run on a goroutine, so an idle
// connection costs one goroutine less; KeepAlive implementations without
// it keep working.
//
// Rules (quoted by the conformance suite):
//   - Start keeps Run's schedule and rules and ends when Run would return, calling done once with the error Run would return.
//   - Start returns at once; no beat starts after done was called, and beats never overlap.
//
// Implementations should pass
// [github.com/cordkit/cordkit/conformance.TestKeepAlive], which runs
// every KeepAlive rule through Start too when it is implemented.
type KeepAliveStarter interface {
	KeepAlive
	// Start is Run without the blocking: it returns at once and beats from
	// timers until ctx ends, beat fails or an ACK is missed, then calls
	// done, from some goroutine, with the error Run would have returned.
	// When done is called, no beat runs or will run. An invalid interval
	// or a nil beat or done is reported by Start's error, and done is then
	// never called. Start, like Run, is not called again before done.
	Start(ctx context.Context, interval time.Duration, beat func(ctx context.Context) error, done func(error)) error
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
