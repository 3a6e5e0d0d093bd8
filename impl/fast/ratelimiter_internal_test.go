package fast

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/cordkit/cordkit/protocols"
)

func (l *limiter) bucketCount() int {
	n := 0
	for i := range l.shards {
		n += len(*l.shards[i].m.Load())
	}
	return n
}

// Idle buckets are evicted by the first Acquire after IdleTimeout; busy
// ones, and ones whose reset is still ahead, are kept.
func TestRateLimiterEvictsIdleBuckets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rl, err := RateLimiterOptions{IdleTimeout: time.Minute}.New(protocols.RateLimiterParams{GlobalLimit: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer rl.Close()
		l := rl.(*limiter)
		route := func(ch string) protocols.Route {
			r, err := protocols.NewRoute("GET", "/channels/{channel_id}", ch)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		ctx := t.Context()
		p, _ := l.Acquire(ctx, route("1"))
		p.Complete(protocols.RateLimitInfo{Status: 200, Bucket: "h", HasLimit: true, Limit: 5, Remaining: 4, ResetAfter: time.Second})
		p, _ = l.Acquire(ctx, route("2"))
		p.Complete(protocols.RateLimitInfo{Status: 200, Bucket: "h", HasLimit: true, Limit: 5, Remaining: 0, ResetAfter: time.Hour})
		held, _ := l.Acquire(ctx, route("3"))
		before := l.bucketCount()
		time.Sleep(2 * time.Minute)
		p, _ = l.Acquire(ctx, route("4"))
		p.Cancel()
		// Channel 1 is gone; channel 2 (reset in an hour), channel 3 (a
		// permit out) and channel 4 stay.
		if got := l.bucketCount(); got != before {
			t.Errorf("got %d buckets after the sweep, want %d (had %d, one evicted, one created)", got, before, before)
		}
		if b := (*l.shardOf(bkey{name: "h", res: "channels/1"}).m.Load())[bkey{name: "h", res: "channels/1"}]; b != nil {
			t.Error("the idle bucket of channel 1 was not evicted")
		}
		held.Cancel()
	})
}
