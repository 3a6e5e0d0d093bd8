package conformance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cordkit/cordkit/protocols"
)

// Rule sentences of the IdentifyLimiter suite, quoted from package
// protocols.
const (
	ruleIdentifyDoc        = "IdentifyLimiter spaces identifies as Discord requires: max_concurrency buckets keyed by shard_id % max_concurrency, one identify per bucket per 5 seconds, and the daily session-start budget."
	ruleIdentifySpacing    = "Identifies in one bucket are at least 5 seconds apart."
	ruleIdentifyConcurrent = "Shards in different buckets identify concurrently."
	ruleIdentifyWait       = "Wait blocks until shardID may identify, or ctx ends."
	ruleIdentifySafe       = "A limiter must be safe for concurrent use."
	ruleUnknownBudget      = "SessionStartLimit is the daily budget from /gateway/bot; a zero Total means unknown."
	// Pending in package protocols.
	ruleSessionBudget = "When the session-start budget is spent, Wait waits for its reset, or returns an error wrapping [ErrSessionStartLimit] when ctx's deadline comes first."
)

// identifySpacing is Discord's spacing of identifies in one bucket.
const identifySpacing = 5 * time.Second

// TestIdentifyLimiter tests a [protocols.IdentifyLimiter] implementation.
// newLimiter is called once or more per subtest, inside the subtest's
// synctest bubble, with the MaxConcurrency and SessionStartLimit the
// subtest needs, and must return a new limiter that no shard has
// identified through. An identify counts when Wait returns nil.
func TestIdentifyLimiter(t *testing.T, newLimiter func(t *testing.T, p protocols.IdentifyLimiterParams) protocols.IdentifyLimiter) {
	t.Helper()
	Options{}.TestIdentifyLimiter(t, newLimiter)
}

// TestIdentifyLimiter is [TestIdentifyLimiter] with options.
func (o Options) TestIdentifyLimiter(t *testing.T, newLimiter func(t *testing.T, p protocols.IdentifyLimiterParams) protocols.IdentifyLimiter) {
	t.Helper()
	runRules(t, o, "TestIdentifyLimiter", identifyRules, func(t *testing.T) func(p protocols.IdentifyLimiterParams) protocols.IdentifyLimiter {
		return func(p protocols.IdentifyLimiterParams) protocols.IdentifyLimiter {
			t.Helper()
			l := newLimiter(t, p)
			if l == nil {
				t.Fatal("conformance: newLimiter returned nil")
			}
			return l
		}
	})
}

// concurrency returns the parameters for maxConcurrency buckets and no
// known budget.
func concurrency(maxConcurrency int) protocols.IdentifyLimiterParams {
	return protocols.IdentifyLimiterParams{MaxConcurrency: maxConcurrency}
}

// budget returns the parameters for maxConcurrency buckets and a daily
// budget of 1000 with remaining left until resetAfter.
func budget(maxConcurrency, remaining int, resetAfter time.Duration) protocols.IdentifyLimiterParams {
	return protocols.IdentifyLimiterParams{MaxConcurrency: maxConcurrency, SessionStartLimit: protocols.SessionStartLimit{
		Total: 1000, Remaining: remaining, ResetAfter: resetAfter.Milliseconds(), MaxConcurrency: maxConcurrency,
	}}
}

// identify starts l.Wait for shard in its own goroutine.
func identify(t *caseT, l protocols.IdentifyLimiter, shard int) *attempt[int] {
	return identifyCtx(t, t.ctx, l, shard)
}

func identifyCtx(t *caseT, ctx context.Context, l protocols.IdentifyLimiter, shard int) *attempt[int] {
	return startCtx(t, ctx, func(ctx context.Context) (int, error) { return shard, l.Wait(ctx, shard) })
}

// identifyAll starts one Wait per shard, all at once.
func identifyAll(t *caseT, l protocols.IdentifyLimiter, shards ...int) []*attempt[int] {
	as := make([]*attempt[int], len(shards))
	for i, s := range shards {
		as[i] = identify(t, l, s)
	}
	return as
}

// span returns 0, 1, ..., n-1.
func span(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// awaitAll waits until the attempts of shards returned or the clock
// reaches by, and fails the case for each that did not identify by then.
func awaitAll(t *caseT, what string, shards []int, as []*attempt[int], by time.Time) {
	t.Helper()
	for _, a := range as {
		a.await(by)
	}
	for i, a := range as {
		switch {
		case !a.finished():
			t.Errorf("%s: shard %d not identified by %s", what, shards[i], t.since(by))
		case a.err != nil:
			t.Errorf("%s: shard %d got error %v at %s, want to identify", what, shards[i], a.err, t.since(a.at))
		}
	}
}

// mustIdentifyAt checks that a identifies not before earliest and by
// earliest + lateness.
func mustIdentifyAt(t *caseT, what string, a *attempt[int], earliest time.Time) {
	t.Helper()
	if !a.await(earliest.Add(lateness)) {
		t.Errorf("%s: not identified by %s, want at %s", what, t.since(earliest.Add(lateness)), t.since(earliest))
		return
	}
	if a.err != nil {
		t.Errorf("%s: got error %v at %s, want to identify at %s", what, a.err, t.since(a.at), t.since(earliest))
		return
	}
	if a.at.Before(earliest) {
		t.Errorf("%s: identified at %s, want not before %s", what, t.since(a.at), t.since(earliest))
	}
}

// checkSpacing fails the case when two identifies of one bucket are less
// than 5 s apart; key maps a shard to its bucket.
func checkSpacing(t *caseT, what string, shards []int, at []time.Time, key func(shard int) int) {
	t.Helper()
	last := make(map[int]int) // bucket → index of its latest identify
	order := span(len(at))
	slices.SortStableFunc(order, func(i, j int) int { return at[i].Compare(at[j]) })
	for _, i := range order {
		b := key(shards[i])
		if j, ok := last[b]; ok && at[i].Sub(at[j]) < identifySpacing {
			t.Errorf("%s: shards %d and %d (bucket %d) identified at %s and %s, %v apart; want at least %v", what, shards[j], shards[i], b, t.since(at[j]), t.since(at[i]), at[i].Sub(at[j]), identifySpacing)
		}
		last[b] = i
	}
}

// results returns the shards and times of the attempts that identified.
func results(as []*attempt[int]) (shards []int, at []time.Time) {
	for _, a := range as {
		if a.finished() && a.err == nil {
			shards = append(shards, a.v)
			at = append(at, a.at)
		}
	}
	return shards, at
}

var identifyRules = []rule[func(p protocols.IdentifyLimiterParams) protocols.IdentifyLimiter]{
	{
		name: "OneIdentifyPerFiveSeconds",
		rule: ruleIdentifySpacing,
		run: func(t *caseT, newLimiter func(p protocols.IdentifyLimiterParams) protocols.IdentifyLimiter) {
			l := newLimiter(concurrency(1))
			as := identifyAll(t, l, span(4)...)
			awaitAll(t, "IdentifyLimiter.Wait (4 shards, max_concurrency 1)", span(4), as, time.Now().Add(3*identifySpacing+4*lateness))
			shards, at := results(as)
			checkSpacing(t, "IdentifyLimiter.Wait (max_concurrency 1)", shards, at, func(int) int { return 0 })
		},
	},
	{
		name: "SameShardAgainWaits",
		rule: ruleIdentifySpacing,
		run: func(t *caseT, newLimiter func(p protocols.IdentifyLimiterParams) protocols.IdentifyLimiter) {
			l := newLimiter(concurrency(2))
			first := identify(t, l, 3)
			begin := time.Now()
			mustIdentifyAt(t, "IdentifyLimiter.Wait (shard 3)", first, begin)
			time.Sleep(time.Second) // the connection drops; the shard identifies again
			again := identify(t, l, 3)
			mustIdentifyAt(t, "IdentifyLimiter.Wait (shard 3 again, 1s later)", again, first.at.Add(identifySpacing))
		},
	},
	{
		name: "BucketsKeyedByShardModulo",
		rule: ruleIdentifyDoc,
		run: func(t *caseT, newLimiter func(p protocols.IdentifyLimiterParams) protocols.IdentifyLimiter) {
			l := newLimiter(concurrency(4))
			begin := time.Now()
			as := identifyAll(t, l, 0, 1, 2, 3)
			for i, a := range as {
				mustIdentifyAt(t, fmt.Sprintf("IdentifyLimiter.Wait (shard %d of 0-3, max_concurrency 4)", i), a, begin)
			}
			time.Sleep(time.Second)
			shards := []int{4, 5, 7}
			for i, a := range identifyAll(t, l, shards...) {
				mustIdentifyAt(t, fmt.Sprintf("IdentifyLimiter.Wait (shard %d, bucket %d, which identified at %s)", shards[i], shards[i]%4, t.since(begin)), a, begin.Add(identifySpacing))
			}
		},
	},
	{
		name: "DifferentBucketsConcurrent",
		rule: ruleIdentifyConcurrent,
		run: func(t *caseT, newLimiter func(p protocols.IdentifyLimiterParams) protocols.IdentifyLimiter) {
			l := newLimiter(concurrency(16))
			begin := time.Now()
			for i, a := range identifyAll(t, l, span(16)...) {
				mustIdentifyAt(t, fmt.Sprintf("IdentifyLimiter.Wait (shard %d of 0-15, max_concurrency 16)", i), a, begin)
			}
		},
	},
	{
		name: "SixteenShardsFourBuckets",
		rule: ruleIdentifyDoc,
		run: func(t *caseT, newLimiter func(p protocols.IdentifyLimiterParams) protocols.IdentifyLimiter) {
			l := newLimiter(concurrency(4))
			begin := time.Now()
			as := identifyAll(t, l, span(16)...)
			// Four rounds of four: the last at +15s.
			by := begin.Add(3*identifySpacing + 4*lateness)
			awaitAll(t, "IdentifyLimiter.Wait (16 shards, max_concurrency 4, all done by +15s)", span(16), as, by)
			shards, at := results(as)
			checkSpacing(t, "IdentifyLimiter.Wait (16 shards, max_concurrency 4)", shards, at, func(s int) int { return s % 4 })
		},
	},
	{
		name: "WaitHonorsContext",
		rule: ruleCtxErr,
		run: func(t *caseT, newLimiter func(p protocols.IdentifyLimiterParams) protocols.IdentifyLimiter) {
			l := newLimiter(concurrency(1))
			mustIdentifyAt(t, "IdentifyLimiter.Wait (shard 0)", identify(t, l, 0), time.Now())

			ctx, cancel := context.WithCancel(t.ctx)
			cancel()
			pre := identifyCtx(t, ctx, l, 1)
			ctxError(t, "IdentifyLimiter.Wait (context cancelled before the call, bucket busy)", pre, time.Now().Add(lateness), context.Canceled)

			ctx, cancel = context.WithCancel(t.ctx)
			waiting := identifyCtx(t, ctx, l, 1)
			time.Sleep(time.Second)
			mustWait(t, "IdentifyLimiter.Wait (shard 1)", "shard 0 of the same bucket identified 1s ago", waiting)
			cancel()
			ctxError(t, "IdentifyLimiter.Wait (context cancelled while waiting)", waiting, time.Now().Add(lateness), context.Canceled)

			ctx, cancel = context.WithTimeout(t.ctx, time.Second)
			defer cancel()
			timed := identifyCtx(t, ctx, l, 2)
			ctxError(t, "IdentifyLimiter.Wait (deadline 1s, bucket free at +5s)", timed, time.Now().Add(time.Second+lateness), context.DeadlineExceeded)
		},
	},
	{
		name: "CancelledWaitTakesNoTurn",
		rule: ruleIdentifyWait,
		run: func(t *caseT, newLimiter func(p protocols.IdentifyLimiterParams) protocols.IdentifyLimiter) {
			l := newLimiter(concurrency(1))
			first := identify(t, l, 0)
			begin := time.Now()
			mustIdentifyAt(t, "IdentifyLimiter.Wait (shard 0)", first, begin)
			ctx, cancel := context.WithCancel(t.ctx)
			gaveUp := identifyCtx(t, ctx, l, 1)
			settle()
			next := identify(t, l, 2)
			time.Sleep(time.Second)
			cancel()
			ctxError(t, "IdentifyLimiter.Wait (shard 1, context cancelled)", gaveUp, time.Now().Add(lateness), context.Canceled)
			mustIdentifyAt(t, "IdentifyLimiter.Wait (shard 2, queued behind shard 1, which gave up)", next, begin.Add(identifySpacing))
		},
	},
	{
		name: "SessionBudgetWaitsForReset",
		rule: ruleSessionBudget,
		run: func(t *caseT, newLimiter func(p protocols.IdentifyLimiterParams) protocols.IdentifyLimiter) {
			const resetAfter = time.Minute
			begin := time.Now()
			l := newLimiter(budget(1, 2, resetAfter))
			mustIdentifyAt(t, "IdentifyLimiter.Wait (shard 0, 2 identifies left today)", identify(t, l, 0), begin)
			mustIdentifyAt(t, "IdentifyLimiter.Wait (shard 1, 1 identify left today)", identify(t, l, 1), begin.Add(identifySpacing))
			third := identify(t, l, 2)
			mustIdentifyAt(t, "IdentifyLimiter.Wait (shard 2, no identify left until the reset at +1m)", third, begin.Add(resetAfter))
			// After the reset the budget is Total again.
			mustIdentifyAt(t, "IdentifyLimiter.Wait (shard 3, after the reset)", identify(t, l, 3), third.at.Add(identifySpacing))
		},
	},
	{
		name: "SessionBudgetFailsPastDeadline",
		rule: ruleSessionBudget,
		run: func(t *caseT, newLimiter func(p protocols.IdentifyLimiterParams) protocols.IdentifyLimiter) {
			const resetAfter = time.Minute
			l := newLimiter(budget(2, 1, resetAfter))
			mustIdentifyAt(t, "IdentifyLimiter.Wait (shard 0, 1 identify left today)", identify(t, l, 0), time.Now())
			ctx, cancel := context.WithTimeout(t.ctx, 10*time.Second)
			defer cancel()
			deadline := time.Now().Add(10 * time.Second)
			a := identifyCtx(t, ctx, l, 1)
			if !a.await(deadline.Add(lateness)) {
				t.Fatalf("IdentifyLimiter.Wait (shard 1, budget spent until +1m, deadline +10s): still waiting at %s, want an error wrapping protocols.ErrSessionStartLimit", t.since(deadline.Add(lateness)))
			}
			if a.err == nil {
				t.Fatalf("IdentifyLimiter.Wait (shard 1): identified at %s with the daily budget spent until +1m, want an error wrapping protocols.ErrSessionStartLimit", t.since(a.at))
			}
			if !errors.Is(a.err, protocols.ErrSessionStartLimit) {
				t.Errorf("IdentifyLimiter.Wait (shard 1, budget spent until +1m, deadline +10s): got error %v at %s, want one wrapping protocols.ErrSessionStartLimit", a.err, t.since(a.at))
			}
		},
	},
	{
		name: "SessionBudgetSpansBuckets",
		rule: ruleIdentifyDoc,
		run: func(t *caseT, newLimiter func(p protocols.IdentifyLimiterParams) protocols.IdentifyLimiter) {
			const resetAfter = 30 * time.Second
			begin := time.Now()
			l := newLimiter(budget(4, 2, resetAfter))
			as := identifyAll(t, l, span(4)...)
			time.Sleep(lateness)
			settle()
			if shards, _ := results(as); len(shards) > 2 {
				t.Errorf("IdentifyLimiter.Wait (shards 0-3, max_concurrency 4, 2 identifies left today): shards %v identified at once, want at most 2", shards)
			}
			for i, a := range as {
				if !a.finished() {
					mustIdentifyAt(t, fmt.Sprintf("IdentifyLimiter.Wait (shard %d, waiting for the budget's reset at +30s)", i), a, begin.Add(resetAfter))
				}
			}
		},
	},
	{
		name: "UnknownBudgetNotEnforced",
		rule: ruleUnknownBudget,
		run: func(t *caseT, newLimiter func(p protocols.IdentifyLimiterParams) protocols.IdentifyLimiter) {
			l := newLimiter(protocols.IdentifyLimiterParams{MaxConcurrency: 2, SessionStartLimit: protocols.SessionStartLimit{Total: 0, Remaining: 0}})
			begin := time.Now()
			for i, a := range identifyAll(t, l, 0, 1) {
				mustIdentifyAt(t, fmt.Sprintf("IdentifyLimiter.Wait (shard %d, Total 0: budget unknown)", i), a, begin)
			}
			mustIdentifyAt(t, "IdentifyLimiter.Wait (shard 2, Total 0: budget unknown)", identify(t, l, 2), begin.Add(identifySpacing))
		},
	},
	{
		name: "ConcurrentSafeReconnectStorm",
		rule: ruleIdentifySafe,
		run: func(t *caseT, newLimiter func(p protocols.IdentifyLimiterParams) protocols.IdentifyLimiter) {
			// 64 shards identify, and at once every connection drops and
			// each shard identifies again.
			const shards, maxConcurrency = 64, 16
			l := newLimiter(budget(maxConcurrency, 1000, time.Hour))
			begin := time.Now()
			var (
				mu  sync.Mutex
				ids []int
				at  []time.Time
				wg  sync.WaitGroup
			)
			errs := make(chan error, 2*shards)
			for s := range shards {
				wg.Go(func() {
					for range 2 {
						if err := l.Wait(t.ctx, s); err != nil {
							errs <- fmt.Errorf("IdentifyLimiter.Wait (shard %d) at %s: %w", s, t.since(time.Now()), err)
							return
						}
						mu.Lock()
						ids, at = append(ids, s), append(at, time.Now())
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("%v", err)
			}
			checkSpacing(t, "IdentifyLimiter.Wait (64 shards, max_concurrency 16, each twice)", ids, at, func(s int) int { return s % maxConcurrency })
			// Eight rounds of sixteen: the last at +35s.
			if took, want := time.Since(begin), 7*identifySpacing; took > want+8*lateness {
				t.Errorf("IdentifyLimiter.Wait: 128 identifies of 64 shards in 16 buckets took %v, want %v (eight rounds, 5s apart)", took, want)
			}
		},
	},
}
