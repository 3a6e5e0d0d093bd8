package reference_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	reference "github.com/cordkit/cordkit/impl/default"
	"github.com/cordkit/cordkit/protocols"
)

// newLimiter builds a limiter for a test and closes it at the end.
func newLimiter(t *testing.T, global int) protocols.RateLimiter {
	t.Helper()
	l, err := reference.NewRateLimiter(protocols.RateLimiterParams{GlobalLimit: global})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// mustAcquire acquires r at once or fails t.
func mustAcquire(t *testing.T, l protocols.RateLimiter, r protocols.Route) protocols.Permit {
	t.Helper()
	p, err := l.Acquire(t.Context(), r)
	if err != nil {
		t.Fatalf("Acquire(%s): %v", r, err)
	}
	return p
}

// blocked reports whether acquiring r has to wait; any permit it gets is
// cancelled.
func blocked(t *testing.T, l protocols.RateLimiter, r protocols.Route) bool {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	a := goAcquireRoute(ctx, l, r)
	synctest.Wait()
	cancel()
	<-a.done
	if a.err == nil {
		a.permit.Cancel()
		return false
	}
	if !errors.Is(a.err, context.Canceled) {
		t.Fatalf("Acquire(%s): %v", r, a.err)
	}
	return true
}

func TestRateLimiterSharedHashSharesOneBucketPerResource(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, -1)
		send := func(ch string) protocols.Route {
			return route(t, "POST", "/channels/{channel_id}/messages", ch)
		}
		edit := func(ch string) protocols.Route {
			return route(t, "PATCH", "/channels/{channel_id}/messages/{message_id}", ch, "9")
		}
		// Teach both endpoints the same hash.
		mustAcquire(t, l, send("1")).Complete(limits("H", 5, 4, time.Minute))
		mustAcquire(t, l, edit("1")).Complete(limits("H", 5, 3, time.Minute))

		p := mustAcquire(t, l, send("1"))
		if !blocked(t, l, edit("1")) {
			t.Error("routes with the same hash and channel do not share a bucket")
		}
		if blocked(t, l, edit("2")) {
			t.Error("routes with the same hash on different channels share a bucket")
		}
		p.Cancel()
		if blocked(t, l, edit("1")) {
			t.Error("shared bucket still busy after Cancel")
		}
	})
}

func TestRateLimiterDistinctHashesAreIndependent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, -1)
		a := route(t, "GET", "/channels/{channel_id}/messages", "1")
		b := route(t, "POST", "/channels/{channel_id}/messages", "1")
		mustAcquire(t, l, a).Complete(limits("A", 5, 0, time.Minute))
		mustAcquire(t, l, b).Complete(limits("B", 5, 4, time.Minute))
		if !blocked(t, l, a) {
			t.Error("exhausted bucket A admitted")
		}
		if blocked(t, l, b) {
			t.Error("bucket B waits for bucket A")
		}
	})
}

func TestRateLimiterLearningAHashMovesWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, -1)
		r := route(t, "POST", "/channels/{channel_id}/messages", "1")
		first := mustAcquire(t, l, r) // blind, in the temporary bucket
		start := time.Now()
		admitted := goAcquireAll(t, l, r, 3, func() protocols.RateLimitInfo {
			return limits("H", 3, 2, time.Minute)
		})
		// The response names the bucket and leaves it exhausted for 2s.
		first.Complete(limits("H", 3, 0, 2*time.Second))
		for i, at := range admitted() {
			if got := at.Sub(start); got < 2*time.Second {
				t.Errorf("waiter %d admitted after %v: it went blind into an exhausted bucket instead of waiting for the reset", i, got)
			}
		}
		// The requests are in the hash bucket: another endpoint with the
		// same hash shares it.
		other := route(t, "DELETE", "/channels/{channel_id}/messages/{message_id}", "1", "5")
		mustAcquire(t, l, other).Complete(limits("H", 3, 2, time.Minute))
		po := mustAcquire(t, l, other)
		if !blocked(t, l, r) {
			t.Error("route not in the shared hash bucket after the move")
		}
		po.Cancel()
	})
}

func TestRateLimiterHashChangeMovesWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, -1)
		r := route(t, "DELETE", "/channels/{channel_id}/messages/{message_id}", "1", "5")
		mustAcquire(t, l, r).Complete(limits("H1", 5, 4, time.Minute))
		p := mustAcquire(t, l, r) // in bucket H1
		start := time.Now()
		admitted := goAcquireAll(t, l, r, 3, func() protocols.RateLimitInfo {
			return limits("H2", 30, 29, time.Minute)
		})
		// Discord now answers with another hash, exhausted for 5s.
		p.Complete(limits("H2", 30, 0, 5*time.Second))
		for i, at := range admitted() {
			if got := at.Sub(start); got < 5*time.Second {
				t.Errorf("waiter %d admitted after %v, want it to wait for H2's reset (5s)", i, got)
			}
		}
	})
}

// goAcquireAll starts n acquisitions of r that complete their permits with
// info(), waits until they are all queued, and returns a function that
// waits for them and returns their admission times in order.
func goAcquireAll(t *testing.T, l protocols.RateLimiter, r protocols.Route, n int, info func() protocols.RateLimitInfo) func() []time.Time {
	times := make(chan time.Time, n)
	for range n {
		go func() {
			p, err := l.Acquire(t.Context(), r)
			if err != nil {
				t.Error(err)
				times <- time.Time{}
				return
			}
			times <- time.Now()
			p.Complete(info())
		}()
	}
	synctest.Wait()
	return func() []time.Time {
		var out []time.Time
		for range n {
			out = append(out, <-times)
		}
		return out
	}
}

func TestRateLimiterHashChangeKeepsSharedOldBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, -1)
		a := route(t, "DELETE", "/channels/{channel_id}/messages/{message_id}", "1", "5")
		b := route(t, "POST", "/channels/{channel_id}/messages", "1")
		mustAcquire(t, l, a).Complete(limits("H1", 5, 4, time.Minute))
		mustAcquire(t, l, b).Complete(limits("H1", 5, 3, time.Minute))

		holder := mustAcquire(t, l, b) // occupies H1 channels/1
		waiterA := goAcquireRoute(t.Context(), l, a)
		synctest.Wait()
		// a is re-mapped to H2 by its own later response (simulated by
		// another permit of a on another channel).
		mustAcquire(t, l, route(t, "DELETE", "/channels/{channel_id}/messages/{message_id}", "2", "5")).
			Complete(limits("H2", 5, 4, time.Minute))
		synctest.Wait()
		// H1 is still b's bucket: the waiter for a stays until admitted,
		// then moves to H2 by itself.
		if waiterA.finished() {
			t.Fatalf("waiter left H1 early: %v", waiterA.err)
		}
		if !blocked(t, l, b) {
			t.Error("the old hash bucket, still used by another endpoint, was replaced")
		}
		holder.Cancel()
		pa := waiterA.wait(t)
		// a now lives in H2 channels/1: b is free to go while a is in flight.
		if blocked(t, l, b) {
			t.Error("a's permit is still in H1 after the hash change")
		}
		pa.Cancel()
	})
}

func TestRateLimiterKnownTemplateNewResourceGoesToHashBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, -1)
		send := func(ch string) protocols.Route {
			return route(t, "POST", "/channels/{channel_id}/messages", ch)
		}
		edit := func(ch string) protocols.Route {
			return route(t, "PATCH", "/channels/{channel_id}/messages/{message_id}", ch, "9")
		}
		mustAcquire(t, l, send("1")).Complete(limits("H", 5, 4, time.Minute))
		mustAcquire(t, l, edit("1")).Complete(limits("H", 5, 3, time.Minute))
		// Channel 2 was never seen: both endpoints must still start in
		// the one hash bucket of channel 2.
		p := mustAcquire(t, l, send("2"))
		if !blocked(t, l, edit("2")) {
			t.Error("a new resource of a known template did not start in its hash bucket")
		}
		p.Cancel()
	})
}

func TestRateLimiterUserScopePausesOnlyItsBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, 50)
		a := route(t, "POST", "/channels/{channel_id}/messages", "1")
		b := route(t, "POST", "/channels/{channel_id}/messages", "2")
		info := limited(protocols.ScopeUser, 3*time.Second)
		info.Bucket = "H"
		start := time.Now()
		mustAcquire(t, l, a).Complete(info)
		if blocked(t, l, b) {
			t.Error("a user 429 on channel 1 paused channel 2")
		}
		p := mustAcquire(t, l, a)
		if got := time.Since(start); got != 3*time.Second {
			t.Errorf("paused bucket admitted after %v, want 3s", got)
		}
		p.Cancel()
	})
}

func TestRateLimiterGlobalScopePausesEveryNonExemptRoute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, 50)
		a := route(t, "POST", "/channels/{channel_id}/messages", "1")
		b := route(t, "GET", "/guilds/{guild_id}", "2")
		exempt := route(t, "POST", "/interactions/{interaction_id}/{interaction_token}/callback", "1", "tok")
		start := time.Now()
		mustAcquire(t, l, a).Complete(limited(protocols.ScopeGlobal, 2*time.Second))
		if p := mustAcquire(t, l, exempt); time.Since(start) != 0 {
			t.Error("a global 429 paused an exempt route")
		} else {
			p.Cancel()
		}
		p := mustAcquire(t, l, b)
		if got := time.Since(start); got != 2*time.Second {
			t.Errorf("other route admitted after %v, want 2s", got)
		}
		p.Cancel()
	})
}

func TestRateLimiterCloudflarePausesEveryRoute(t *testing.T) {
	tests := []struct {
		name       string
		opts       reference.RateLimiterOptions
		retryAfter time.Duration
		want       time.Duration
	}{
		{"RetryAfter", reference.RateLimiterOptions{}, 5 * time.Second, 5 * time.Second},
		{"DefaultPause", reference.RateLimiterOptions{}, 0, reference.DefaultCloudflarePause},
		{"ConfiguredPause", reference.RateLimiterOptions{CloudflarePause: time.Hour}, 0, time.Hour},
		{"NoPause", reference.RateLimiterOptions{CloudflarePause: -1}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l, err := tt.opts.New(protocols.RateLimiterParams{GlobalLimit: 50})
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				a := route(t, "POST", "/channels/{channel_id}/messages", "1")
				exempt := route(t, "POST", "/interactions/{interaction_id}/{interaction_token}/callback", "1", "tok")
				start := time.Now()
				mustAcquire(t, l, a).Complete(limited(protocols.ScopeCloudflare, tt.retryAfter))
				for _, r := range []protocols.Route{exempt, route(t, "GET", "/guilds/{guild_id}", "2")} {
					p := mustAcquire(t, l, r)
					if got := time.Since(start); got != tt.want {
						t.Errorf("%s admitted after %v, want %v", r, got, tt.want)
					}
					p.Cancel()
				}
			})
		})
	}
}

func TestRateLimiterGlobalLimitPerSecond(t *testing.T) {
	// Requests on distinct, unlimited routes, with random latency split
	// before and after the server sees them. No one-second window of
	// server times may hold more than the limit.
	const limit, requests = 5, 60
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, limit)
		var mu sync.Mutex
		var seen []time.Time
		var wg sync.WaitGroup
		for i := range requests {
			wg.Go(func() {
				r := route(t, "GET", "/channels/{channel_id}", fmt.Sprint(i))
				p, err := l.Acquire(t.Context(), r)
				if err != nil {
					t.Error(err)
					return
				}
				time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
				mu.Lock()
				seen = append(seen, time.Now())
				mu.Unlock()
				time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
				p.Complete(protocols.RateLimitInfo{Status: 200})
			})
		}
		wg.Wait()
		sort.Slice(seen, func(i, j int) bool { return seen[i].Before(seen[j]) })
		for i := range seen {
			n := 0
			for j := i; j < len(seen) && seen[j].Sub(seen[i]) < time.Second; j++ {
				n++
			}
			if n > limit {
				t.Fatalf("%d requests within one second from %v, want at most %d", n, seen[i], limit)
			}
		}
	})
}

func TestRateLimiterGlobalTokens(t *testing.T) {
	exempt := func(t *testing.T) protocols.Route {
		return route(t, "POST", "/interactions/{interaction_id}/{interaction_token}/callback", "1", "tok")
	}
	other := func(t *testing.T) protocols.Route { return route(t, "GET", "/guilds/{guild_id}", "2") }
	tests := []struct {
		name   string
		finish func(p protocols.Permit)
		next   func(t *testing.T) protocols.Route
		want   time.Duration // when the next request is admitted
	}{
		{"CompleteReturnsTokenOneSecondLater", func(p protocols.Permit) { p.Complete(protocols.RateLimitInfo{Status: 200}) }, other, time.Second},
		{"CancelReturnsTokenAtOnce", func(p protocols.Permit) { p.Cancel() }, other, 0},
		{"ExemptNeverWaits", nil, exempt, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := newLimiter(t, 1)
				p := mustAcquire(t, l, route(t, "GET", "/channels/{channel_id}", "1"))
				start := time.Now()
				if tt.finish != nil {
					tt.finish(p)
				}
				next := mustAcquire(t, l, tt.next(t))
				if got := time.Since(start); got != tt.want {
					t.Errorf("next request admitted after %v, want %v", got, tt.want)
				}
				next.Cancel()
				if tt.finish == nil {
					p.Cancel()
				}
			})
		})
	}
}

func TestRateLimiterDisabledGlobalLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, -1)
		for i := range 200 {
			mustAcquire(t, l, route(t, "GET", "/channels/{channel_id}", fmt.Sprint(i))).
				Complete(protocols.RateLimitInfo{Status: 200})
		}
		if got := time.Since(time.Unix(946684800, 0)); got != 0 { // synctest's epoch
			t.Errorf("200 requests took %v with the global limit disabled", got)
		}
	})
}

func TestRateLimiterBucketWaitHoldsNoGlobalToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, 1)
		a := route(t, "POST", "/channels/{channel_id}/messages", "1")
		info := limited(protocols.ScopeUser, 10*time.Second)
		info.Bucket = "H"
		mustAcquire(t, l, a).Complete(info)
		time.Sleep(time.Second) // the first request's token is back
		waiting := goAcquireRoute(t.Context(), l, a)
		synctest.Wait()
		// a waits for its bucket for 9 more seconds; b must not wait for a.
		if blocked(t, l, route(t, "GET", "/guilds/{guild_id}", "2")) {
			t.Error("a request waiting on its bucket holds the only global token")
		}
		waiting.wait(t).Cancel()
	})
}

func TestRateLimiterCancelReleasesBucketAndToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, 1)
		a := route(t, "GET", "/channels/{channel_id}", "1")
		p := mustAcquire(t, l, a)
		same := goAcquireRoute(t.Context(), l, a)
		synctest.Wait()
		start := time.Now()
		p.Cancel()
		p.Cancel() // idempotent
		p.Complete(protocols.RateLimitInfo{Status: 200})
		same.wait(t).Cancel()
		if got := same.at.Sub(start); got != 0 {
			t.Errorf("waiter admitted after %v, want at once", got)
		}
	})
}

func TestRateLimiterAcquireHonorsContext(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, l protocols.RateLimiter) // makes route r wait
		want  error
	}{
		{"BucketWaitCanceled", func(t *testing.T, l protocols.RateLimiter) {
			mustAcquire(t, l, route(t, "GET", "/channels/{channel_id}", "1")) // held
		}, context.Canceled},
		{"GlobalWaitDeadline", func(t *testing.T, l protocols.RateLimiter) {
			mustAcquire(t, l, route(t, "GET", "/guilds/{guild_id}", "7")) // holds the only token
		}, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := newLimiter(t, 1)
				r := route(t, "GET", "/channels/{channel_id}", "1")
				tt.setup(t, l)
				var ctx context.Context
				var cancel context.CancelFunc
				if tt.want == context.Canceled {
					ctx, cancel = context.WithCancel(t.Context())
					time.AfterFunc(time.Second, cancel)
				} else {
					ctx, cancel = context.WithTimeout(t.Context(), time.Second)
				}
				defer cancel()
				_, err := l.Acquire(ctx, r)
				if !errors.Is(err, tt.want) {
					t.Fatalf("Acquire: got %v, want an error wrapping %v", err, tt.want)
				}
			})
		})
	}
}

func TestRateLimiterFailedGlobalWaitFreesBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, 1)
		held := mustAcquire(t, l, route(t, "GET", "/guilds/{guild_id}", "7")) // the only token
		r := route(t, "GET", "/channels/{channel_id}", "1")
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if _, err := l.Acquire(ctx, r); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Acquire: %v", err)
		}
		held.Cancel()
		// Nothing was kept by the failed Acquire: r's bucket admits.
		if blocked(t, l, r) {
			t.Error("a failed Acquire kept its bucket slot")
		}
	})
}

func TestRateLimiterCloseWakesWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, _ := reference.NewRateLimiter(protocols.RateLimiterParams{GlobalLimit: 1})
		a := route(t, "GET", "/channels/{channel_id}", "1")
		held := mustAcquire(t, l, a)
		bucketWaiter := goAcquireRoute(t.Context(), l, a)
		globalWaiter := goAcquireRoute(t.Context(), l, route(t, "GET", "/guilds/{guild_id}", "1"))
		synctest.Wait()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		for _, w := range []*acquisition{bucketWaiter, globalWaiter} {
			<-w.done
			if !errors.Is(w.err, protocols.ErrClosed) {
				t.Errorf("waiter: got %v, want ErrClosed", w.err)
			}
		}
		if _, err := l.Acquire(t.Context(), a); !errors.Is(err, protocols.ErrClosed) {
			t.Errorf("Acquire after Close: got %v, want ErrClosed", err)
		}
		held.Complete(limits("H", 1, 0, time.Second)) // harmless after Close
	})
}

// countingBuckets counts the buckets built and closed.
type countingBuckets struct{ built, closed atomic.Int64 }

func (c *countingBuckets) New() protocols.Bucket {
	c.built.Add(1)
	return &countedBucket{Bucket: reference.NewBucket(), c: c}
}

type countedBucket struct {
	protocols.Bucket
	c    *countingBuckets
	once sync.Once
}

func (b *countedBucket) Close() error {
	b.once.Do(func() { b.c.closed.Add(1) })
	return b.Bucket.Close()
}

func TestRateLimiterEvictsIdleBuckets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c countingBuckets
		l, _ := reference.RateLimiterOptions{IdleTimeout: time.Minute}.New(
			protocols.RateLimiterParams{NewBucket: c.New})
		defer l.Close()
		for i := range 100 {
			mustAcquire(t, l, route(t, "GET", "/channels/{channel_id}", fmt.Sprint(i))).
				Complete(protocols.RateLimitInfo{Status: 200})
		}
		// One bucket stays busy, one has a reset far ahead.
		busy := mustAcquire(t, l, route(t, "GET", "/guilds/{guild_id}", "1"))
		mustAcquire(t, l, route(t, "GET", "/guilds/{guild_id}/roles", "1")).Complete(limits("R", 1, 0, time.Hour))
		// Learning hash R retired the roles route's temporary bucket.
		if got := c.closed.Load(); got != 1 {
			t.Fatalf("%d buckets closed before any was idle, want 1", got)
		}
		time.Sleep(2 * time.Minute)
		mustAcquire(t, l, route(t, "GET", "/users/@me")).Cancel() // eviction runs in Acquire
		if got := c.closed.Load() - 1; got != 100 {
			t.Errorf("%d buckets evicted, want the 100 idle ones", got)
		}
		busy.Cancel()
		time.Sleep(2 * time.Hour)
		mustAcquire(t, l, route(t, "GET", "/users/@me")).Cancel()
		if got, want := c.closed.Load(), c.built.Load()-1; got != want {
			t.Errorf("%d of %d buckets closed after 2h, want all but /users/@me's", got, c.built.Load())
		}
	})
}

func TestRateLimiterConcurrentSafe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, 20)
		var wg sync.WaitGroup
		for i := range 200 {
			wg.Go(func() {
				ch := fmt.Sprint(i % 7)
				var r protocols.Route
				switch i % 3 {
				case 0:
					r = route(t, "POST", "/channels/{channel_id}/messages", ch)
				case 1:
					r = route(t, "PATCH", "/channels/{channel_id}/messages/{message_id}", ch, "1")
				default:
					r = route(t, "POST", "/interactions/{interaction_id}/{interaction_token}/callback", ch, "t")
				}
				ctx, cancel := context.WithTimeout(t.Context(), time.Duration(1+i%5)*time.Second)
				defer cancel()
				p, err := l.Acquire(ctx, r)
				if err != nil {
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Error(err)
					}
					return
				}
				time.Sleep(time.Duration(rand.IntN(100)) * time.Millisecond)
				switch i % 4 {
				case 0:
					p.Cancel()
				case 1:
					p.Complete(limits(fmt.Sprint("H", i%2), 5, rand.IntN(5), time.Second))
				case 2:
					p.Complete(protocols.RateLimitInfo{Status: 429, Scope: protocols.ScopeUser, Bucket: "H0", RetryAfter: 100 * time.Millisecond})
				default:
					p.Complete(protocols.RateLimitInfo{Status: 200})
				}
			})
		}
		wg.Wait()
	})
}

func TestRateLimiterAnotherEndpointsFirstResponseTeachesSharedBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, -1)
		send := route(t, "POST", "/channels/{channel_id}/messages", "1")
		del := route(t, "DELETE", "/channels/{channel_id}/messages/{message_id}", "1", "5")
		mustAcquire(t, l, send).Complete(limits("S", 2, 1, 10*time.Second))
		// DELETE is not mapped yet: it goes blind through its own
		// temporary bucket and spends the shared bucket's last request.
		start := time.Now()
		mustAcquire(t, l, del).Complete(limits("S", 2, 0, 10*time.Second))
		p := mustAcquire(t, l, send)
		if got := time.Since(start); got != 10*time.Second {
			t.Errorf("shared bucket admitted after %v, want 10s: DELETE's response said Remaining 0", got)
		}
		p.Cancel()
	})
}

func TestRateLimiterSeedsBucketsWithoutUpdater(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c countingBuckets // its buckets do not implement BucketUpdater
		if _, ok := c.New().(protocols.BucketUpdater); ok {
			t.Fatal("test bucket implements BucketUpdater")
		}
		if _, ok := reference.NewBucket().(protocols.BucketUpdater); !ok {
			t.Error("the reference bucket does not implement BucketUpdater")
		}
		l, _ := reference.NewRateLimiter(protocols.RateLimiterParams{NewBucket: c.New})
		defer l.Close()
		r := route(t, "POST", "/channels/{channel_id}/messages", "1")
		start := time.Now()
		mustAcquire(t, l, r).Complete(limits("H", 5, 0, 3*time.Second))
		p := mustAcquire(t, l, r)
		if got := time.Since(start); got != 3*time.Second {
			t.Errorf("hash bucket admitted after %v, want 3s: it must be created knowing Remaining 0", got)
		}
		p.Cancel()
	})
}
