package conformance

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cordkit/cordkit/protocols"
)

// Rule sentences of the RateLimiter suite, quoted from package protocols.
const (
	ruleSharedHash      = "Routes that get the same X-RateLimit-Bucket share one bucket per top-level resource."
	ruleRehash          = "A route whose bucket hash changes is re-mapped, and its waiting requests move to the new bucket."
	ruleKnownTemplate   = "A known route template starts a new top-level resource with the known limit."
	ruleGlobal          = "At most the global limit of non-exempt requests complete within any one second; exempt routes never wait for it."
	ruleGlobal429       = "A global 429 pauses every non-exempt route for RetryAfter; a user 429 pauses only its bucket."
	ruleCancelToken     = "A cancelled permit gives its global token back."
	ruleResources       = "The same route with different top-level IDs is limited separately, so a limiter keys on [Route.Endpoint] plus [Route.Resource] until Discord names the route's bucket, and on the bucket hash plus [Route.Resource] after."
	ruleLimiterCtx      = "It returns an error wrapping ctx.Err() when ctx ends first, and one wrapping [ErrClosed] after Close."
	ruleLimiterClose    = "Close ends every wait with [ErrClosed] and releases what the limiter holds."
	ruleEnforces        = "RateLimiter maps routes to buckets and enforces Discord's limits before Discord does."
	ruleCloudflare      = "A 429 of Cloudflare scope pauses every route, exempt ones included, for RetryAfter."
	ruleGlobalFullRate  = "While buckets have room, a limiter admits non-exempt requests at the full rate of the global limit."
	ruleSteady          = "A steady stream of requests to one bucket finishes close to the fastest time its limit allows."
	ruleSameHashCounter = "Routes that share a bucket hash but not its counter never deadlock, and together get at least the rate of one shared bucket."
	ruleConcurrent      = "A limiter whose [ConcurrentBuckets] method reports true admits up to Remaining requests of a bucket at once, and no more before the bucket's reset passes, whatever order their responses come back in."
)

// limiterTimeout bounds every wait of the load cases, in bubble time.
const limiterTimeout = 10 * time.Minute

// TestRateLimiter tests a [protocols.RateLimiter] implementation.
// newLimiter is called once or more per subtest, inside the subtest's
// synctest bubble, with p.GlobalLimit and p.Logger set by the suite;
// p.NewBucket is nil and the factory fills it (with its own bucket, or the
// reference one). The suite closes the limiter when the subtest ends.
//
// The suite drives the limiter directly: it calls Acquire, pretends to be
// Discord at the instant a permit is granted, and finishes the permit with
// the [protocols.RateLimitInfo] Discord would have sent.
func TestRateLimiter(t *testing.T, newLimiter func(t *testing.T, p protocols.RateLimiterParams) protocols.RateLimiter) {
	t.Helper()
	Options{}.TestRateLimiter(t, newLimiter)
}

// TestRateLimiter is [TestRateLimiter] with options.
func (o Options) TestRateLimiter(t *testing.T, newLimiter func(t *testing.T, p protocols.RateLimiterParams) protocols.RateLimiter) {
	t.Helper()
	runRules(t, o, "TestRateLimiter", limiterRules, func(t *testing.T) func(global int) protocols.RateLimiter {
		return func(global int) protocols.RateLimiter {
			t.Helper()
			l := newLimiter(t, protocols.RateLimiterParams{
				GlobalLimit: global,
				Logger:      slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError})),
			})
			if l == nil {
				t.Fatal("conformance: newLimiter returned nil")
			}
			t.Cleanup(func() { _ = l.Close() })
			return l
		}
	})
}

// Routes the limiter cases use.
func createMessage(ch int) protocols.Route {
	return mustRoute("POST", "/channels/{channel_id}/messages", strconv.Itoa(ch))
}

func deleteMessage(ch, msg int) protocols.Route {
	return mustRoute("DELETE", "/channels/{channel_id}/messages/{message_id}", strconv.Itoa(ch), strconv.Itoa(msg))
}

func getGuild(g int) protocols.Route {
	return mustRoute("GET", "/guilds/{guild_id}", strconv.Itoa(g))
}

func getGuildChannels(g int) protocols.Route {
	return mustRoute("GET", "/guilds/{guild_id}/channels", strconv.Itoa(g))
}

func interactionCallback(id int) protocols.Route {
	return mustRoute("POST", "/interactions/{interaction_id}/{interaction_token}/callback", strconv.Itoa(id), "tok"+strconv.Itoa(id))
}

// acquireRoute starts l.Acquire(ctx, r) in its own goroutine.
func acquireRoute(t *caseT, l protocols.RateLimiter, r protocols.Route) *permitAttempt {
	return startAcquire(t, func(ctx context.Context) (protocols.Permit, error) { return l.Acquire(ctx, r) })
}

// acquireRouteCtx is acquireRoute with a context other than the case's.
func acquireRouteCtx(t *caseT, ctx context.Context, l protocols.RateLimiter, r protocols.Route) *permitAttempt {
	return &permitAttempt{startCtx(t, ctx, func(ctx context.Context) (protocols.Permit, error) { return l.Acquire(ctx, r) })}
}

// holdGlobal acquires n permits on distinct guild routes and returns them
// unfinished, failing the case when they are not admitted at once.
func holdGlobal(t *caseT, l protocols.RateLimiter, n, firstGuild int) []*permitAttempt {
	t.Helper()
	var as []*permitAttempt
	for i := range n {
		a := acquireRoute(t, l, getGuild(firstGuild+i))
		mustAdmit(t, fmt.Sprintf("RateLimiter.Acquire (request %d of %d on distinct routes, global limit %d)", i+1, n, n), a)
		as = append(as, a)
	}
	return as
}

// loadResult is what a load run saw.
type loadResult struct {
	admitted []time.Time // admission times, sorted
	errs     []error
	elapsed  time.Duration // from the start to the last completion
}

// runLoad sends jobs through l from workers goroutines: each job is
// acquired, hits s at once, and completes latency later. Every wait ends at
// the case's start plus limiterTimeout.
func runLoad(t *caseT, l protocols.RateLimiter, s *sim, jobs []protocols.Route, workers int, latency time.Duration) loadResult {
	ctx, cancel := context.WithDeadline(t.ctx, t.start.Add(limiterTimeout))
	defer cancel()
	start := time.Now()
	queue := make(chan protocols.Route, len(jobs))
	for _, j := range jobs {
		queue <- j
	}
	close(queue)
	var (
		mu  sync.Mutex
		res loadResult
		wg  sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for r := range queue {
				p, err := l.Acquire(ctx, r)
				if err == nil && p == nil {
					err = fmt.Errorf("got a nil Permit and a nil error")
				}
				if err != nil {
					mu.Lock()
					res.errs = append(res.errs, fmt.Errorf("RateLimiter.Acquire(%v) at %s: %w", r, t.since(time.Now()), err))
					mu.Unlock()
					continue
				}
				at := time.Now()
				info := s.hit(r)
				time.Sleep(latency)
				p.Complete(info)
				mu.Lock()
				res.admitted = append(res.admitted, at)
				if d := time.Since(start); d > res.elapsed {
					res.elapsed = d
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	sort.Slice(res.admitted, func(i, j int) bool { return res.admitted[i].Before(res.admitted[j]) })
	return res
}

// reportErrs fails the case with the first few load errors.
func (r loadResult) reportErrs(t *caseT, what string) {
	t.Helper()
	if len(r.errs) > 0 {
		t.Errorf("%s: %d requests failed, want none; first: %v", what, len(r.errs), r.errs[0])
	}
}

var limiterRules = []rule[func(global int) protocols.RateLimiter]{
	{
		name: "UnknownBucketSendsOneAtATime",
		rule: ruleUnknownOneAtATime,
		run: func(t *caseT, newLimiter func(int) protocols.RateLimiter) {
			l := newLimiter(50)
			first := acquireRoute(t, l, createMessage(1))
			mustAdmit(t, "RateLimiter.Acquire (first request of a route)", first)
			second := acquireRoute(t, l, createMessage(1))
			mustWait(t, "RateLimiter.Acquire (second request of the route)", "the first is in flight and the route's limit is not known", second.attempt)
			time.Sleep(2 * time.Second)
			mustWait(t, "RateLimiter.Acquire (second request, 2s later)", "the first is still in flight and the route's limit is not known", second.attempt)
			first.complete(ok200("create", 5, 4, 5*time.Second))
			mustAdmit(t, "RateLimiter.Acquire (second request, after the first got Remaining 4)", second)
			second.complete(ok200("create", 5, 3, 5*time.Second))
		},
	},
	{
		name: "TopLevelResourcesAreIndependent",
		rule: ruleResources,
		run: func(t *caseT, newLimiter func(int) protocols.RateLimiter) {
			l := newLimiter(50)
			// Before the hash is known: one request in flight per channel.
			a1 := acquireRoute(t, l, createMessage(1))
			mustAdmit(t, "RateLimiter.Acquire (channel 1)", a1)
			a2 := acquireRoute(t, l, createMessage(2))
			mustAdmit(t, "RateLimiter.Acquire (channel 2, while channel 1's first request is in flight)", a2)
			a1.complete(ok200("create", 5, 0, 10*time.Second))
			a2.complete(ok200("create", 5, 4, 10*time.Second))
			// After: channel 1 is exhausted, channels 2 and 3 are not.
			b2 := acquireRoute(t, l, createMessage(2))
			mustAdmit(t, "RateLimiter.Acquire (channel 2, while channel 1 waits for its reset)", b2)
			b2.complete(ok200("create", 5, 3, 10*time.Second))
			b3 := acquireRoute(t, l, createMessage(3))
			mustAdmit(t, "RateLimiter.Acquire (channel 3, a resource not seen before)", b3)
			b3.complete(ok200("create", 5, 4, 10*time.Second))
			b1 := acquireRoute(t, l, createMessage(1))
			mustWait(t, "RateLimiter.Acquire (channel 1)", "channel 1 got Remaining 0 with a reset in 10s", b1.attempt)
		},
	},
	{
		name: "SharedHashSharesBucket",
		rule: ruleSharedHash,
		run: func(t *caseT, newLimiter func(int) protocols.RateLimiter) {
			l := newLimiter(50)
			// Two routes of one channel turn out to share the hash "shared"
			// and its counter: Limit 2, and both requests used it up.
			a := acquireRoute(t, l, createMessage(1))
			mustAdmit(t, "RateLimiter.Acquire (POST messages)", a)
			a.complete(ok200("shared", 2, 1, 10*time.Second))
			b := acquireRoute(t, l, deleteMessage(1, 100))
			mustAdmit(t, "RateLimiter.Acquire (DELETE message, another endpoint)", b)
			b.complete(ok200("shared", 2, 0, 10*time.Second))
			reset := time.Now().Add(10 * time.Second)
			for _, r := range []protocols.Route{createMessage(1), deleteMessage(1, 101)} {
				c := acquireRoute(t, l, r)
				time.Sleep(time.Second)
				settle()
				if c.ok() {
					t.Errorf("RateLimiter.Acquire(%v): admitted at %s, want not before %s: both endpoints answered X-RateLimit-Bucket \"shared\" and the last said Remaining 0",
						r, t.since(c.at), t.since(reset))
					c.complete(ok200("shared", 2, 0, time.Until(reset)))
				}
				c.cancel()
			}
			// Another channel has its own bucket of the same hash.
			d := acquireRoute(t, l, deleteMessage(2, 200))
			mustAdmit(t, "RateLimiter.Acquire (DELETE message in channel 2)", d)
			d.complete(ok200("shared", 2, 1, 10*time.Second))
		},
	},
	{
		name: "RehashMovesWaiters",
		rule: ruleRehash,
		run: func(t *caseT, newLimiter func(int) protocols.RateLimiter) {
			l := newLimiter(50)
			r := deleteMessage(1, 100)
			a := acquireRoute(t, l, r)
			mustAdmit(t, "RateLimiter.Acquire", a)
			a.complete(ok200("old", 2, 1, 30*time.Second))
			b := acquireRoute(t, l, r)
			mustAdmit(t, "RateLimiter.Acquire (Remaining 1)", b)
			// These wait: the old bucket is used up until +30s.
			var waiters []*permitAttempt
			for range 3 {
				waiters = append(waiters, acquireRoute(t, l, r))
			}
			time.Sleep(time.Second)
			settle()
			// Discord now names another bucket for the route, with room.
			b.complete(ok200("new", 5, 4, 2*time.Second))
			// Each waiter must now be admitted as soon as the one before it
			// completes, in whatever order the limiter picks.
			done := make([]bool, len(waiters))
			for k := range waiters {
				i := nextAdmitted(waiters, done, time.Now().Add(lateness))
				if i < 0 {
					t.Errorf("RateLimiter.Acquire: %d of %d waiters still not admitted at %s after the route's hash changed (at +1s) to one with Remaining 4, want each admitted at once, not at the old bucket's reset (+30s)",
						len(waiters)-k, len(waiters), t.since(time.Now()))
					return
				}
				if waiters[i].err != nil {
					t.Errorf("RateLimiter.Acquire: a waiter got %v after the route's hash changed, want a permit", waiters[i].err)
					return
				}
				waiters[i].complete(ok200("new", 5, 3-k, time.Second))
			}
		},
	},
	{
		name: "KnownTemplateStartsWithKnownLimit",
		rule: ruleKnownTemplate,
		run: func(t *caseT, newLimiter func(int) protocols.RateLimiter) {
			l := newLimiter(50)
			// Both endpoints are learned on channel 1: one hash, Limit 1.
			for _, r := range []protocols.Route{createMessage(1), deleteMessage(1, 100)} {
				a := acquireRoute(t, l, r)
				mustAdmit(t, fmt.Sprintf("RateLimiter.Acquire(%v)", r), a)
				a.complete(ok200("one", 1, 0, 100*time.Millisecond))
				time.Sleep(200 * time.Millisecond)
			}
			// Channel 2 is new, but its template is known: its first window
			// admits one request, whichever endpoint sends it.
			a := acquireRoute(t, l, createMessage(2))
			mustAdmit(t, "RateLimiter.Acquire (first request in channel 2)", a)
			b := acquireRoute(t, l, deleteMessage(2, 200))
			mustWait(t, "RateLimiter.Acquire (DELETE in channel 2)",
				"the routes share a hash whose limit is 1 and channel 2's first request is in flight", b.attempt)
			time.Sleep(300 * time.Millisecond)
			a.complete(ok200("one", 1, 0, time.Second))
			reset := time.Now().Add(time.Second)
			if notBefore(t, "RateLimiter.Acquire (DELETE in channel 2, after Remaining 0 with ResetAfter 1s)", b, reset) {
				b.complete(ok200("one", 1, 0, time.Second))
			}
		},
	},
	{
		name: "GlobalLimitIsProactive",
		rule: ruleGlobal,
		run: func(t *caseT, newLimiter func(int) protocols.RateLimiter) {
			const global = 50
			l := newLimiter(global)
			s := newSim(global, nil)
			var jobs []protocols.Route
			for i := range 4 * global {
				jobs = append(jobs, createMessage(1000+i))
			}
			res := runLoad(t, l, s, jobs, len(jobs), 0)
			res.reportErrs(t, "RateLimiter.Acquire")
			for i := global; i < len(res.admitted); i++ {
				if d := res.admitted[i].Sub(res.admitted[i-global]); d < time.Second {
					t.Fatalf("RateLimiter.Acquire: got %d non-exempt requests admitted (and completed) between %s and %s, want at most %d in any one second",
						global+1, t.since(res.admitted[i-global]), t.since(res.admitted[i]), global)
				}
			}
		},
	},
	{
		name: "GlobalLimitAllowsFullRate",
		rule: ruleGlobalFullRate,
		run: func(t *caseT, newLimiter func(int) protocols.RateLimiter) {
			const global, n = 50, 200
			l := newLimiter(global)
			s := newSim(global, nil)
			var jobs []protocols.Route
			for i := range n {
				jobs = append(jobs, createMessage(1000+i))
			}
			res := runLoad(t, l, s, jobs, n, 50*time.Millisecond)
			res.reportErrs(t, "RateLimiter.Acquire")
			// n requests at 50/s: the last may go at (n/50 - 1)s with fixed
			// windows, or at (n-1)/50 s when spaced evenly.
			want := time.Duration(n/global)*time.Second + lateness
			if len(res.admitted) == n {
				if last := res.admitted[n-1]; last.Sub(t.start) > want {
					t.Errorf("RateLimiter.Acquire: the last of %d requests on distinct routes was admitted at %s, want by %s with a global limit of %d/s",
						n, t.since(last), t.since(t.start.Add(want)), global)
				}
			}
		},
	},
	{
		name: "ExemptRoutesSkipGlobal",
		rule: ruleGlobal,
		run: func(t *caseT, newLimiter func(int) protocols.RateLimiter) {
			const global = 5
			l := newLimiter(global)
			held := holdGlobal(t, l, global, 1)
			for i := range 3 * global {
				r := interactionCallback(500 + i)
				if !r.Exempt {
					t.Fatalf("conformance: %v is not exempt", r)
				}
				a := acquireRoute(t, l, r)
				mustAdmit(t, fmt.Sprintf("RateLimiter.Acquire (exempt interaction callback %d while every global token is held)", i+1), a)
				a.complete(protocols.RateLimitInfo{Status: 204})
			}
			for _, h := range held {
				h.complete(protocols.RateLimitInfo{Status: 200})
			}
		},
	},
	{
		name: "Global429PausesEveryRoute",
		rule: ruleGlobal429,
		run: func(t *caseT, newLimiter func(int) protocols.RateLimiter) {
			l := newLimiter(50)
			a := acquireRoute(t, l, createMessage(1))
			mustAdmit(t, "RateLimiter.Acquire", a)
			a.complete(tooMany(protocols.ScopeGlobal, "", 0, 0, 2*time.Second))
			until := time.Now().Add(2 * time.Second)
			var as []*permitAttempt
			routes := []protocols.Route{createMessage(2), getGuild(9), deleteMessage(3, 30), createMessage(1)}
			for _, r := range routes {
				as = append(as, acquireRoute(t, l, r))
			}
			admitEach(t, func(i int) string {
				return fmt.Sprintf("RateLimiter.Acquire(%v) after a global 429 with RetryAfter 2s", routes[i])
			}, as, until, func(int) protocols.RateLimitInfo { return protocols.RateLimitInfo{Status: 200} }, true)
		},
	},
	{
		name: "User429PausesOnlyItsBucket",
		rule: ruleGlobal429,
		run: func(t *caseT, newLimiter func(int) protocols.RateLimiter) {
			l := newLimiter(50)
			a := acquireRoute(t, l, createMessage(1))
			mustAdmit(t, "RateLimiter.Acquire", a)
			a.complete(tooMany(protocols.ScopeUser, "create", 5, 0, 2*time.Second))
			until := time.Now().Add(2 * time.Second)
			for _, r := range []protocols.Route{createMessage(2), getGuild(9), deleteMessage(1, 10)} {
				b := acquireRoute(t, l, r)
				mustAdmit(t, fmt.Sprintf("RateLimiter.Acquire(%v) after a user 429 on POST /channels/1/messages", r), b)
				b.complete(protocols.RateLimitInfo{Status: 200})
			}
			c := acquireRoute(t, l, createMessage(1))
			if notBefore(t, "RateLimiter.Acquire (the route that got a user 429 with RetryAfter 2s)", c, until) {
				c.complete(ok200("create", 5, 4, 5*time.Second))
			}
		},
	},
	{
		name: "Shared429PausesOnlyItsBucket",
		rule: ruleBucket429,
		run: func(t *caseT, newLimiter func(int) protocols.RateLimiter) {
			l := newLimiter(50)
			a := acquireRoute(t, l, createMessage(1))
			mustAdmit(t, "RateLimiter.Acquire", a)
			info := tooMany(protocols.ScopeShared, "create", 5, 3, 2*time.Second)
			info.ResetAfter = 500 * time.Millisecond
			a.complete(info)
			until := time.Now().Add(2 * time.Second)
			b := acquireRoute(t, l, createMessage(2))
			mustAdmit(t, "RateLimiter.Acquire (another channel, after a shared 429 on channel 1)", b)
			b.complete(ok200("create", 5, 4, 5*time.Second))
			c := acquireRoute(t, l, createMessage(1))
			if notBefore(t, "RateLimiter.Acquire (the route that got a shared 429 with Remaining 3, RetryAfter 2s)", c, until) {
				c.complete(ok200("create", 5, 4, 5*time.Second))
			}
		},
	},
	{
		name: "Cloudflare429PausesEveryRoute",
		rule: ruleCloudflare,
		run: func(t *caseT, newLimiter func(int) protocols.RateLimiter) {
			l := newLimiter(50)
			a := acquireRoute(t, l, createMessage(1))
			mustAdmit(t, "RateLimiter.Acquire", a)
			a.complete(tooMany(protocols.ScopeCloudflare, "", 0, 0, 5*time.Second))
			until := time.Now().Add(5 * time.Second)
			routes := []protocols.Route{createMessage(2), getGuild(9), interactionCallback(7)}
			var as []*permitAttempt
			for _, r := range routes {
				as = append(as, acquireRoute(t, l, r))
			}
			admitEach(t, func(i int) string {
				return fmt.Sprintf("RateLimiter.Acquire(%v) after a Cloudflare 429 with RetryAfter 5s", routes[i])
			}, as, until, func(int) protocols.RateLimitInfo { return protocols.RateLimitInfo{Status: 200} }, true)
		},
	},
	{
		name: "CancelReleasesGlobalToken",
		rule: ruleCancelToken,
		run: func(t *caseT, newLimiter func(int) protocols.RateLimiter) {
			const global = 5
			l := newLimiter(global)
			held := holdGlobal(t, l, global, 1)
			next := acquireRoute(t, l, getGuild(100))
			settle()
			held[0].cancelPermit()
			if !next.await(time.Now().Add(lateness)) || next.err != nil {
				t.Errorf("RateLimiter.Acquire: not admitted by %s after one of %d held permits was cancelled at %s, want admitted at once with its global token",
					t.since(time.Now()), global, t.since(time.Now().Add(-lateness)))
			}
			next.cancelPermit()
			for _, h := range held[1:] {
				h.cancelPermit()
			}
		},
	},
	{
		name: "PermitFinishesOnce",
		rule: rulePermitOnce,
		run: func(t *caseT, newLimiter func(int) protocols.RateLimiter) {
			const global = 2
			l := newLimiter(global)
			held := holdGlobal(t, l, global, 1)
			held[0].v.Cancel()
			held[0].v.Cancel()
			held[0].v.Complete(protocols.RateLimitInfo{Status: 200})
			third := acquireRoute(t, l, getGuild(100))
			mustAdmit(t, "RateLimiter.Acquire (after a permit was cancelled)", third)
			fourth := acquireRoute(t, l, getGuild(101))
			mustWait(t, "RateLimiter.Acquire (fourth request, global limit 2)",
				"two permits hold the two global tokens; the first permit's extra Cancel and Complete must have been ignored", fourth.attempt)
			held[1].cancelPermit()
			third.cancelPermit()
			if fourth.await(time.Now().Add(lateness)) {
				fourth.cancelPermit()
			}
		},
	},
	{
		name: "AcquireHonorsCanceledContext",
		rule: ruleLimiterCtx,
		run: func(t *caseT, newLimiter func(int) protocols.RateLimiter) {
			l := newLimiter(2)
			ctx, cancel := context.WithCancel(t.ctx)
			cancel()
			pre := acquireRouteCtx(t, ctx, l, getGuild(50))
			ctxError(t, "RateLimiter.Acquire (context cancelled before the call)", pre.attempt, time.Now().Add(lateness), context.Canceled)
			pre.cancelPermit()

			// Waiting on a bucket.
			a := acquireRoute(t, l, createMessage(1))
			mustAdmit(t, "RateLimiter.Acquire", a)
			a.complete(ok200("create", 5, 0, 30*time.Second))
			ctx, cancel = context.WithCancel(t.ctx)
			w := acquireRouteCtx(t, ctx, l, createMessage(1))
			time.Sleep(time.Second)
			mustWait(t, "RateLimiter.Acquire", "its bucket has Remaining 0 until +30s", w.attempt)
			cancel()
			ctxError(t, "RateLimiter.Acquire (context cancelled while waiting for a bucket)", w.attempt, time.Now().Add(lateness), context.Canceled)

			// Waiting on the global limit.
			time.Sleep(2 * time.Second) // the first request's token comes back
			held := holdGlobal(t, l, 2, 1)
			ctx, cancel = context.WithCancel(t.ctx)
			g := acquireRouteCtx(t, ctx, l, getGuild(60))
			time.Sleep(100 * time.Millisecond)
			mustWait(t, "RateLimiter.Acquire", "both global tokens are held", g.attempt)
			cancel()
			ctxError(t, "RateLimiter.Acquire (context cancelled while waiting for a global token)", g.attempt, time.Now().Add(lateness), context.Canceled)
			g.cancelPermit()
			for _, h := range held {
				h.cancelPermit()
			}
		},
	},
	{
		name: "AcquireHonorsDeadline",
		rule: ruleLimiterCtx,
		run: func(t *caseT, newLimiter func(int) protocols.RateLimiter) {
			l := newLimiter(2)
			a := acquireRoute(t, l, createMessage(1))
			mustAdmit(t, "RateLimiter.Acquire", a)
			a.complete(ok200("create", 5, 0, 30*time.Second))
			ctx, cancel := context.WithTimeout(t.ctx, time.Second)
			defer cancel()
			w := acquireRouteCtx(t, ctx, l, createMessage(1))
			ctxError(t, "RateLimiter.Acquire (deadline 1s, bucket resets in 30s)", w.attempt, time.Now().Add(time.Second+lateness), context.DeadlineExceeded)

			time.Sleep(time.Second) // the first request's token comes back
			held := holdGlobal(t, l, 2, 1)
			ctx, cancel = context.WithTimeout(t.ctx, 300*time.Millisecond)
			defer cancel()
			g := acquireRouteCtx(t, ctx, l, getGuild(60))
			mustWait(t, "RateLimiter.Acquire", "both global tokens are held", g.attempt)
			ctxError(t, "RateLimiter.Acquire (deadline 300ms, every global token held)", g.attempt, time.Now().Add(300*time.Millisecond+lateness), context.DeadlineExceeded)
			g.cancelPermit()
			for _, h := range held {
				h.cancelPermit()
			}
		},
	},
	{
		name: "FailedAcquireHoldsNothing",
		rule: ruleNothingHeld,
		run: func(t *caseT, newLimiter func(int) protocols.RateLimiter) {
			l := newLimiter(2)
			held := holdGlobal(t, l, 2, 1)
			ctx, cancel := context.WithTimeout(t.ctx, 300*time.Millisecond)
			defer cancel()
			failed := acquireRouteCtx(t, ctx, l, createMessage(7))
			if !failed.await(time.Now().Add(time.Second)) || failed.err == nil {
				failed.cancelPermit()
				for _, h := range held {
					h.cancelPermit()
				}
				return // AcquireHonorsDeadline reports this
			}
			for _, h := range held {
				h.cancelPermit()
			}
			for _, r := range []protocols.Route{createMessage(7), getGuild(50)} {
				a := acquireRoute(t, l, r)
				if !a.await(time.Now().Add(lateness)) || a.err != nil {
					t.Errorf("RateLimiter.Acquire(%v): not admitted by %s after an Acquire of channel 7 failed at %s and every permit was cancelled, want admitted at once",
						r, t.since(time.Now()), t.since(failed.at))
					return
				}
				a.cancelPermit()
			}
		},
	},
	{
		name: "CloseWakesWaiters",
		rule: ruleLimiterClose,
		run: func(t *caseT, newLimiter func(int) protocols.RateLimiter) {
			l := newLimiter(1)
			a := acquireRoute(t, l, createMessage(1))
			mustAdmit(t, "RateLimiter.Acquire", a)
			bucketWaiter := acquireRoute(t, l, createMessage(1)) // the bucket's slot is held
			globalWaiter := acquireRoute(t, l, getGuild(2))      // the only global token is held
			time.Sleep(time.Second)
			mustWait(t, "RateLimiter.Acquire (same route)", "the route's only slot is held and its limit is not known", bucketWaiter.attempt)
			mustWait(t, "RateLimiter.Acquire (another route)", "the only global token is held", globalWaiter.attempt)
			if err := l.Close(); err != nil {
				t.Errorf("RateLimiter.Close: got %v, want nil", err)
			}
			closed := time.Now()
			ctxError(t, "RateLimiter.Acquire (waiting for a bucket when the limiter closed)", bucketWaiter.attempt, closed.Add(lateness), protocols.ErrClosed)
			ctxError(t, "RateLimiter.Acquire (waiting for a global token when the limiter closed)", globalWaiter.attempt, closed.Add(lateness), protocols.ErrClosed)
			a.complete(ok200("create", 5, 4, time.Second)) // after Close: must not panic
			after := acquireRoute(t, l, createMessage(3))
			ctxError(t, "RateLimiter.Acquire (after Close)", after.attempt, time.Now().Add(lateness), protocols.ErrClosed)
			if err := callClose(l); err != nil {
				t.Errorf("RateLimiter.Close (second call): got %v, want nil", err)
			}
		},
	},
	{
		name: "SameHashIndependentLimitsNoDeadlock",
		rule: ruleSameHashCounter,
		run: func(t *caseT, newLimiter func(int) protocols.RateLimiter) {
			l := newLimiter(50)
			a, b := getGuild(1), getGuildChannels(1)
			// One hash, two counters, as discord-api-docs issue 8073 reports.
			s := newSim(50, map[string]simSpec{
				a.Endpoint(): {hash: "guild-read", group: "get-guild", limit: 5, window: time.Second},
				b.Endpoint(): {hash: "guild-read", group: "get-guild-channels", limit: 5, window: time.Second},
			})
			const each = 25
			var jobs []protocols.Route
			for range each {
				jobs = append(jobs, a, b)
			}
			res := runLoad(t, l, s, jobs, 8, 20*time.Millisecond)
			res.reportErrs(t, "RateLimiter.Acquire")
			// One shared bucket of 5/s would need 2*each/5 windows.
			want := time.Duration(2*each/5)*time.Second*5/4 + time.Second
			if res.elapsed > want {
				t.Errorf("RateLimiter: %d requests to two routes that share a hash but not a counter took %v, want at most %v (the time one shared 5/s bucket needs, plus 25%%)",
					2*each, res.elapsed, want)
			}
			if bad := s.violations(); len(bad) > 0 {
				t.Errorf("RateLimiter: got %d requests Discord would have refused with 429, want 0; first: %s", len(bad), bad[0])
			}
		},
	},
	{
		name: "SteadyStreamEarnsNo429",
		rule: ruleSteady,
		run: func(t *caseT, newLimiter func(int) protocols.RateLimiter) {
			l := newLimiter(50)
			r := createMessage(1)
			const n, limit, window, latency = 1000, 5, time.Second, 50 * time.Millisecond
			s := newSim(50, map[string]simSpec{r.Endpoint(): {hash: "create", limit: limit, window: window}})
			jobs := make([]protocols.Route, n)
			for i := range jobs {
				jobs[i] = r
			}
			res := runLoad(t, l, s, jobs, 8, latency)
			res.reportErrs(t, "RateLimiter.Acquire")
			if bad := s.violations(); len(bad) > 0 {
				t.Errorf("RateLimiter: got %d requests Discord would have refused with 429, want 0; first: %s", len(bad), bad[0])
			}
			best := time.Duration(n/limit-1)*window + latency
			t.Logf("%d requests took %v; theoretical minimum %v", n, res.elapsed, best)
			if want := best * 5 / 4; res.elapsed > want {
				t.Errorf("RateLimiter: %d requests to one bucket of %d per %v with %v latency took %v, want at most %v (theoretical minimum %v, plus 25%%)",
					n, limit, window, latency, res.elapsed, want, best)
			}
		},
	},
	{
		name: "ConcurrentSafeAcquire",
		rule: ruleEnforces,
		run: func(t *caseT, newLimiter func(int) protocols.RateLimiter) {
			l := newLimiter(50)
			specs := map[string]simSpec{
				createMessage(0).Endpoint():    {hash: "create", limit: 5, window: 2 * time.Second},
				deleteMessage(0, 0).Endpoint(): {hash: "delete", limit: 3, window: time.Second},
				getGuild(0).Endpoint():         {hash: "guild", limit: 5, window: time.Second},
			}
			// Four endpoints sharing one hash and one counter per channel.
			for _, e := range []string{"PUT", "DELETE", "GET"} {
				r := mustRoute(e, "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", "0", "0", "x")
				if e == "GET" {
					r = mustRoute(e, "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}", "0", "0", "x")
				}
				specs[r.Endpoint()] = simSpec{hash: "reactions", limit: 1, window: 250 * time.Millisecond}
			}
			r := mustRoute("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/{user_id}", "0", "0", "x", "9")
			specs[r.Endpoint()] = simSpec{hash: "reactions", limit: 1, window: 250 * time.Millisecond}
			s := newSim(50, specs)
			// Discord names shared buckets only in responses: meet each
			// endpoint once, alone, before the concurrent load.
			for _, r := range []protocols.Route{
				mustRoute("POST", "/channels/{channel_id}/messages", "99"),
				mustRoute("DELETE", "/channels/{channel_id}/messages/{message_id}", "99", "1"),
				mustRoute("GET", "/guilds/{guild_id}", "99"),
				mustRoute("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", "99", "1", "x"),
				mustRoute("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", "99", "1", "x"),
				mustRoute("GET", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}", "99", "1", "x"),
			} {
				runLoad(t, l, s, []protocols.Route{r}, 1, 15*time.Millisecond).reportErrs(t, "RateLimiter.Acquire")
				time.Sleep(time.Second)
			}
			var jobs []protocols.Route
			seed := uint32(1)
			for i := range 600 {
				seed = seed*1664525 + 1013904223
				ch, msg := strconv.Itoa(int(seed>>8)%5+1), strconv.Itoa(i)
				var r protocols.Route
				switch (seed >> 16) % 8 {
				case 0, 1:
					r = mustRoute("POST", "/channels/{channel_id}/messages", ch)
				case 2:
					r = mustRoute("DELETE", "/channels/{channel_id}/messages/{message_id}", ch, msg)
				case 3:
					r = mustRoute("GET", "/guilds/{guild_id}", ch)
				case 4:
					r = mustRoute("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", ch, msg, "x")
				case 5:
					r = mustRoute("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", ch, msg, "x")
				case 6:
					r = mustRoute("GET", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}", ch, msg, "x")
				default:
					r = interactionCallback(i)
				}
				jobs = append(jobs, r)
			}
			res := runLoad(t, l, s, jobs, 32, 15*time.Millisecond)
			res.reportErrs(t, "RateLimiter.Acquire")
			if bad := s.violations(); len(bad) > 0 {
				t.Errorf("RateLimiter: got %d requests Discord would have refused with 429, want 0; first: %s", len(bad), bad[0])
			}
		},
	},
	{
		name: "ConcurrentBucketsAdmitUpToRemaining",
		rule: ruleConcurrent,
		run: func(t *caseT, newLimiter func(int) protocols.RateLimiter) {
			l := newLimiter(50)
			if c, ok := l.(protocols.ConcurrentBuckets); !ok || !c.ConcurrentBuckets() {
				t.Skip("the limiter does not implement protocols.ConcurrentBuckets, or reports it off")
			}
			r := createMessage(1)
			first := acquireRoute(t, l, r)
			mustAdmit(t, "RateLimiter.Acquire (first request of a route)", first)
			first.complete(ok200("create", 5, 3, 10*time.Second))
			reset := time.Now().Add(10 * time.Second)
			const n = 6
			var as []*permitAttempt
			for range n {
				as = append(as, acquireRoute(t, l, r))
			}
			time.Sleep(time.Second)
			settle()
			var in, out []*permitAttempt
			for _, a := range as {
				if a.ok() {
					in = append(in, a)
				} else {
					out = append(out, a)
				}
			}
			if len(in) != 3 {
				t.Errorf("RateLimiter.Acquire: %d of %d requests of one bucket admitted at once, with none completed, after a response with Remaining 3 and a reset in 10s; want 3",
					len(in), n)
				return
			}
			// The responses come back in the reverse of the order Discord
			// counted them: the last to arrive says Remaining 2, which was
			// true only before the others arrived.
			for i, a := range in {
				a.complete(ok200("create", 5, i, time.Until(reset)))
			}
			for time.Now().Before(reset) {
				settle()
				for _, a := range out {
					if a.ok() {
						t.Fatalf("RateLimiter.Acquire: a request admitted at %s, want none before the reset at %s: the bucket's 3 remaining requests were all sent (the last response to arrive said Remaining 2, but it answered the first request Discord counted)",
							t.since(a.at), t.since(reset))
					}
				}
				time.Sleep(100 * time.Millisecond)
			}
			// After the reset the bucket admits again.
			done := make([]bool, len(out))
			i := nextAdmitted(out, done, reset.Add(lateness))
			if i < 0 || out[i].err != nil {
				t.Errorf("RateLimiter.Acquire: no request admitted by %s, want one when the reset passes at %s", t.since(reset.Add(lateness)), t.since(reset))
				return
			}
			out[i].complete(ok200("create", 5, 4, 10*time.Second))
		},
	},
}
