package fast

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cordkit/cordkit/internal/wait"
	"github.com/cordkit/cordkit/protocols"
)

// bkey is a bucket's key in the limiter: method and template with the
// top-level resource for a temporary bucket, or "", the bucket hash and
// the resource once Discord has named the route's bucket. It is a struct
// of the route's own strings, so building it allocates nothing.
type bkey struct {
	method string // "" for a hash bucket
	name   string // the template, or the hash
	res    string // the top-level resource
}

// bucket is the limiter's built-in bucket. It behaves as the reference
// bucket (impl/default NewBucket) does, except with [RateLimiterOptions].InFlight
// (see there), but keeps the state its lock-free paths read in atomics:
//
//   - open says the bucket is unlimited (the latest 2xx carried no
//     rate-limit headers), not paused and not retired: Acquire then only
//     counts the request in inFlight, and Complete of another header-less
//     2xx only uncounts it, without the mutex;
//   - inFlight counts the admitted permits not yet finished;
//   - waiting counts the goroutines in the queue, so that a finish that
//     took no lock knows whether to signal it.
//
// Everything else is guarded by mu, which is the bucket's alone.
type bucket struct {
	key        bkey
	clock      clock
	concurrent bool // RateLimiterOptions.InFlight

	open     atomic.Bool
	inFlight atomic.Int32
	waiting  atomic.Int32
	retired  atomic.Bool  // written under mu
	idleFrom atomic.Int64 // last activity or known reset, for eviction

	mu          sync.Mutex
	q           *wait.Queue
	known       bool  // limit, remaining and resetAt come from a response
	unlimited   bool  // the latest 2xx carried no rate-limit headers
	limit       int   // X-RateLimit-Limit, kept for debugging
	remaining   int   // requests left in the window, counted locally
	resetAt     int64 // when the window resets
	pausedUntil int64 // a user or shared 429 pauses the bucket until then
}

func newBucket(key bkey, c clock, concurrent bool, now int64) *bucket {
	b := &bucket{key: key, clock: c, concurrent: concurrent}
	b.q = wait.NewQueue(&b.mu)
	b.idleFrom.Store(now)
	return b
}

// acquire blocks until the bucket admits one request. It returns an error
// wrapping net.ErrClosed when the bucket is retired.
func (b *bucket) acquire(ctx context.Context) error {
	if b.open.Load() {
		b.inFlight.Add(1)
		// Whoever closes open reads inFlight after it, so either it sees
		// this request or this request sees open closed and backs out.
		if b.open.Load() {
			return nil
		}
		b.unadmit()
	}
	b.waiting.Add(1)
	err := b.q.Wait(ctx, b.admit)
	b.waiting.Add(-1)
	return err
}

// admit takes a slot when the bucket has room, or says when to look again
// (the zero time: when a permit finishes). b.mu is held.
func (b *bucket) admit(t time.Time) (bool, time.Time) {
	now := b.clock.since(t)
	if now < b.pausedUntil {
		return false, b.clock.at(b.pausedUntil)
	}
	if b.unlimited {
		b.inFlight.Add(1)
		b.open.Store(true)
		return true, time.Time{}
	}
	inFlight := b.inFlight.Load()
	if !b.known || now >= b.resetAt {
		// Blind: the limit is unknown, or the window has reset and the
		// next response will say how much of the new one is left. Always
		// one at a time, and only once nothing is in flight, in both
		// modes: a request of the old window still in flight may be
		// counted in the new one.
		if inFlight > 0 {
			return false, time.Time{}
		}
		b.known = false
		b.inFlight.Add(1)
		return true, time.Time{}
	}
	if inFlight > 0 && !b.concurrent {
		return false, time.Time{}
	}
	if b.remaining > 0 {
		b.remaining--
		b.inFlight.Add(1)
		return true, time.Time{}
	}
	return false, b.clock.at(b.resetAt)
}

// unadmit backs out a request counted by the lock-free path that must not
// go.
func (b *bucket) unadmit() {
	b.inFlight.Add(-1)
	b.signal()
}

// signal wakes the head of the queue if anybody waits. A finish lowers
// inFlight before it reads waiting, and a waiter raises waiting before it
// reads inFlight, so no wake-up is lost.
func (b *bucket) signal() {
	if b.waiting.Load() > 0 {
		b.mu.Lock()
		b.q.Signal()
		b.mu.Unlock()
	}
}

// finish releases a permit's slot and, when info is not nil, learns from
// the response, which arrived at now.
func (b *bucket) finish(info *protocols.RateLimitInfo, now int64) {
	touch(&b.idleFrom, busyUntil(now, info))
	if info == nil || (stillUnlimited(info) && b.open.Load()) {
		// A cancel, or one more header-less 2xx of an unlimited bucket:
		// nothing to learn.
		b.inFlight.Add(-1)
		b.signal()
		return
	}
	b.mu.Lock()
	others := b.inFlight.Add(-1)
	b.learn(*info, now, int(others))
	b.q.Signal()
	b.mu.Unlock()
}

// update applies a response that another bucket's permit got, without
// releasing any slot.
func (b *bucket) update(info protocols.RateLimitInfo, now int64) {
	touch(&b.idleFrom, busyUntil(now, &info))
	b.mu.Lock()
	b.learn(info, now, int(b.inFlight.Load()))
	b.q.Signal()
	b.mu.Unlock()
}

// stillUnlimited reports whether info is a 2xx without rate-limit
// headers: one that leaves an unlimited bucket unlimited.
func stillUnlimited(info *protocols.RateLimitInfo) bool {
	return info.Status >= http.StatusOK && info.Status < http.StatusMultipleChoices && info.Bucket == "" && !info.HasLimit
}

// learn updates the bucket from a response that arrived at now, while
// others permits of the bucket are still in flight. b.mu is held.
func (b *bucket) learn(info protocols.RateLimitInfo, now int64, others int) {
	defer b.reopen(now)
	if info.Limited() {
		switch info.Scope {
		case protocols.ScopeUser, protocols.ScopeShared:
			b.pausedUntil = max(b.pausedUntil, now+int64(info.RetryAfter))
		default:
			// Global and Cloudflare 429s are the limiter's business, and
			// their headers say nothing about this bucket.
			return
		}
	}
	switch {
	case info.HasLimit:
		remaining, resetAt := info.Remaining, now+int64(info.ResetAfter)
		if b.concurrent {
			// Requests still in flight may reach Discord after the one
			// this response answers, so they may not be counted in its
			// Remaining yet. Within a window, responses may come back in
			// any order: one can only lower the count and push the reset
			// later, never give requests back.
			remaining = max(0, remaining-others)
			if b.known && !b.unlimited {
				b.limit = info.Limit
				b.remaining = min(b.remaining, remaining)
				b.resetAt = max(b.resetAt, resetAt)
				return
			}
		}
		b.known, b.unlimited = true, false
		b.limit, b.remaining, b.resetAt = info.Limit, remaining, resetAt
	case info.Status >= http.StatusOK && info.Status < http.StatusMultipleChoices && info.Bucket == "":
		b.unlimited = true
	}
}

// reopen sets open from the state. b.mu is held.
func (b *bucket) reopen(now int64) {
	b.open.Store(b.unlimited && now >= b.pausedUntil && !b.retired.Load())
}

// retire takes the bucket out of service: its waiters get net.ErrClosed
// and look up their route's bucket again. Permits already out finish
// normally.
func (b *bucket) retire() {
	b.mu.Lock()
	b.open.Store(false)
	b.retired.Store(true)
	b.q.Close()
	b.mu.Unlock()
}

// retireIdle retires the bucket when nothing holds or waits for it and it
// has been idle since before cutoff, and reports whether it did.
func (b *bucket) retireIdle(cutoff, now int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Close the lock-free door first, then look inside: a lock-free
	// acquire that got past open is then seen in inFlight.
	b.open.Store(false)
	if b.inFlight.Load() > 0 || b.q.Len() > 0 || b.idleFrom.Load() > cutoff {
		b.reopen(now)
		return false
	}
	b.retired.Store(true)
	b.q.Close()
	return true
}

// busyUntil returns when a bucket that got info at now may next be idle:
// after its reset and after any pause.
func busyUntil(now int64, info *protocols.RateLimitInfo) int64 {
	if info == nil {
		return now
	}
	return now + int64(max(0, info.ResetAfter, info.RetryAfter))
}

// touchGrain is how much later a bucket's idle time must move before it is
// written again: eviction counts in minutes, and a write on every request
// would make every goroutine of a busy bucket fight over the cache line.
const touchGrain = int64(100 * time.Millisecond)

// touch raises v to x, coarsely.
func touch(v *atomic.Int64, x int64) {
	if x > v.Load()+touchGrain {
		raise(v, x)
	}
}
