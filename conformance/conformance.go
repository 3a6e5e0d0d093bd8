package conformance

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cordkit/cordkit/protocols"
)

// Options changes how a suite runs. The zero Options runs every subtest;
// the package-level functions such as [TestBucket] use it.
//
// One Options may be given to several suites: each skips the excluded
// names that are among its own subtests, so a name that several suites
// share (such as AcquireHonorsDeadline) is excluded from each of them.
type Options struct {
	// Exclude names subtests that the implementation deliberately does not
	// pass, each with the reason: subtest name (such as
	// "UnknownLimitAdmitsOneAtATime") → why. An excluded subtest is skipped
	// with t.Skipf("excluded: <reason>"), so it shows in -v output and is
	// never passed silently. A name that is no subtest of any suite in this
	// package fails the test, so that a typo or a renamed rule cannot hide
	// an exclusion.
	Exclude map[string]string
	// ZstdStream says that the shards under test can inflate zstd-stream
	// (their ShardParams.NewInflater supports [protocols.CompressZstdStream]):
	// TestShard then runs its zstd-stream cases, which are skipped
	// otherwise. [Run] sets it when the TypeSheet's NewInflater accepts
	// zstd-stream.
	ZstdStream bool
	// NewDialer, when set, builds the websocket Dialer that TestShard and
	// TestGateway hand the implementation (under their recording) from
	// netDial, which reaches the mock in memory; nil means the suites'
	// own. It checks a websocket client with the shards that use it:
	//
	//	conformance.Options{NewDialer: func(nd …) protocols.Dialer {
	//		return &mydialer.Dialer{NetDial: nd}
	//	}}.TestShard(t, newShard)
	NewDialer func(netDial func(ctx context.Context, network, addr string) (net.Conn, error)) protocols.Dialer
}

// rule is one case of a suite: a stable CamelCase name that exclusion
// lists refer to, the contract sentence it checks (quoted verbatim from a
// doc comment in package protocols), and the check itself.
type rule[F any] struct {
	name string
	rule string
	run  func(t *caseT, f F)
}

// caseT is the *testing.T a case runs with: Errorf and Fatalf append the
// case's rule, so that every failure reads
// `Bucket.Acquire: got …, want …; rule: "<sentence>"`.
type caseT struct {
	*testing.T
	rule string
	// start is the bubble's time when the case began; offsets in messages
	// are relative to it.
	start time.Time
	// ctx ends when the case ends; background calls use it so that
	// nothing outlives the bubble.
	ctx context.Context
	// newDialer is Options.NewDialer.
	newDialer func(netDial func(ctx context.Context, network, addr string) (net.Conn, error)) protocols.Dialer
}

// Errorf reports a failure, quoting the rule.
func (t *caseT) Errorf(format string, args ...any) {
	t.Helper()
	t.T.Errorf("%s; rule: %q", fmt.Sprintf(format, args...), t.rule)
}

// Fatalf reports a failure, quoting the rule, and stops the case.
func (t *caseT) Fatalf(format string, args ...any) {
	t.Helper()
	t.T.Fatalf("%s; rule: %q", fmt.Sprintf(format, args...), t.rule)
}

// since formats the bubble time at as an offset from the case's start.
func (t *caseT) since(at time.Time) string {
	if at.IsZero() {
		return "never"
	}
	return "+" + at.Sub(t.start).String()
}

// runRules runs every case of a suite as a subtest, each inside its own
// synctest bubble, honouring o.Exclude.
func runRules[F any](t *testing.T, o Options, suite string, rules []rule[F], f func(t *testing.T) F) {
	t.Helper()
	o.checkExcludes(t, suite)
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			if reason, ok := o.Exclude[r.name]; ok {
				t.Skipf("excluded: %s", reason)
			}
			skipped := false
			synctest.Test(t, func(t *testing.T) {
				defer func() { skipped = t.Skipped() }()
				ctx, cancel := context.WithCancel(t.Context())
				t.Cleanup(cancel)
				ct := &caseT{T: t, rule: r.rule, start: time.Now(), ctx: ctx, newDialer: o.NewDialer}
				r.run(ct, f(t))
			})
			if skipped {
				// A skip inside the bubble (an optional interface the
				// implementation lacks) does not reach the subtest.
				t.SkipNow()
			}
		})
	}
}

// checkExcludes fails t when an excluded name is no subtest of any suite.
func (o Options) checkExcludes(t *testing.T, suite string) {
	t.Helper()
	var unknown []string
	for name := range o.Exclude {
		if !knownNames()[name] {
			unknown = append(unknown, name)
		}
	}
	sort.Strings(unknown)
	if len(unknown) > 0 {
		t.Errorf("conformance.%s: Options.Exclude names no subtest of any suite: %s", suite, strings.Join(unknown, ", "))
	}
}

// knownNames returns every subtest name of every suite.
func knownNames() map[string]bool {
	names := make(map[string]bool)
	for _, r := range allRules() {
		names[r.Name] = true
	}
	return names
}

// ruleInfo describes one case for the package's own tests.
type ruleInfo struct {
	Suite, Name, Rule string
}

func infos[F any](suite string, rules []rule[F]) []ruleInfo {
	out := make([]ruleInfo, len(rules))
	for i, r := range rules {
		out[i] = ruleInfo{suite, r.name, r.rule}
	}
	return out
}

// allRules lists the cases of every suite, in order.
func allRules() []ruleInfo {
	var out []ruleInfo
	out = append(out, infos("TestBucket", bucketRules)...)
	out = append(out, infos("TestRateLimiter", limiterRules)...)
	out = append(out, infos("TestHTTPClient", httpRules)...)
	out = append(out, gatewayRules()...)
	out = append(out, infos("TestShard", shardRules)...)
	out = append(out, infos("TestGateway", gatewayManagerRules)...)
	return out
}

// attempt is one Acquire (or Do) running in its own goroutine.
type attempt[P any] struct {
	done   chan struct{}
	cancel context.CancelFunc
	// Set before done is closed.
	v   P
	err error
	at  time.Time
}

// start runs fn in a new goroutine with a context that ends when the case
// ends or a.cancel is called.
func start[P any](t *caseT, fn func(ctx context.Context) (P, error)) *attempt[P] {
	return startCtx(t, t.ctx, fn)
}

// startCtx is start with a parent context other than the case's.
func startCtx[P any](t *caseT, parent context.Context, fn func(ctx context.Context) (P, error)) *attempt[P] {
	ctx, cancel := context.WithCancel(parent)
	a := &attempt[P]{done: make(chan struct{}), cancel: cancel}
	t.Cleanup(cancel)
	go func() {
		defer close(a.done)
		a.v, a.err = fn(ctx)
		a.at = time.Now()
	}()
	return a
}

// finished reports, without waiting, whether the call has returned. Call it
// after synctest.Wait.
func (a *attempt[P]) finished() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

// ok reports, without waiting, whether the call has returned without error.
func (a *attempt[P]) ok() bool { return a.finished() && a.err == nil }

// await waits until the call returns or the bubble clock reaches by, and
// reports whether it returned.
func (a *attempt[P]) await(by time.Time) bool {
	d := time.Until(by)
	if d < 0 {
		d = 0
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-a.done:
		return true
	case <-timer.C:
		synctest.Wait()
		return a.finished()
	}
}

// permitAttempt is an Acquire in flight.
type permitAttempt struct{ *attempt[protocols.Permit] }

// startAcquire runs acquire in its own goroutine with the case's context.
func startAcquire(t *caseT, acquire func(ctx context.Context) (protocols.Permit, error)) *permitAttempt {
	return &permitAttempt{start(t, acquire)}
}

// complete finishes the permit of a successful attempt with info.
func (a *permitAttempt) complete(info protocols.RateLimitInfo) {
	if a.finished() && a.err == nil && a.v != nil {
		a.v.Complete(info)
	}
}

// cancelPermit cancels the permit of a successful attempt.
func (a *permitAttempt) cancelPermit() {
	if a.finished() && a.err == nil && a.v != nil {
		a.v.Cancel()
	}
}

// settle waits until every goroutine of the bubble is blocked, so that the
// state of attempts can be read.
func settle() { synctest.Wait() }

// ok200 is a successful response carrying the given limits.
func ok200(hash string, limit, remaining int, resetAfter time.Duration) protocols.RateLimitInfo {
	return protocols.RateLimitInfo{
		Status:     200,
		Bucket:     hash,
		HasLimit:   true,
		Limit:      limit,
		Remaining:  remaining,
		ResetAfter: resetAfter,
	}
}

// tooMany is a 429 of scope with RetryAfter retry; user and shared 429s
// carry the bucket's headers, global and Cloudflare ones none.
func tooMany(scope protocols.Scope, hash string, limit, remaining int, retry time.Duration) protocols.RateLimitInfo {
	info := protocols.RateLimitInfo{Status: 429, Scope: scope, RetryAfter: retry}
	if scope == protocols.ScopeUser || scope == protocols.ScopeShared {
		info.Bucket, info.HasLimit, info.Limit, info.Remaining, info.ResetAfter = hash, true, limit, remaining, retry
	}
	return info
}

// nextAdmitted waits until by for an attempt of as not marked in done to
// return, marks it and returns its index, or -1.
func nextAdmitted(as []*permitAttempt, done []bool, by time.Time) int {
	for {
		settle()
		for i, a := range as {
			if !done[i] && a.finished() {
				done[i] = true
				return i
			}
		}
		if !time.Now().Before(by) {
			return -1
		}
		time.Sleep(time.Millisecond)
	}
}
