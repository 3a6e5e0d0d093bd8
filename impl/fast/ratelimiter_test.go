package fast_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cordkit/cordkit/conformance"
	"github.com/cordkit/cordkit/impl/fast"
	"github.com/cordkit/cordkit/protocols"
)

func TestRateLimiterConformance(t *testing.T) {
	for _, o := range []fast.RateLimiterOptions{{}, {InFlight: true}} {
		t.Run("InFlight="+strconv.FormatBool(o.InFlight), func(t *testing.T) {
			conformance.TestRateLimiter(t, func(t *testing.T, p protocols.RateLimiterParams) protocols.RateLimiter {
				l, err := o.New(p)
				if err != nil {
					t.Fatal(err)
				}
				return l
			})
		})
	}
}

func newFastLimiter(t *testing.T, o fast.RateLimiterOptions, p protocols.RateLimiterParams) protocols.RateLimiter {
	t.Helper()
	l, err := o.New(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func channelRoute(t *testing.T, ch int) protocols.Route {
	t.Helper()
	r, err := protocols.NewRoute("POST", "/channels/{channel_id}/messages", strconv.Itoa(ch))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func limits(hash string, limit, remaining int, reset time.Duration) protocols.RateLimitInfo {
	return protocols.RateLimitInfo{Status: 200, Bucket: hash, HasLimit: true, Limit: limit, Remaining: remaining, ResetAfter: reset}
}

// tryAcquire acquires r if that is possible without waiting.
func tryAcquire(t *testing.T, l protocols.RateLimiter, r protocols.Route) protocols.Permit {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	type result struct {
		p   protocols.Permit
		err error
	}
	ch := make(chan result, 1)
	go func() {
		p, err := l.Acquire(ctx, r)
		ch <- result{p, err}
	}()
	synctest.Wait()
	cancel()
	res := <-ch
	if res.err != nil {
		if !errors.Is(res.err, context.Canceled) {
			t.Fatalf("Acquire(%v): %v", r, res.err)
		}
		return nil
	}
	return res.p
}

// With InFlight, a request of the old window still in flight when the
// reset passes keeps the bucket from probing the new one: Discord may
// count it in the new window.
func TestRateLimiterInFlightStragglerHoldsProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newFastLimiter(t, fast.RateLimiterOptions{InFlight: true}, protocols.RateLimiterParams{GlobalLimit: -1})
		r := channelRoute(t, 1)
		tryAcquire(t, l, r).Complete(limits("h", 5, 2, time.Second))
		a, b := tryAcquire(t, l, r), tryAcquire(t, l, r)
		if a == nil || b == nil {
			t.Fatal("two requests not admitted at once after Remaining 2")
		}
		if p := tryAcquire(t, l, r); p != nil {
			t.Fatal("a third request admitted after Remaining 2")
		}
		a.Complete(limits("h", 5, 1, 900*time.Millisecond))
		time.Sleep(2 * time.Second) // past the reset; b is still in flight
		if p := tryAcquire(t, l, r); p != nil {
			t.Fatal("a request admitted after the reset while a request of the old window is in flight")
		}
		// b was counted in the new window. A response may only lower the
		// count and push the reset later, so the bucket waits for that
		// window's reset too before it probes again.
		b.Complete(limits("h", 5, 3, 500*time.Millisecond))
		if p := tryAcquire(t, l, r); p != nil {
			t.Fatal("a request admitted before the reset of the window the straggler was counted in")
		}
		time.Sleep(500 * time.Millisecond)
		p := tryAcquire(t, l, r)
		if p == nil {
			t.Fatal("no request admitted after the reset once nothing was in flight")
		}
		if q := tryAcquire(t, l, r); q != nil {
			t.Fatal("a second request admitted while the probe of the new window is in flight")
		}
		p.Complete(limits("h", 5, 2, 500*time.Millisecond))
		for i := range 2 {
			if q := tryAcquire(t, l, r); q == nil {
				t.Fatalf("request %d of 2 not admitted after the probe said Remaining 2", i+1)
			}
		}
	})
}

// An unlimited route overlaps its requests, as the reference bucket does,
// until a response brings headers again.
func TestRateLimiterUnlimitedRoute(t *testing.T) {
	for _, o := range []fast.RateLimiterOptions{{}, {InFlight: true}} {
		t.Run("InFlight="+strconv.FormatBool(o.InFlight), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := newFastLimiter(t, o, protocols.RateLimiterParams{GlobalLimit: -1})
				r := channelRoute(t, 1)
				tryAcquire(t, l, r).Complete(protocols.RateLimitInfo{Status: 204})
				var ps []protocols.Permit
				for range 10 {
					p := tryAcquire(t, l, r)
					if p == nil {
						t.Fatal("an unlimited route made a request wait")
					}
					ps = append(ps, p)
				}
				ps[0].Complete(limits("h", 5, 0, time.Second)) // headers again
				if p := tryAcquire(t, l, r); p != nil {
					t.Error("a request admitted after Remaining 0")
				}
				for _, p := range ps[1:] {
					p.Cancel()
				}
				time.Sleep(1100 * time.Millisecond)
				if p := tryAcquire(t, l, r); p == nil {
					t.Error("no request admitted after the reset")
				}
			})
		})
	}
}

// p.NewBucket is ignored: the buckets are built in.
func TestRateLimiterIgnoresNewBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		called := false
		l := newFastLimiter(t, fast.RateLimiterOptions{}, protocols.RateLimiterParams{NewBucket: func() protocols.Bucket {
			called = true
			return nil
		}})
		tryAcquire(t, l, channelRoute(t, 1)).Complete(limits("h", 5, 4, time.Second))
		if called {
			t.Error("NewBucket was called")
		}
	})
}

// The global tokens come back one second after Complete, and at once
// after Cancel; a global 429 pauses every non-exempt route.
func TestRateLimiterGlobalTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newFastLimiter(t, fast.RateLimiterOptions{}, protocols.RateLimiterParams{GlobalLimit: 3})
		var ps []protocols.Permit
		for i := range 3 {
			ps = append(ps, tryAcquire(t, l, channelRoute(t, i)))
		}
		if tryAcquire(t, l, channelRoute(t, 10)) != nil {
			t.Fatal("a fourth request admitted with a global limit of 3")
		}
		ps[0].Cancel()
		p := tryAcquire(t, l, channelRoute(t, 11))
		if p == nil {
			t.Fatal("no token after a Cancel")
		}
		ps[1].Complete(protocols.RateLimitInfo{Status: 200})
		if tryAcquire(t, l, channelRoute(t, 12)) != nil {
			t.Fatal("a token came back at once after Complete")
		}
		time.Sleep(time.Second)
		q := tryAcquire(t, l, channelRoute(t, 13))
		if q == nil {
			t.Fatal("no token one second after Complete")
		}
		q.Complete(protocols.RateLimitInfo{Status: 429, Scope: protocols.ScopeGlobal, RetryAfter: 5 * time.Second})
		p.Cancel()
		ps[2].Cancel()
		time.Sleep(2 * time.Second)
		if tryAcquire(t, l, channelRoute(t, 14)) != nil {
			t.Fatal("a request admitted during a global pause")
		}
		time.Sleep(3 * time.Second)
		if tryAcquire(t, l, channelRoute(t, 15)) == nil {
			t.Fatal("no request admitted after the global pause")
		}
	})
}
