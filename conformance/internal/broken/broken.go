// Package broken holds deliberately wrong implementations of the protocols
// interfaces, used to test the conformance suite itself: each one must make
// the suite fail, and the subtests it must fail are named in its doc.
//
// Every type here is a decorator over a correct implementation, built from
// the protocols interfaces only, so that one bug is added at a time and the
// package imports no implementation. Bucket decorators forward the
// optional [protocols.BucketUpdater]. None is fit for any other use.
package broken

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/cordkit/cordkit/protocols"
)

// infoBucket rewrites what every response says before the bucket learns it.
type infoBucket struct {
	next    protocols.Bucket
	rewrite func(info protocols.RateLimitInfo, admitted time.Time) protocols.RateLimitInfo
}

func (b *infoBucket) Acquire(ctx context.Context) (protocols.Permit, error) {
	p, err := b.next.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	return &infoPermit{next: p, rewrite: b.rewrite, admitted: time.Now()}, nil
}

func (b *infoBucket) Close() error { return b.next.Close() }

func (b *infoBucket) Update(info protocols.RateLimitInfo) {
	update(b.next, b.rewrite(info, time.Now()))
}

// update forwards info to b when it is a [protocols.BucketUpdater].
func update(b protocols.Bucket, info protocols.RateLimitInfo) {
	if u, ok := b.(protocols.BucketUpdater); ok {
		u.Update(info)
	}
}

type infoPermit struct {
	next     protocols.Permit
	rewrite  func(info protocols.RateLimitInfo, admitted time.Time) protocols.RateLimitInfo
	admitted time.Time
}

func (p *infoPermit) Complete(info protocols.RateLimitInfo) {
	p.next.Complete(p.rewrite(info, p.admitted))
}

func (p *infoPermit) Cancel() { p.next.Cancel() }

// IgnoreRemaining believes every window is fresh: it reports Remaining as
// Limit. It breaks "A bucket admits no request while Remaining from the
// latest response is zero and its reset has not passed." and fails
// TestBucket/ZeroRemainingBlocksUntilReset.
func IgnoreRemaining(next protocols.Bucket) protocols.Bucket {
	return &infoBucket{next: next, rewrite: func(info protocols.RateLimitInfo, _ time.Time) protocols.RateLimitInfo {
		if info.HasLimit {
			info.Remaining = info.Limit
		}
		return info
	}}
}

// TruncateResetAfter cuts X-RateLimit-Reset-After down to whole seconds,
// as disgo v0.18 does (1.5 s becomes 1 s, 0.25 s becomes 0). It breaks
// "ResetAfter is X-RateLimit-Reset-After, to the millisecond." and fails
// TestBucket/ResetAfterIsFractional; behind an HTTP client it earns 429s
// (TestHTTPClient/OneBucketThroughputNearMinimum).
func TruncateResetAfter(next protocols.Bucket) protocols.Bucket {
	return &infoBucket{next: next, rewrite: func(info protocols.RateLimitInfo, _ time.Time) protocols.RateLimitInfo {
		info.ResetAfter = info.ResetAfter.Truncate(time.Second)
		return info
	}}
}

// ResetFromAdmission counts ResetAfter from the moment the request was
// admitted instead of from the response's arrival. It breaks "ResetAfter
// is counted from the moment the response arrived." and fails
// TestBucket/ResetAfterCountedFromArrival.
func ResetFromAdmission(next protocols.Bucket) protocols.Bucket {
	return &infoBucket{next: next, rewrite: func(info protocols.RateLimitInfo, admitted time.Time) protocols.RateLimitInfo {
		info.ResetAfter -= time.Since(admitted)
		if info.ResetAfter < 0 {
			info.ResetAfter = 0
		}
		return info
	}}
}

// Ignore429 treats a 429 of user or shared scope as a success with the
// same headers. It breaks "A 429 of user or shared scope pauses the bucket
// for RetryAfter." and fails TestBucket/Shared429PausesBucket.
func Ignore429(next protocols.Bucket) protocols.Bucket {
	return &infoBucket{next: next, rewrite: func(info protocols.RateLimitInfo, _ time.Time) protocols.RateLimitInfo {
		if info.Limited() && (info.Scope == protocols.ScopeUser || info.Scope == protocols.ScopeShared) {
			info.Status, info.Scope, info.RetryAfter = http.StatusOK, "", 0
		}
		return info
	}}
}

// IgnoreUpdate has a BucketUpdater's Update that does nothing. It breaks
// "Update applies a response to the bucket as [Permit.Complete] does, but
// without a permit, so no slot is released." and fails
// TestBucket/UpdateTeachesWithoutReleasing; behind the reference
// RateLimiter it fails TestRateLimiter/SharedHashSharesBucket.
func IgnoreUpdate(next protocols.Bucket) protocols.Bucket { return &forgetfulBucket{next} }

type forgetfulBucket struct{ protocols.Bucket }

func (b *forgetfulBucket) Update(protocols.RateLimitInfo) {}

// CancelLeaks never finishes a cancelled permit, so its slot stays taken.
// It breaks "Cancel releases the permit's slot." and fails
// TestBucket/CancelReleasesSlot.
func CancelLeaks(next protocols.Bucket) protocols.Bucket { return &leakyBucket{next: next} }

type leakyBucket struct{ next protocols.Bucket }

func (b *leakyBucket) Acquire(ctx context.Context) (protocols.Permit, error) {
	p, err := b.next.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	return leakyPermit{p}, nil
}

func (b *leakyBucket) Close() error { return b.next.Close() }

func (b *leakyBucket) Update(info protocols.RateLimitInfo) { update(b.next, info) }

type leakyPermit struct{ next protocols.Permit }

func (p leakyPermit) Complete(info protocols.RateLimitInfo) { p.next.Complete(info) }
func (p leakyPermit) Cancel()                               {}

// IgnoreContext waits without the caller's context. It breaks "Acquire
// returns promptly with an error wrapping ctx.Err() when ctx ends." and
// fails TestBucket/AcquireHonorsCanceledContext and
// TestBucket/AcquireHonorsDeadline.
func IgnoreContext(next protocols.Bucket) protocols.Bucket { return &deafBucket{next: next} }

type deafBucket struct{ next protocols.Bucket }

func (b *deafBucket) Acquire(ctx context.Context) (protocols.Permit, error) {
	return b.next.Acquire(context.WithoutCancel(ctx))
}

func (b *deafBucket) Close() error { return b.next.Close() }

func (b *deafBucket) Update(info protocols.RateLimitInfo) { update(b.next, info) }

// LeakOnDeadline reproduces disgo v0.18's lock leak: when Acquire fails on
// its context, the bucket's slot is taken anyway and never given back. It
// breaks "Nothing is held when Acquire returns an error." and fails
// TestBucket/FailedAcquireHoldsNothing.
func LeakOnDeadline(next protocols.Bucket) protocols.Bucket { return &lockLeakBucket{next: next} }

type lockLeakBucket struct{ next protocols.Bucket }

func (b *lockLeakBucket) Acquire(ctx context.Context) (protocols.Permit, error) {
	p, err := b.next.Acquire(ctx)
	if err != nil && ctx.Err() != nil {
		// Take the slot behind the caller's back and keep it; Close ends
		// the wait.
		go func() { _, _ = b.next.Acquire(context.Background()) }()
	}
	return p, err
}

func (b *lockLeakBucket) Close() error { return b.next.Close() }

func (b *lockLeakBucket) Update(info protocols.RateLimitInfo) { update(b.next, info) }

// CloseIgnored does nothing on Close. It breaks "Close wakes every waiter
// with [ErrClosed]." and fails TestBucket/CloseWakesWaiters and
// TestBucket/AcquireAfterCloseFails.
func CloseIgnored(next protocols.Bucket) protocols.Bucket { return &stubbornBucket{next: next} }

type stubbornBucket struct{ next protocols.Bucket }

func (b *stubbornBucket) Acquire(ctx context.Context) (protocols.Permit, error) {
	return b.next.Acquire(ctx)
}

func (b *stubbornBucket) Close() error { return nil }

func (b *stubbornBucket) Update(info protocols.RateLimitInfo) { update(b.next, info) }

// NoGlobalLimit changes the parameters of a RateLimiter so that it has no
// global limit, whatever GlobalLimit the caller asked for. It breaks "At
// most the global limit of non-exempt requests complete within any one
// second; exempt routes never wait for it." and fails
// TestRateLimiter/GlobalLimitIsProactive and
// TestHTTPClient/FiftyBucketsStayUnderGlobalLimit.
func NoGlobalLimit(p protocols.RateLimiterParams) protocols.RateLimiterParams {
	p.GlobalLimit = -1
	return p
}

// infoLimiter rewrites what every response says before the limiter learns
// it, and may rewrite the route and the Cancel.
type infoLimiter struct {
	next    protocols.RateLimiter
	route   func(protocols.Route) protocols.Route
	rewrite func(protocols.RateLimitInfo) protocols.RateLimitInfo
	cancel  func(next protocols.Permit)
}

func (l *infoLimiter) Acquire(ctx context.Context, r protocols.Route) (protocols.Permit, error) {
	if l.route != nil {
		r = l.route(r)
	}
	p, err := l.next.Acquire(ctx, r)
	if err != nil {
		return nil, err
	}
	return &limiterPermit{next: p, l: l}, nil
}

func (l *infoLimiter) Close() error { return l.next.Close() }

type limiterPermit struct {
	next protocols.Permit
	l    *infoLimiter
}

func (p *limiterPermit) Complete(info protocols.RateLimitInfo) {
	if p.l.rewrite != nil {
		info = p.l.rewrite(info)
	}
	p.next.Complete(info)
}

func (p *limiterPermit) Cancel() {
	if p.l.cancel != nil {
		p.l.cancel(p.next)
		return
	}
	p.next.Cancel()
}

// IgnoreGlobal429 treats a global 429 as a plain success, so every route
// keeps sending: the retry storm disgo v0.18 makes. It breaks "A global
// 429 pauses every route for RetryAfter; a user 429 pauses only its
// bucket." and fails TestRateLimiter/Global429PausesEveryRoute and
// TestHTTPClient/Global429PausesEveryRoute.
func IgnoreGlobal429(next protocols.RateLimiter) protocols.RateLimiter {
	return &infoLimiter{next: next, rewrite: func(info protocols.RateLimitInfo) protocols.RateLimitInfo {
		if info.Limited() && info.Scope == protocols.ScopeGlobal {
			return protocols.RateLimitInfo{Status: http.StatusOK}
		}
		return info
	}}
}

// User429AsGlobal pauses every route on a user 429. It breaks "A global
// 429 pauses every route for RetryAfter; a user 429 pauses only its
// bucket." and fails TestRateLimiter/User429PausesOnlyItsBucket.
func User429AsGlobal(next protocols.RateLimiter) protocols.RateLimiter {
	return &infoLimiter{next: next, rewrite: func(info protocols.RateLimitInfo) protocols.RateLimitInfo {
		if info.Limited() && info.Scope == protocols.ScopeUser {
			info.Scope = protocols.ScopeGlobal
		}
		return info
	}}
}

// IgnoreCloudflare treats a header-less 429 as a success. It breaks "A
// 429 of Cloudflare scope pauses every route, exempt ones included, for
// RetryAfter." and fails TestRateLimiter/Cloudflare429PausesEveryRoute and
// TestHTTPClient/Cloudflare429PausesEveryRoute.
func IgnoreCloudflare(next protocols.RateLimiter) protocols.RateLimiter {
	return &infoLimiter{next: next, rewrite: func(info protocols.RateLimitInfo) protocols.RateLimitInfo {
		if info.Limited() && info.Scope == protocols.ScopeCloudflare {
			return protocols.RateLimitInfo{Status: http.StatusOK}
		}
		return info
	}}
}

// ForgetHash drops X-RateLimit-Bucket, so routes that share a bucket are
// never merged. It breaks "Routes that get the same X-RateLimit-Bucket
// share one bucket per top-level resource." and fails
// TestRateLimiter/SharedHashSharesBucket, RehashMovesWaiters and
// KnownTemplateStartsWithKnownLimit.
func ForgetHash(next protocols.RateLimiter) protocols.RateLimiter {
	return &infoLimiter{next: next, rewrite: func(info protocols.RateLimitInfo) protocols.RateLimitInfo {
		info.Bucket = ""
		return info
	}}
}

// CancelKeepsToken completes a cancelled permit as if a response had come,
// so its global token is spent. It breaks "A cancelled permit gives its
// global token back." and fails TestRateLimiter/CancelReleasesGlobalToken.
func CancelKeepsToken(next protocols.RateLimiter) protocols.RateLimiter {
	return &infoLimiter{next: next, cancel: func(p protocols.Permit) {
		p.Complete(protocols.RateLimitInfo{Status: http.StatusOK})
	}}
}

// IgnoreExempt counts interaction routes toward the global limit. It
// breaks "At most the global limit of non-exempt requests complete within
// any one second; exempt routes never wait for it." and fails
// TestRateLimiter/ExemptRoutesSkipGlobal and
// TestHTTPClient/ExemptRoutesSkipGlobal.
func IgnoreExempt(next protocols.RateLimiter) protocols.RateLimiter {
	return &infoLimiter{next: next, route: func(r protocols.Route) protocols.Route {
		r.Exempt = false
		return r
	}}
}

// IgnoreLimiterContext waits without the caller's context. It breaks "It
// returns an error wrapping ctx.Err() when ctx ends first, and one
// wrapping [ErrClosed] after Close." and fails
// TestRateLimiter/AcquireHonorsCanceledContext and
// TestRateLimiter/AcquireHonorsDeadline.
func IgnoreLimiterContext(next protocols.RateLimiter) protocols.RateLimiter {
	return deafLimiter{next}
}

type deafLimiter struct{ next protocols.RateLimiter }

func (l deafLimiter) Acquire(ctx context.Context, r protocols.Route) (protocols.Permit, error) {
	return l.next.Acquire(context.WithoutCancel(ctx), r)
}

func (l deafLimiter) Close() error { return l.next.Close() }

// OneAtATime lets a single request be in flight across every route: safe,
// and far too slow. It breaks "While buckets have room, a limiter admits
// non-exempt requests at the full rate of the global limit." and fails
// TestRateLimiter/GlobalLimitAllowsFullRate and
// TestHTTPClient/FiftyBucketsStayUnderGlobalLimit.
func OneAtATime(next protocols.RateLimiter) protocols.RateLimiter {
	return &serialLimiter{next: next, sem: make(chan struct{}, 1)}
}

type serialLimiter struct {
	next protocols.RateLimiter
	sem  chan struct{}
}

func (l *serialLimiter) Acquire(ctx context.Context, r protocols.Route) (protocols.Permit, error) {
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	p, err := l.next.Acquire(ctx, r)
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &serialPermit{next: p, sem: l.sem}, nil
}

func (l *serialLimiter) Close() error { return l.next.Close() }

type serialPermit struct {
	next protocols.Permit
	sem  chan struct{}
	once sync.Once
}

func (p *serialPermit) Complete(info protocols.RateLimitInfo) {
	p.next.Complete(info)
	p.once.Do(func() { <-p.sem })
}

func (p *serialPermit) Cancel() {
	p.next.Cancel()
	p.once.Do(func() { <-p.sem })
}

// DropReason never sends X-Audit-Log-Reason. It breaks "Every request
// carries Authorization, a DiscordBot User-Agent, and X-Audit-Log-Reason
// URL-encoded when a reason is given." and fails
// TestHTTPClient/AuditLogReasonURLEncoded.
func DropReason(next protocols.HTTPClient) protocols.HTTPClient {
	return clientFunc{next, func(ctx context.Context, req *protocols.Request) (*protocols.Response, error) {
		r := *req
		r.Reason = ""
		return next.Do(ctx, &r)
	}}
}

// RetryClientErrors retries every 4xx twice more. It breaks "A 4xx other
// than 429 is returned as *HTTPError with Discord's code, message and
// errors, and is not retried." and fails
// TestHTTPClient/HTTPErrorCarriesFormErrors and NotFoundNotRetried.
func RetryClientErrors(next protocols.HTTPClient) protocols.HTTPClient {
	return clientFunc{next, func(ctx context.Context, req *protocols.Request) (*protocols.Response, error) {
		var herr *protocols.HTTPError
		for i := 0; ; i++ {
			resp, err := next.Do(ctx, req)
			if i == 2 || !errors.As(err, &herr) || herr.Status >= 500 {
				return resp, err
			}
		}
	}}
}

// RetryRateLimitErrors retries a 429 the client gave up on, such as a
// Cloudflare ban. It breaks "RateLimitError reports a 429 the client did
// not retry: a Cloudflare ban, or a wait longer than the caller's context
// allows." and fails TestHTTPClient/CloudflareHTML429IsTypedError.
func RetryRateLimitErrors(next protocols.HTTPClient) protocols.HTTPClient {
	return clientFunc{next, func(ctx context.Context, req *protocols.Request) (*protocols.Response, error) {
		for i := 0; ; i++ {
			resp, err := next.Do(ctx, req)
			if i == 2 || !errors.Is(err, protocols.ErrRateLimited) {
				return resp, err
			}
		}
	}}
}

// StringErrors flattens every error to its text, losing its type and
// sentinels. It breaks "A 4xx other than 429 is returned as *HTTPError with
// Discord's code, message and errors, and is not retried." and fails,
// among others, TestHTTPClient/HTTPErrorCarriesFormErrors,
// Unauthorized401FailsFast and DoHonorsDeadline.
func StringErrors(next protocols.HTTPClient) protocols.HTTPClient {
	return clientFunc{next, func(ctx context.Context, req *protocols.Request) (*protocols.Response, error) {
		resp, err := next.Do(ctx, req)
		if err != nil {
			return nil, errors.New(err.Error())
		}
		return resp, nil
	}}
}

// IgnoreClientContext sends without the caller's context. It breaks
// "Errors wrap ctx.Err() when ctx ends, [ErrClosed] after Close, and are
// otherwise *HTTPError, *RateLimitError or a sentinel of this package."
// and fails TestHTTPClient/DoHonorsCanceledContext and DoHonorsDeadline.
func IgnoreClientContext(next protocols.HTTPClient) protocols.HTTPClient {
	return clientFunc{next, func(ctx context.Context, req *protocols.Request) (*protocols.Response, error) {
		return next.Do(context.WithoutCancel(ctx), req)
	}}
}

type clientFunc struct {
	next protocols.HTTPClient
	do   func(ctx context.Context, req *protocols.Request) (*protocols.Response, error)
}

func (c clientFunc) Do(ctx context.Context, req *protocols.Request) (*protocols.Response, error) {
	return c.do(ctx, req)
}

func (c clientFunc) Close() error { return c.next.Close() }

// Amnesiac builds a new client for every request, so it forgets a 401 and
// every invalid response. It breaks "After a 401 the token is remembered as
// invalid and later requests fail fast with ErrInvalidToken." and "Past
// the invalid-request budget, requests fail fast with
// ErrInvalidRequestBudget.", and fails
// TestHTTPClient/Unauthorized401FailsFast and
// InvalidRequestBudgetFailsFast.
func Amnesiac(newClient func() (protocols.HTTPClient, error)) protocols.HTTPClient {
	return &amnesiac{newClient: newClient}
}

type amnesiac struct {
	newClient func() (protocols.HTTPClient, error)
	mu        sync.Mutex
	closed    bool
}

func (a *amnesiac) Do(ctx context.Context, req *protocols.Request) (*protocols.Response, error) {
	a.mu.Lock()
	closed := a.closed
	a.mu.Unlock()
	if closed {
		return nil, protocols.ErrClosed
	}
	c, err := a.newClient()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Do(ctx, req)
}

func (a *amnesiac) Close() error {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	return nil
}
