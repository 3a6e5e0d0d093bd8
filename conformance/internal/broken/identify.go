package broken

import (
	"context"

	"github.com/cordkit/cordkit/protocols"
)

// OneBucket identifies every shard through bucket 0, as a limiter that
// ignores max_concurrency does: safe, and max_concurrency times too slow.
// It breaks "Shards in different buckets identify concurrently." and fails
// TestIdentifyLimiter/DifferentBucketsConcurrent, BucketsKeyedByShardModulo
// and SixteenShardsFourBuckets.
func OneBucket(next protocols.IdentifyLimiter) protocols.IdentifyLimiter {
	return protocols.IdentifyLimiterFunc(func(ctx context.Context, _ int) error { return next.Wait(ctx, 0) })
}

// NeverWaits lets every identify through at once, as disgo did on
// reconnect before #467. It breaks "Identifies in one bucket are at least 5
// seconds apart." and fails TestIdentifyLimiter/OneIdentifyPerFiveSeconds,
// SameShardAgainWaits and SixteenShardsFourBuckets.
func NeverWaits() protocols.IdentifyLimiter {
	return protocols.IdentifyLimiterFunc(func(ctx context.Context, _ int) error { return ctx.Err() })
}

// IgnoreSessionBudget drops the daily session-start budget from the
// parameters of an IdentifyLimiter. It breaks "When the session-start
// budget is spent, Wait waits for its reset, or returns an error wrapping
// [ErrSessionStartLimit] when ctx's deadline comes first." and fails
// TestIdentifyLimiter/SessionBudgetWaitsForReset,
// SessionBudgetFailsPastDeadline and SessionBudgetSpansBuckets.
func IgnoreSessionBudget(p protocols.IdentifyLimiterParams) protocols.IdentifyLimiterParams {
	p.SessionStartLimit = protocols.SessionStartLimit{}
	return p
}
