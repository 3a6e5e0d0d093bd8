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
)

// slMaxInWindow returns the most admissions within any SendWindow
// (half-open: an admission at t counts during [t, t+SendWindow)).
func slMaxInWindow(times []time.Duration) int {
	most := 0
	for i := range times {
		n := 0
		for _, u := range times {
			if u >= times[i] && u < times[i]+reference.SendWindow {
				n++
			}
		}
		most = max(most, n)
	}
	return most
}

func TestSendLimiterWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := reference.NewSendLimiter()
		start := time.Now()
		var sent []time.Duration
		for range 200 {
			require.NoError(t, l.Wait(t.Context(), false))
			sent = append(sent, time.Since(start))
		}
		share := reference.SendLimit - reference.HeartbeatReserve
		assert.Equal(t, time.Duration(0), sent[share-1], "the first %d go at once", share)
		assert.Equal(t, reference.SendWindow, sent[share], "the next waits for the window")
		assert.Equal(t, share, slMaxInWindow(sent))
	})
}

func TestSendLimiterHeartbeatsNeverStarve(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := reference.NewSendLimiter()
		start := time.Now()
		ctx, cancel := context.WithCancel(t.Context())
		var mu sync.Mutex
		var all []time.Duration
		record := func() {
			mu.Lock()
			all = append(all, time.Since(start))
			mu.Unlock()
		}
		var wg sync.WaitGroup
		for range 4 { // several senders keep the limiter saturated
			wg.Go(func() {
				for {
					if l.Wait(ctx, false) != nil {
						return
					}
					record()
				}
			})
		}
		// A heartbeat every 41.25 s plus a server-requested one now and then.
		beat := func() {
			before := time.Now()
			require.NoError(t, l.Wait(t.Context(), true))
			assert.Equal(t, time.Duration(0), time.Since(before), "a heartbeat never waits")
			record()
		}
		for i := range 12 {
			time.Sleep(41250 * time.Millisecond)
			beat()
			if i%4 == 0 {
				beat()
			}
		}
		cancel()
		wg.Wait()
		assert.LessOrEqual(t, slMaxInWindow(all), reference.SendLimit, "never more than SendLimit in any window")
		assert.Greater(t, len(all), 8*(reference.SendLimit-reference.HeartbeatReserve), "the other payloads used their share")
	})
}

func TestSendLimiterHeartbeatsUseWholeLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := reference.NewSendLimiter()
		start := time.Now()
		for range reference.SendLimit {
			require.NoError(t, l.Wait(t.Context(), true))
		}
		assert.Equal(t, time.Duration(0), time.Since(start))
		require.NoError(t, l.Wait(t.Context(), true))
		assert.Equal(t, reference.SendWindow, time.Since(start), "even heartbeats respect the limit")
	})
}

func TestSendLimiterContextAndReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := reference.NewSendLimiter()
		for range reference.SendLimit - reference.HeartbeatReserve {
			require.NoError(t, l.Wait(t.Context(), false))
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		assert.ErrorIs(t, l.Wait(ctx, false), context.DeadlineExceeded)

		cctx, ccancel := context.WithCancel(t.Context())
		ccancel()
		assert.ErrorIs(t, l.Wait(cctx, true), context.Canceled, "an ended context admits nothing")

		// A waiter is woken by Reset (a new connection), not by the window.
		start := time.Now()
		errc := make(chan error, 1)
		go func() { errc <- l.Wait(t.Context(), false) }()
		synctest.Wait()
		time.Sleep(time.Second)
		l.Reset(0)
		require.NoError(t, <-errc)
		assert.Equal(t, time.Second, time.Since(start))
	})
}

func TestSendLimiterFIFO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := reference.NewSendLimiter()
		for range reference.SendLimit - reference.HeartbeatReserve {
			require.NoError(t, l.Wait(t.Context(), false))
		}
		var mu sync.Mutex
		var order []int
		var wg sync.WaitGroup
		for i := range 5 {
			wg.Go(func() {
				require.NoError(t, l.Wait(t.Context(), false))
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
			})
			synctest.Wait()
		}
		wg.Wait()
		assert.Equal(t, []int{0, 1, 2, 3, 4}, order)
	})
}
