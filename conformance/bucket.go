package conformance

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cordkit/cordkit/protocols"
)

// lateness is how long after the instant the rules allow an admission may
// come and still count as prompt: an implementation may keep a small
// safety margin, but not the 250 ms that some libraries add, nor a whole
// second.
const lateness = 100 * time.Millisecond

// Rule sentences quoted from the doc comments of package protocols.
const (
	ruleUnknownOneAtATime = "A bucket whose limit is not known yet admits one request at a time."
	ruleZeroRemaining     = "A bucket admits no request while Remaining from the latest response is zero and its reset has not passed."
	ruleResetFromArrival  = "ResetAfter is counted from the moment the response arrived."
	ruleBucket429         = "A 429 of user or shared scope pauses the bucket for RetryAfter."
	ruleCancelSlot        = "Cancel releases the permit's slot."
	ruleBucketCtx         = "Acquire returns promptly with an error wrapping ctx.Err() when ctx ends."
	ruleFractional        = "ResetAfter is X-RateLimit-Reset-After, to the millisecond."
	rulePermitOnce        = "Calls after the first are ignored."
	ruleNothingHeld       = "Nothing is held when Acquire returns an error."
	ruleBucketCloseWakes  = "Close wakes every waiter with [ErrClosed]."
	ruleBucketAcquire     = "Acquire blocks until the bucket admits one request, ctx ends, or the bucket is closed (an error wrapping [ErrClosed])."
	ruleBucketIdempotent  = "Close is idempotent."
	ruleBucketConcurrent  = "A Bucket must be safe for concurrent use."
	ruleResetAdmits       = "When its reset passes, a bucket admits waiting requests again without another response."
	ruleInFlight          = "A bucket admits at most Remaining requests before its reset passes, counting those still in flight."
	ruleUpdate            = "Update applies a response to the bucket as [Permit.Complete] does, but without a permit, so no slot is released."
)

// TestBucket tests a [protocols.Bucket] implementation. newBucket is called
// once or more per subtest, inside the subtest's synctest bubble, and must
// return a new, empty bucket; the suite closes it when the subtest ends.
//
// Every subtest runs in a testing/synctest bubble, so the bucket must wait
// with channels and timers from package time (see the package doc).
func TestBucket(t *testing.T, newBucket func(t *testing.T) protocols.Bucket) {
	t.Helper()
	Options{}.TestBucket(t, newBucket)
}

// TestBucket is [TestBucket] with options.
func (o Options) TestBucket(t *testing.T, newBucket func(t *testing.T) protocols.Bucket) {
	t.Helper()
	runRules(t, o, "TestBucket", bucketRules, func(t *testing.T) func() protocols.Bucket {
		return func() protocols.Bucket {
			t.Helper()
			b := newBucket(t)
			if b == nil {
				t.Fatal("conformance: newBucket returned nil")
			}
			t.Cleanup(func() { _ = b.Close() })
			return b
		}
	})
}

// acquireBucket starts b.Acquire in its own goroutine.
func acquireBucket(t *caseT, b protocols.Bucket) *permitAttempt {
	return startAcquire(t, b.Acquire)
}

// mustAdmit waits until a is admitted at once (by now + lateness) and
// fails the case when it is not.
func mustAdmit(t *caseT, what string, a *permitAttempt) {
	t.Helper()
	by := time.Now().Add(lateness)
	if !a.await(by) {
		t.Fatalf("%s: not admitted by %s, want admitted at once", what, t.since(by))
	}
	if a.err != nil {
		t.Fatalf("%s: got error %v, want a permit", what, a.err)
	}
	if a.v == nil {
		t.Fatalf("%s: got a nil Permit and a nil error", what)
	}
}

// mustWait fails the case when a has returned already.
func mustWait[P any](t *caseT, what, why string, a *attempt[P]) {
	t.Helper()
	settle()
	if a.finished() {
		if a.err != nil {
			t.Fatalf("%s: returned %v at %s, want it to wait: %s", what, a.err, t.since(a.at), why)
		}
		t.Errorf("%s: admitted at %s, want it to wait: %s", what, t.since(a.at), why)
	}
}

// notBefore waits for a until at most by and fails the case when it was
// admitted before earliest. It reports whether a was admitted.
func notBefore(t *caseT, what string, a *permitAttempt, earliest time.Time) bool {
	t.Helper()
	if !a.await(earliest.Add(lateness)) {
		return false
	}
	if a.err != nil {
		t.Errorf("%s: got error %v at %s, want a permit", what, a.err, t.since(a.at))
		return false
	}
	if a.at.Before(earliest) {
		t.Errorf("%s: admitted at %s, want not before %s", what, t.since(a.at), t.since(earliest))
	}
	return true
}

// admitEach waits for the attempts to be admitted one by one, in whatever
// order, completing each with info(k) for the k-th; it fails the case when
// one is admitted before earliest. what(i) describes attempt i. When
// requireAll is set, an attempt not admitted by lateness after earliest
// (or after the previous one completed) fails the case too; otherwise it
// is left to other cases to report.
func admitEach(t *caseT, what func(i int) string, as []*permitAttempt, earliest time.Time, info func(k int) protocols.RateLimitInfo, requireAll bool) {
	t.Helper()
	done := make([]bool, len(as))
	for k := range as {
		by := time.Now()
		if earliest.After(by) {
			by = earliest
		}
		i := nextAdmitted(as, done, by.Add(lateness))
		if i < 0 {
			if requireAll {
				for j := range as {
					if !done[j] {
						t.Errorf("%s: not admitted by %s, want admitted when the pause ends at %s", what(j), t.since(by.Add(lateness)), t.since(earliest))
					}
				}
			}
			return
		}
		a := as[i]
		if a.err != nil {
			t.Errorf("%s: got error %v at %s, want a permit", what(i), a.err, t.since(a.at))
			continue
		}
		if a.at.Before(earliest) {
			t.Errorf("%s: admitted at %s, want not before %s", what(i), t.since(a.at), t.since(earliest))
		}
		a.complete(info(k))
	}
}

// waitFor waits for a until at most by and fails the case when it was not
// admitted by then.
func waitFor(t *caseT, what string, a *permitAttempt, by time.Time) {
	t.Helper()
	if !a.await(by) {
		t.Errorf("%s: not admitted by %s, want admitted by then", what, t.since(by))
		return
	}
	if a.err != nil {
		t.Errorf("%s: got error %v at %s, want a permit", what, a.err, t.since(a.at))
	}
}

// ctxError checks that a returned by by with an error wrapping want.
func ctxError[P any](t *caseT, what string, a *attempt[P], by time.Time, want error) {
	t.Helper()
	if !a.await(by) {
		t.Errorf("%s: still waiting at %s, want it to return an error wrapping %s by then", what, t.since(by), errName(want))
		return
	}
	if !errors.Is(a.err, want) {
		t.Errorf("%s: got error %v at %s, want one wrapping %s", what, a.err, t.since(a.at), errName(want))
	}
}

// errName names the sentinels the suites expect.
func errName(err error) string {
	switch err {
	case context.Canceled:
		return "context.Canceled"
	case context.DeadlineExceeded:
		return "context.DeadlineExceeded"
	case protocols.ErrClosed:
		return "protocols.ErrClosed (net.ErrClosed)"
	}
	return fmt.Sprintf("%q", err)
}

var bucketRules = []rule[func() protocols.Bucket]{
	{
		name: "UnknownLimitAdmitsOneAtATime",
		rule: ruleUnknownOneAtATime,
		run: func(t *caseT, newBucket func() protocols.Bucket) {
			b := newBucket()
			first := acquireBucket(t, b)
			mustAdmit(t, "Bucket.Acquire (first request)", first)
			second := acquireBucket(t, b)
			mustWait(t, "Bucket.Acquire (second request)", "the first is in flight and the limit is not known", second.attempt)
			time.Sleep(5 * time.Second)
			mustWait(t, "Bucket.Acquire (second request, 5s later)", "the first is still in flight and the limit is not known", second.attempt)
			first.complete(ok200("abc", 5, 4, time.Second))
			mustAdmit(t, "Bucket.Acquire (second request, after the first got Remaining 4)", second)
			second.complete(ok200("abc", 5, 3, time.Second))
		},
	},
	{
		name: "ZeroRemainingBlocksUntilReset",
		rule: ruleZeroRemaining,
		run: func(t *caseT, newBucket func() protocols.Bucket) {
			b := newBucket()
			first := acquireBucket(t, b)
			mustAdmit(t, "Bucket.Acquire", first)
			first.complete(ok200("abc", 5, 0, 2*time.Second))
			reset := time.Now().Add(2 * time.Second)
			var as []*permitAttempt
			for range 3 {
				as = append(as, acquireBucket(t, b))
			}
			admitEach(t, func(i int) string {
				return fmt.Sprintf("Bucket.Acquire (waiter %d after Remaining 0, ResetAfter 2s)", i+1)
			}, as, reset, func(k int) protocols.RateLimitInfo { return ok200("abc", 5, 4-k, time.Second) }, false)
		},
	},
	{
		name: "ResetAdmitsWaiters",
		rule: ruleResetAdmits,
		run: func(t *caseT, newBucket func() protocols.Bucket) {
			b := newBucket()
			first := acquireBucket(t, b)
			mustAdmit(t, "Bucket.Acquire", first)
			first.complete(ok200("abc", 5, 0, 1500*time.Millisecond))
			reset := time.Now().Add(1500 * time.Millisecond)
			a := acquireBucket(t, b)
			waitFor(t, "Bucket.Acquire (after Remaining 0, ResetAfter 1.5s)", a, reset.Add(lateness))
			a.complete(ok200("abc", 5, 4, time.Second))
		},
	},
	{
		name: "ResetAfterCountedFromArrival",
		rule: ruleResetFromArrival,
		run: func(t *caseT, newBucket func() protocols.Bucket) {
			b := newBucket()
			first := acquireBucket(t, b)
			mustAdmit(t, "Bucket.Acquire", first)
			time.Sleep(700 * time.Millisecond) // the request's latency
			first.complete(ok200("abc", 5, 0, time.Second))
			a := acquireBucket(t, b)
			if notBefore(t, "Bucket.Acquire (response arrived 700ms after admission, ResetAfter 1s)", a, time.Now().Add(time.Second)) {
				a.complete(ok200("abc", 5, 4, time.Second))
			}
		},
	},
	{
		name: "ResetAfterIsFractional",
		rule: ruleFractional,
		run: func(t *caseT, newBucket func() protocols.Bucket) {
			b := newBucket()
			prev := acquireBucket(t, b)
			mustAdmit(t, "Bucket.Acquire", prev)
			for _, d := range []time.Duration{1500 * time.Millisecond, 250 * time.Millisecond, 1999 * time.Millisecond} {
				prev.complete(ok200("abc", 5, 0, d))
				a := acquireBucket(t, b)
				if !notBefore(t, fmt.Sprintf("Bucket.Acquire (after Remaining 0, ResetAfter %v)", d), a, time.Now().Add(d)) {
					return
				}
				prev = a
			}
			prev.complete(ok200("abc", 5, 4, time.Second))
		},
	},
	{
		name: "InFlightCountsAgainstRemaining",
		rule: ruleInFlight,
		run: func(t *caseT, newBucket func() protocols.Bucket) {
			b := newBucket()
			route := mustRoute("POST", "/channels/{channel_id}/messages", "1")
			s := newSim(0, map[string]simSpec{route.Endpoint(): {hash: "abc", limit: 3, window: 10 * time.Second}})
			first := acquireBucket(t, b)
			mustAdmit(t, "Bucket.Acquire", first)
			first.complete(s.hit(route)) // Limit 3, Remaining 2
			var as []*permitAttempt
			for range 5 {
				as = append(as, acquireBucket(t, b))
			}
			settle()
			n := 0
			for _, a := range as {
				if a.ok() {
					n++
				}
			}
			if n > 2 {
				t.Errorf("Bucket.Acquire: got %d requests admitted at once after Remaining 2, want at most 2", n)
			}
			// Let them all through, as Discord would answer them.
			admitted := drain(t, as, func() protocols.RateLimitInfo { return s.hit(route) }, time.Now().Add(15*time.Second))
			if bad := s.violations(); len(bad) > 0 {
				t.Errorf("Bucket.Acquire: admitted more than Remaining before the reset: %s", bad[0])
			}
			if admitted < len(as) {
				t.Errorf("Bucket.Acquire: got %d of %d requests admitted by %s, want all (the window resets at +10s)", admitted, len(as), t.since(time.Now()))
			}
		},
	},
	{
		name: "User429PausesBucket",
		rule: ruleBucket429,
		run: func(t *caseT, newBucket func() protocols.Bucket) {
			b := newBucket()
			first := acquireBucket(t, b)
			mustAdmit(t, "Bucket.Acquire", first)
			first.complete(tooMany(protocols.ScopeUser, "abc", 5, 0, 1500*time.Millisecond))
			a := acquireBucket(t, b)
			if notBefore(t, "Bucket.Acquire (after a user 429 with RetryAfter 1.5s)", a, time.Now().Add(1500*time.Millisecond)) {
				a.complete(ok200("abc", 5, 4, time.Second))
			}
		},
	},
	{
		name: "Shared429PausesBucket",
		rule: ruleBucket429,
		run: func(t *caseT, newBucket func() protocols.Bucket) {
			b := newBucket()
			first := acquireBucket(t, b)
			mustAdmit(t, "Bucket.Acquire", first)
			// A shared 429 may leave Remaining above zero: the resource is
			// limited, not the bot's quota.
			info := tooMany(protocols.ScopeShared, "abc", 5, 3, 2*time.Second)
			info.ResetAfter = 500 * time.Millisecond
			first.complete(info)
			a := acquireBucket(t, b)
			if notBefore(t, "Bucket.Acquire (after a shared 429 with Remaining 3 and RetryAfter 2s)", a, time.Now().Add(2*time.Second)) {
				a.complete(ok200("abc", 5, 4, time.Second))
			}
		},
	},
	{
		name: "CancelReleasesSlot",
		rule: ruleCancelSlot,
		run: func(t *caseT, newBucket func() protocols.Bucket) {
			b := newBucket()
			first := acquireBucket(t, b)
			mustAdmit(t, "Bucket.Acquire", first)
			second := acquireBucket(t, b)
			settle()
			first.cancelPermit()
			if !second.await(time.Now().Add(lateness)) {
				t.Errorf("Bucket.Acquire: the waiter was not admitted by %s after the only permit was cancelled at %s, want admitted at once",
					t.since(time.Now()), t.since(time.Now().Add(-lateness)))
				return
			}
			if second.err != nil {
				t.Errorf("Bucket.Acquire: got error %v after the permit was cancelled, want a permit", second.err)
				return
			}
			second.complete(ok200("abc", 5, 4, time.Second))
		},
	},
	{
		name: "PermitFinishesOnce",
		rule: rulePermitOnce,
		run: func(t *caseT, newBucket func() protocols.Bucket) {
			b := newBucket()
			first := acquireBucket(t, b)
			mustAdmit(t, "Bucket.Acquire", first)
			first.v.Cancel()
			first.v.Cancel()
			first.v.Complete(ok200("abc", 5, 4, time.Second))
			second := acquireBucket(t, b)
			mustAdmit(t, "Bucket.Acquire (after Cancel)", second)
			third := acquireBucket(t, b)
			mustWait(t, "Bucket.Acquire (third request)",
				"the limit is still not known and the second is in flight; the first permit's extra Cancel and Complete must have been ignored", third.attempt)
			second.complete(ok200("abc", 5, 4, time.Second))
			if third.await(time.Now().Add(lateness)) {
				third.complete(ok200("abc", 5, 3, time.Second))
			}
		},
	},
	{
		name: "AcquireHonorsCanceledContext",
		rule: ruleBucketCtx,
		run: func(t *caseT, newBucket func() protocols.Bucket) {
			b := newBucket()
			first := acquireBucket(t, b)
			mustAdmit(t, "Bucket.Acquire", first)
			defer first.complete(ok200("abc", 5, 4, time.Second))

			ctx, cancel := context.WithCancel(t.ctx)
			cancel()
			pre := startCtx(t, ctx, b.Acquire)
			ctxError(t, "Bucket.Acquire (context cancelled before the call)", pre, time.Now().Add(lateness), context.Canceled)

			ctx, cancel = context.WithCancel(t.ctx)
			waiting := startCtx(t, ctx, b.Acquire)
			time.Sleep(time.Second)
			mustWait(t, "Bucket.Acquire", "the only slot is held", waiting)
			cancel()
			ctxError(t, "Bucket.Acquire (context cancelled while waiting)", waiting, time.Now().Add(lateness), context.Canceled)
		},
	},
	{
		name: "AcquireHonorsDeadline",
		rule: ruleBucketCtx,
		run: func(t *caseT, newBucket func() protocols.Bucket) {
			b := newBucket()
			first := acquireBucket(t, b)
			mustAdmit(t, "Bucket.Acquire", first)
			first.complete(ok200("abc", 5, 0, 10*time.Second))
			ctx, cancel := context.WithTimeout(t.ctx, time.Second)
			defer cancel()
			a := startCtx(t, ctx, b.Acquire)
			ctxError(t, "Bucket.Acquire (deadline 1s, reset in 10s)", a, time.Now().Add(time.Second+lateness), context.DeadlineExceeded)
		},
	},
	{
		name: "FailedAcquireHoldsNothing",
		rule: ruleNothingHeld,
		run: func(t *caseT, newBucket func() protocols.Bucket) {
			b := newBucket()
			first := acquireBucket(t, b)
			mustAdmit(t, "Bucket.Acquire", first)
			first.complete(ok200("abc", 5, 0, 2*time.Second))
			reset := time.Now().Add(2 * time.Second)
			ctx, cancel := context.WithTimeout(t.ctx, 500*time.Millisecond)
			defer cancel()
			failed := startCtx(t, ctx, b.Acquire)
			if !failed.await(reset) || failed.err == nil {
				return // AcquireHonorsDeadline reports this
			}
			settle() // let whatever the failed Acquire left behind queue first
			a := acquireBucket(t, b)
			if !a.await(reset.Add(lateness)) || a.err != nil {
				t.Errorf("Bucket.Acquire: not admitted by %s after an Acquire failed at %s (window reset at %s), want admitted at the reset",
					t.since(time.Now()), t.since(failed.at), t.since(reset))
				return
			}
			a.complete(ok200("abc", 5, 4, time.Second))

			// The same with the slot held by a request of unknown limit.
			b = newBucket()
			first = acquireBucket(t, b)
			mustAdmit(t, "Bucket.Acquire", first)
			ctx, cancel = context.WithTimeout(t.ctx, 500*time.Millisecond)
			defer cancel()
			failed = startCtx(t, ctx, b.Acquire)
			if !failed.await(time.Now().Add(time.Second)) || failed.err == nil {
				return
			}
			settle()
			first.complete(ok200("abc", 5, 4, time.Second))
			a = acquireBucket(t, b)
			if !a.await(time.Now().Add(lateness)) || a.err != nil {
				t.Errorf("Bucket.Acquire: not admitted by %s although the only permit completed with Remaining 4 after another Acquire failed, want admitted at once",
					t.since(time.Now()))
				return
			}
			a.complete(ok200("abc", 5, 3, time.Second))
		},
	},
	{
		name: "CloseWakesWaiters",
		rule: ruleBucketCloseWakes,
		run: func(t *caseT, newBucket func() protocols.Bucket) {
			b := newBucket()
			first := acquireBucket(t, b)
			mustAdmit(t, "Bucket.Acquire", first)
			var waiters []*permitAttempt
			for range 3 {
				waiters = append(waiters, acquireBucket(t, b))
			}
			time.Sleep(time.Second)
			settle()
			if err := b.Close(); err != nil {
				t.Errorf("Bucket.Close: got %v, want nil", err)
			}
			closed := time.Now()
			for i, w := range waiters {
				ctxError(t, fmt.Sprintf("Bucket.Acquire (waiter %d, bucket closed at %s)", i+1, t.since(closed)), w.attempt, closed.Add(lateness), protocols.ErrClosed)
			}
			first.complete(ok200("abc", 5, 4, time.Second)) // after Close: must not panic
		},
	},
	{
		name: "AcquireAfterCloseFails",
		rule: ruleBucketAcquire,
		run: func(t *caseT, newBucket func() protocols.Bucket) {
			b := newBucket()
			if err := b.Close(); err != nil {
				t.Errorf("Bucket.Close: got %v, want nil", err)
			}
			a := acquireBucket(t, b)
			ctxError(t, "Bucket.Acquire (after Close)", a.attempt, time.Now().Add(lateness), protocols.ErrClosed)
			a.complete(ok200("abc", 5, 4, time.Second))
		},
	},
	{
		name: "CloseIsIdempotent",
		rule: ruleBucketIdempotent,
		run: func(t *caseT, newBucket func() protocols.Bucket) {
			b := newBucket()
			for i := range 3 {
				if err := callClose(b); err != nil {
					t.Errorf("Bucket.Close (call %d): got %v, want nil", i+1, err)
				}
			}
			a := acquireBucket(t, b)
			ctxError(t, "Bucket.Acquire (after three Close calls)", a.attempt, time.Now().Add(lateness), protocols.ErrClosed)
		},
	},
	{
		name: "UpdateTeachesWithoutReleasing",
		rule: ruleUpdate,
		run: func(t *caseT, newBucket func() protocols.Bucket) {
			b := newBucket()
			u, ok := b.(protocols.BucketUpdater)
			if !ok {
				t.Skip("the Bucket does not implement the optional protocols.BucketUpdater")
			}
			first := acquireBucket(t, b)
			mustAdmit(t, "Bucket.Acquire", first)
			u.Update(ok200("abc", 5, 0, 2*time.Second))
			reset := time.Now().Add(2 * time.Second)
			second := acquireBucket(t, b)
			mustWait(t, "Bucket.Acquire (after Update while the only permit is in flight)",
				"Update releases no slot, and it said Remaining 0 until +2s", second.attempt)
			time.Sleep(500 * time.Millisecond)
			first.cancelPermit()
			if notBefore(t, "Bucket.Acquire (after Update said Remaining 0 with ResetAfter 2s)", second, reset) {
				second.complete(ok200("abc", 5, 4, time.Second))
			}
		},
	},
	{
		name: "ConcurrentSafeAcquire",
		rule: ruleBucketConcurrent,
		run: func(t *caseT, newBucket func() protocols.Bucket) {
			b := newBucket()
			route := mustRoute("POST", "/channels/{channel_id}/messages", "1")
			const limit, window = 5, time.Second
			s := newSim(0, map[string]simSpec{route.Endpoint(): {hash: "abc", limit: limit, window: window}})
			const workers, each = 32, 10
			// Discord would finish in (workers*each/limit - 1) windows; allow
			// twice that plus the latencies.
			deadline := time.Now().Add(2*(workers*each/limit)*window + 5*time.Second)
			ctx, cancel := context.WithDeadline(t.ctx, deadline)
			defer cancel()
			errs := make(chan error, workers)
			for w := range workers {
				go func() {
					errs <- func() error {
						for i := range each {
							p, err := b.Acquire(ctx)
							if err != nil {
								return fmt.Errorf("Bucket.Acquire (worker %d, request %d) at %s: %w", w, i, t.since(time.Now()), err)
							}
							if p == nil {
								return fmt.Errorf("Bucket.Acquire: got a nil Permit and a nil error")
							}
							info := s.hit(route)
							time.Sleep(time.Duration(w%4) * 10 * time.Millisecond)
							if (w+i)%9 == 0 {
								p.Cancel() // the response was lost
								continue
							}
							go p.Complete(info) // finished from another goroutine
						}
						return nil
					}()
				}()
			}
			for range workers {
				if err := <-errs; err != nil {
					t.Errorf("%v", err)
				}
			}
			if bad := s.violations(); len(bad) > 0 {
				t.Errorf("Bucket: got %d requests Discord would have refused with 429, want 0; first: %s", len(bad), bad[0])
			}
		},
	},
}

// drain completes each attempt with hit() as soon as it is admitted, until
// every attempt has returned or the clock reaches by. It returns how many
// were admitted.
func drain(t *caseT, as []*permitAttempt, hit func() protocols.RateLimitInfo, by time.Time) int {
	seen := make([]bool, len(as))
	n := 0
	for {
		settle()
		for i, a := range as {
			if !seen[i] && a.finished() {
				seen[i] = true
				if a.err == nil {
					n++
					a.complete(hit())
				}
			}
		}
		all := true
		for _, s := range seen {
			all = all && s
		}
		if all || !time.Now().Before(by) {
			return n
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// callClose calls b.Close, turning a panic into an error.
func callClose(c interface{ Close() error }) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return c.Close()
}

// mustRoute is protocols.NewRoute for templates known to be valid.
func mustRoute(method, template string, args ...string) protocols.Route {
	r, err := protocols.NewRoute(method, template, args...)
	if err != nil {
		panic(err)
	}
	return r
}
