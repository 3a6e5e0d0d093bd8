package reference_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	reference "github.com/cordkit/cordkit/impl/default"
	"github.com/cordkit/cordkit/protocols"
)

func newIdentifyLimiter(t *testing.T, p protocols.IdentifyLimiterParams) protocols.IdentifyLimiter {
	t.Helper()
	l, err := reference.NewIdentifyLimiter(p)
	require.NoError(t, err)
	return l
}

func TestIdentifyLimiterBuckets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const shards, maxConcurrency = 16, 4
		l := newIdentifyLimiter(t, protocols.IdentifyLimiterParams{MaxConcurrency: maxConcurrency})
		start := time.Now()
		var mu sync.Mutex
		at := make(map[int][]time.Duration) // bucket -> identify times
		var wg sync.WaitGroup
		for id := range shards {
			wg.Go(func() {
				require.NoError(t, l.Wait(t.Context(), id))
				mu.Lock()
				at[id%maxConcurrency] = append(at[id%maxConcurrency], time.Since(start))
				mu.Unlock()
			})
		}
		wg.Wait()
		assert.Equal(t, 15*time.Second, time.Since(start), "16 shards in 4 buckets take exactly 3 intervals")
		for b := range maxConcurrency {
			assert.Equal(t, []time.Duration{0, 5 * time.Second, 10 * time.Second, 15 * time.Second}, at[b],
				"bucket %d: first identify at once, then one per %v", b, reference.IdentifyInterval)
		}
	})
}

func TestIdentifyLimiterFIFO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newIdentifyLimiter(t, protocols.IdentifyLimiterParams{MaxConcurrency: 2})
		var mu sync.Mutex
		var order []int
		var wg sync.WaitGroup
		for _, id := range []int{0, 6, 2, 4} { // all bucket 0
			wg.Go(func() {
				require.NoError(t, l.Wait(t.Context(), id))
				mu.Lock()
				order = append(order, id)
				mu.Unlock()
			})
			synctest.Wait() // queued before the next one comes
		}
		wg.Wait()
		assert.Equal(t, []int{0, 6, 2, 4}, order)
	})
}

func TestIdentifyLimiterCancelledWaiterLeavesQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newIdentifyLimiter(t, protocols.IdentifyLimiterParams{MaxConcurrency: 1})
		start := time.Now()
		require.NoError(t, l.Wait(t.Context(), 0))

		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() { errc <- l.Wait(ctx, 1) }()
		synctest.Wait()
		done := make(chan time.Duration, 1)
		go func() {
			assert.NoError(t, l.Wait(t.Context(), 2))
			done <- time.Since(start)
		}()
		synctest.Wait()
		time.Sleep(time.Second)
		cancel()
		assert.ErrorIs(t, <-errc, context.Canceled)
		assert.Equal(t, reference.IdentifyInterval, <-done, "the next waiter keeps the slot the cancelled one left")

		ctx, cancel = context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		err := l.Wait(ctx, 3)
		assert.ErrorIs(t, err, context.DeadlineExceeded, "a deadline before the bucket's next slot")
	})
}

func TestIdentifyLimiterSessionStartLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const resetAfter = time.Hour
		l := newIdentifyLimiter(t, protocols.IdentifyLimiterParams{
			MaxConcurrency: 4,
			SessionStartLimit: protocols.SessionStartLimit{
				Total: 10, Remaining: 3, ResetAfter: resetAfter.Milliseconds(), MaxConcurrency: 4,
			},
		})
		start := time.Now()
		for id := range 3 {
			require.NoError(t, l.Wait(t.Context(), id))
		}
		assert.Equal(t, time.Duration(0), time.Since(start), "three identifies remain")

		// The budget is spent: a wait that the reset would outlast fails at once.
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		err := l.Wait(ctx, 3)
		require.ErrorIs(t, err, protocols.ErrSessionStartLimit)
		assert.Equal(t, time.Duration(0), time.Since(start), "promptly, not when the context ends")

		// Without a deadline, a wait lasts until the reset, then the full total is back.
		require.NoError(t, l.Wait(t.Context(), 3))
		assert.Equal(t, resetAfter, time.Since(start))
		for id := range 9 {
			require.NoError(t, l.Wait(t.Context(), 4+id*4)) // bucket 0 only, 5 s apart
		}
		assert.Equal(t, resetAfter+40*time.Second, time.Since(start))
		ctx, cancel = context.WithTimeout(t.Context(), time.Hour)
		defer cancel()
		assert.ErrorIs(t, l.Wait(ctx, 1), protocols.ErrSessionStartLimit, "ten used since the reset")

		// Cancelling a wait for the reset reports both causes.
		ctx, cancel2 := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() { errc <- l.Wait(ctx, 2) }()
		synctest.Wait()
		cancel2()
		err = <-errc
		assert.ErrorIs(t, err, protocols.ErrSessionStartLimit)
		assert.ErrorIs(t, err, context.Canceled)
	})
}

func TestIdentifyLimiterParams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newIdentifyLimiter(t, protocols.IdentifyLimiterParams{}) // one bucket
		start := time.Now()
		require.NoError(t, l.Wait(t.Context(), 0))
		require.NoError(t, l.Wait(t.Context(), 1))
		assert.Equal(t, reference.IdentifyInterval, time.Since(start), "MaxConcurrency 0 means one bucket")

		assert.ErrorIs(t, l.Wait(t.Context(), -1), protocols.ErrInvalidShard)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		assert.ErrorIs(t, l.Wait(ctx, 0), context.Canceled)

		_, err := reference.NewIdentifyLimiter(protocols.IdentifyLimiterParams{
			SessionStartLimit: protocols.SessionStartLimit{Total: 1, Remaining: -1},
		})
		assert.Error(t, err)
	})
}

func TestIdentifyLimiterConcurrentSafe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newIdentifyLimiter(t, protocols.IdentifyLimiterParams{MaxConcurrency: 16,
			SessionStartLimit: protocols.SessionStartLimit{Total: 1000, Remaining: 1000, ResetAfter: 1}})
		var wg sync.WaitGroup
		for id := range 64 {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(t.Context(), time.Duration(id%7)*time.Second)
				defer cancel()
				_ = l.Wait(ctx, id)
			})
		}
		wg.Wait()
	})
}
