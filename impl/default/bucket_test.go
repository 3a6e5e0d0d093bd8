package reference_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	reference "github.com/cordkit/cordkit/impl/default"
	"github.com/cordkit/cordkit/protocols"
)

func TestBucketUnknownLimitAdmitsOneAtATime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := reference.NewBucket()
		defer b.Close()
		p1, err := b.Acquire(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		a2 := goAcquire(t.Context(), b)
		synctest.Wait()
		if a2.finished() {
			t.Fatal("second Acquire returned while the first permit is in flight on an unknown bucket")
		}
		p1.Complete(limits("h", 5, 4, time.Second))
		a2.wait(t).Cancel()
	})
}

func TestBucketAdmission(t *testing.T) {
	// Each case completes a first permit with info (after latency), then
	// acquires n permits one after another, finishing each with Cancel, and
	// checks when each was admitted, counted from the first Complete.
	tests := []struct {
		name    string
		info    protocols.RateLimitInfo
		latency time.Duration // between the first Acquire and its Complete
		want    []time.Duration
	}{
		{"RemainingZeroWaitsForReset", limits("h", 5, 0, 2*time.Second), 0,
			[]time.Duration{2 * time.Second}},
		{"ResetCountedFromArrival", limits("h", 5, 0, 2*time.Second), 700 * time.Millisecond,
			[]time.Duration{2 * time.Second}},
		{"RemainingCountsLocally", limits("h", 3, 2, 10*time.Second), 0,
			[]time.Duration{0, 0, 10 * time.Second, 10 * time.Second}},
		{"UserScopePausesForRetryAfter", protocols.RateLimitInfo{Status: 429, Scope: protocols.ScopeUser,
			RetryAfter: 3 * time.Second, HasLimit: true, Limit: 5, Remaining: 0, ResetAfter: 3 * time.Second, Bucket: "h"}, 0,
			[]time.Duration{3 * time.Second}},
		{"SharedScopePausesEvenWithRemaining", protocols.RateLimitInfo{Status: 429, Scope: protocols.ScopeShared,
			RetryAfter: 7 * time.Second, HasLimit: true, Limit: 10, Remaining: 7, ResetAfter: time.Second, Bucket: "h"}, 0,
			[]time.Duration{7 * time.Second, 7 * time.Second}},
		{"GlobalScopeDoesNotPauseBucket", limited(protocols.ScopeGlobal, 5*time.Second), 0,
			[]time.Duration{0}},
		{"CloudflareScopeDoesNotPauseBucket", limited(protocols.ScopeCloudflare, 5*time.Second), 0,
			[]time.Duration{0}},
		{"ResetInThePastAdmitsAtOnce", limits("h", 5, 0, 0), 0,
			[]time.Duration{0}},
		{"NoHeadersOn5xxStaysBlind", protocols.RateLimitInfo{Status: 502}, 0,
			[]time.Duration{0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := reference.NewBucket()
				defer b.Close()
				p, err := b.Acquire(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				time.Sleep(tt.latency)
				start := time.Now()
				p.Complete(tt.info)
				for i, want := range tt.want {
					p, err := b.Acquire(t.Context())
					if err != nil {
						t.Fatal(err)
					}
					if got := time.Since(start); got != want {
						t.Errorf("permit %d admitted after %v, want %v", i+1, got, want)
					}
					p.Cancel()
				}
			})
		})
	}
}

func TestBucketBlindAfterReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := reference.NewBucket()
		defer b.Close()
		p, _ := b.Acquire(t.Context())
		p.Complete(limits("h", 5, 4, time.Second))
		time.Sleep(2 * time.Second) // the window has reset
		p1, err := b.Acquire(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		a2 := goAcquire(t.Context(), b)
		synctest.Wait()
		if a2.finished() {
			t.Fatal("after the reset, a second request went out before the first one's response")
		}
		p1.Complete(limits("h", 5, 4, time.Second))
		a2.wait(t).Cancel()
	})
}

func TestBucketOneInFlightWithKnownLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := reference.NewBucket()
		defer b.Close()
		p, _ := b.Acquire(t.Context())
		p.Complete(limits("h", 5, 4, time.Minute))
		p1, _ := b.Acquire(t.Context())
		a2 := goAcquire(t.Context(), b)
		synctest.Wait()
		if a2.finished() {
			t.Fatal("two requests in flight at once in the reference bucket")
		}
		p1.Cancel()
		a2.wait(t).Cancel()
	})
}

func TestBucketUnlimitedAdmitsConcurrently(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := reference.NewBucket()
		defer b.Close()
		p, _ := b.Acquire(t.Context())
		p.Complete(protocols.RateLimitInfo{Status: 200}) // no rate-limit headers
		var held []protocols.Permit
		for range 10 {
			p, err := b.Acquire(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, p)
		}
		// A response with headers makes it limited again: one at a time,
		// once the ones in flight are done.
		held[0].Complete(limits("h", 5, 4, time.Minute))
		a := goAcquire(t.Context(), b)
		synctest.Wait()
		if a.finished() {
			t.Fatal("limited bucket admitted while 9 permits are in flight")
		}
		for _, p := range held[1:] {
			p.Cancel()
		}
		a.wait(t).Cancel()
	})
}

func TestBucketCancelReleasesSlotButKeepsRemainingSpent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := reference.NewBucket()
		defer b.Close()
		p, _ := b.Acquire(t.Context())
		start := time.Now()
		p.Complete(limits("h", 2, 1, 5*time.Second))
		p1, _ := b.Acquire(t.Context()) // takes the last remaining
		a := goAcquire(t.Context(), b)
		synctest.Wait()
		if a.finished() {
			t.Fatal("admitted while a permit is in flight")
		}
		p1.Cancel()
		a.wait(t).Cancel()
		if got := a.at.Sub(start); got != 5*time.Second {
			t.Errorf("admitted after %v, want 5s: a cancelled request keeps its remaining spent", got)
		}
	})
}

func TestBucketPermitIsIdempotent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := reference.NewBucket()
		defer b.Close()
		p, _ := b.Acquire(t.Context())
		p.Cancel()
		p.Cancel()
		p.Complete(protocols.RateLimitInfo{Status: 200})
		p1, _ := b.Acquire(t.Context())
		a := goAcquire(t.Context(), b)
		synctest.Wait()
		if a.finished() {
			t.Fatal("finishing a permit twice released two slots")
		}
		p1.Cancel()
		a.wait(t).Cancel()
	})
}

func TestBucketFIFO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := reference.NewBucket()
		defer b.Close()
		p, _ := b.Acquire(t.Context())
		var order []int
		results := make(chan int)
		for i := range 5 {
			go func() {
				p, err := b.Acquire(t.Context())
				if err != nil {
					t.Error(err)
					return
				}
				results <- i
				p.Cancel()
			}()
			synctest.Wait() // the goroutines queue in order
		}
		p.Cancel()
		for range 5 {
			order = append(order, <-results)
		}
		for i, got := range order {
			if got != i {
				t.Fatalf("admission order %v, want arrival order", order)
			}
		}
	})
}

func TestBucketAcquireHonorsContext(t *testing.T) {
	tests := []struct {
		name string
		ctx  func(t *testing.T) context.Context
		want error
	}{
		{"Canceled", func(t *testing.T) context.Context {
			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(time.Second, cancel)
			return ctx
		}, context.Canceled},
		{"DeadlineExceeded", func(t *testing.T) context.Context {
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			t.Cleanup(cancel)
			return ctx
		}, context.DeadlineExceeded},
		{"AlreadyCanceled", func(t *testing.T) context.Context {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			return ctx
		}, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := reference.NewBucket()
				defer b.Close()
				held, _ := b.Acquire(t.Context())
				start := time.Now()
				_, err := b.Acquire(tt.ctx(t))
				if !errors.Is(err, tt.want) {
					t.Fatalf("Acquire: got %v, want an error wrapping %v", err, tt.want)
				}
				if d := time.Since(start); d > time.Second {
					t.Errorf("Acquire returned %v after start, want at most 1s", d)
				}
				// The failed waiter left the queue: the next one gets the slot.
				a := goAcquire(t.Context(), b)
				held.Cancel()
				a.wait(t).Cancel()
			})
		})
	}
}

func TestBucketCanceledHeadPassesTheTurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := reference.NewBucket()
		defer b.Close()
		p, _ := b.Acquire(t.Context())
		ctx, cancel := context.WithCancel(t.Context())
		head := goAcquire(ctx, b)
		synctest.Wait()
		next := goAcquire(t.Context(), b)
		synctest.Wait()
		p.Cancel() // signals head...
		cancel()   // ...which gives up at the same time
		<-head.done
		if head.err == nil {
			head.permit.Cancel() // head saw the signal before the cancellation
		}
		next.wait(t).Cancel() // either way the turn must reach next
	})
}

func TestBucketCloseWakesWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := reference.NewBucket()
		p, _ := b.Acquire(t.Context())
		var waiters []*acquisition
		for range 3 {
			waiters = append(waiters, goAcquire(t.Context(), b))
		}
		synctest.Wait()
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		for _, a := range waiters {
			<-a.done
			if !errors.Is(a.err, protocols.ErrClosed) {
				t.Errorf("waiter: got %v, want ErrClosed", a.err)
			}
		}
		if _, err := b.Acquire(t.Context()); !errors.Is(err, protocols.ErrClosed) {
			t.Errorf("Acquire after Close: got %v, want ErrClosed", err)
		}
		p.Complete(limits("h", 1, 0, time.Second)) // finishing after Close is harmless
	})
}

func TestBucketConcurrentSafe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := reference.NewBucket()
		defer b.Close()
		inFlight := 0
		done := make(chan struct{})
		for i := range 50 {
			go func() {
				defer func() { done <- struct{}{} }()
				p, err := b.Acquire(t.Context())
				if err != nil {
					t.Error(err)
					return
				}
				inFlight++ // racy if two were in flight: -race reports it
				if inFlight != 1 {
					t.Errorf("%d in flight", inFlight)
				}
				time.Sleep(10 * time.Millisecond)
				inFlight--
				if i%3 == 0 {
					p.Cancel()
				} else {
					p.Complete(limits("h", 5, 4-i%5, 100*time.Millisecond))
				}
			}()
		}
		for range 50 {
			<-done
		}
	})
}
