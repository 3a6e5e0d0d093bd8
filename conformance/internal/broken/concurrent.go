package broken

import (
	"context"
	"sync"
	"time"

	"github.com/cordkit/cordkit/protocols"
)

// The limiters below are the exception to the package's decorator rule:
// no implementation that protocols alone can reach lets a bucket's
// requests overlap, so they are small naive limiters of their own. They
// key on [protocols.Route.Key], know nothing of hashes or the global
// limit, poll every 10 ms, and declare [protocols.ConcurrentBuckets].

// TrustLatestResponse lets up to Remaining requests of a route be in
// flight, counting admissions, but takes each response's Remaining at face
// value, so a response that comes back late gives requests back. It breaks
// "A limiter whose [ConcurrentBuckets] method reports true admits up to
// Remaining requests of a bucket at once, and no more before the bucket's
// reset passes, whatever order their responses come back in." and fails
// TestRateLimiter/ConcurrentBucketsAdmitUpToRemaining.
func TrustLatestResponse() protocols.RateLimiter {
	return &naiveLimiter{count: true, buckets: map[string]*naiveBucket{}}
}

// UncountedInFlight lets requests of a route through while the latest
// response's Remaining is above zero, without counting the ones in
// flight. It breaks the same rule as [TrustLatestResponse] and fails
// TestRateLimiter/ConcurrentBucketsAdmitUpToRemaining.
func UncountedInFlight() protocols.RateLimiter {
	return &naiveLimiter{buckets: map[string]*naiveBucket{}}
}

type naiveLimiter struct {
	count bool // admissions lower remaining

	mu      sync.Mutex
	closed  bool
	buckets map[string]*naiveBucket
}

type naiveBucket struct {
	known     bool
	remaining int
	resetAt   time.Time
	inFlight  int
}

func (l *naiveLimiter) ConcurrentBuckets() bool { return true }

func (l *naiveLimiter) Acquire(ctx context.Context, r protocols.Route) (protocols.Permit, error) {
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return nil, protocols.ErrClosed
		}
		b := l.buckets[r.Key()]
		if b == nil {
			b = &naiveBucket{}
			l.buckets[r.Key()] = b
		}
		ok := l.admit(b, time.Now())
		l.mu.Unlock()
		if ok {
			return &naivePermit{l: l, b: b}, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (l *naiveLimiter) admit(b *naiveBucket, now time.Time) bool {
	if !b.known || !now.Before(b.resetAt) {
		if b.inFlight > 0 {
			return false
		}
		b.known = false
		b.inFlight++
		return true
	}
	if b.remaining > 0 {
		if l.count {
			b.remaining--
		}
		b.inFlight++
		return true
	}
	return false
}

func (l *naiveLimiter) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	return nil
}

type naivePermit struct {
	l    *naiveLimiter
	b    *naiveBucket
	once sync.Once
}

func (p *naivePermit) Complete(info protocols.RateLimitInfo) {
	p.once.Do(func() {
		p.l.mu.Lock()
		defer p.l.mu.Unlock()
		p.b.inFlight--
		if info.HasLimit {
			p.b.known, p.b.remaining, p.b.resetAt = true, info.Remaining, time.Now().Add(info.ResetAfter)
		}
	})
}

func (p *naivePermit) Cancel() {
	p.once.Do(func() {
		p.l.mu.Lock()
		p.b.inFlight--
		p.l.mu.Unlock()
	})
}
