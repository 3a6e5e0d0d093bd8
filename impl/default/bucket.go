package reference

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/cordkit/cordkit/internal/wait"
	"github.com/cordkit/cordkit/protocols"
)

var (
	_ protocols.BucketFunc    = NewBucket
	_ protocols.Bucket        = (*bucket)(nil)
	_ protocols.BucketUpdater = (*bucket)(nil)
	_ protocols.Permit        = (*bucketPermit)(nil)
)

// NewBucket returns the reference [protocols.Bucket]. It is a
// [protocols.BucketFunc].
//
// The bucket trades throughput for safety, as twilight, discordgo and disgo
// do: it lets one request at a time be in flight, so every response is seen
// before the next request is sent and a 429 caused by the bucket itself
// cannot happen. In detail:
//
//   - Until a response has taught the limit, and again once the reset has
//     passed, requests go "blind", one at a time.
//   - With a known limit, a request is admitted while the remaining count
//     is above zero, which each admission decrements, and nothing else is
//     in flight. When a response leaves Remaining at zero, the bucket waits
//     for the reset: the response's arrival (time.Now in Complete) plus its
//     X-RateLimit-Reset-After, so clock skew cannot make it reset before
//     Discord does.
//   - A 2xx response without rate-limit headers marks the bucket unlimited,
//     as nextcore does: Discord has no per-route limit there, so requests
//     are admitted at once and may overlap, until a response brings
//     headers again.
//   - A 429 of user or shared scope pauses the bucket for RetryAfter from
//     the response's arrival. Global and Cloudflare 429s do not touch it:
//     the [protocols.RateLimiter] pauses every route for those.
//   - Cancel frees the in-flight slot but does not give the remaining count
//     back: the request may have reached Discord before it failed.
//
// Waiters are admitted in arrival order. A bucket starts no goroutine; it
// waits with channels and timers only.
func NewBucket() protocols.Bucket {
	b := &bucket{}
	b.q = wait.NewQueue(&b.mu)
	return b
}

type bucket struct {
	mu sync.Mutex
	q  *wait.Queue

	known       bool      // limit, remaining and resetAt come from a response
	unlimited   bool      // the latest 2xx carried no rate-limit headers
	limit       int       // X-RateLimit-Limit, kept for logs and debugging
	remaining   int       // requests left in the window, counted locally
	resetAt     time.Time // when the window resets
	pausedUntil time.Time // a user or shared 429 pauses the bucket until then
	inFlight    int       // admitted permits not yet finished
}

// Acquire blocks until the bucket admits one request.
func (b *bucket) Acquire(ctx context.Context) (protocols.Permit, error) {
	var p *bucketPermit
	err := b.q.Wait(ctx, func(now time.Time) (bool, time.Time) {
		ok, at := b.admit(now)
		if ok {
			p = &bucketPermit{b: b}
		}
		return ok, at
	})
	if err != nil {
		return nil, fmt.Errorf("reference: bucket acquire: %w", err)
	}
	return p, nil
}

// admit takes a slot when the bucket has room, or says when to look again
// (the zero time: when a permit finishes). b.mu is held.
func (b *bucket) admit(now time.Time) (bool, time.Time) {
	if now.Before(b.pausedUntil) {
		return false, b.pausedUntil
	}
	if b.unlimited {
		b.inFlight++
		return true, time.Time{}
	}
	if b.inFlight > 0 {
		return false, time.Time{}
	}
	if !b.known || !now.Before(b.resetAt) {
		// Blind: the limit is unknown, or the window has reset and the
		// next response will say how much of the new one is left.
		b.known = false
		b.inFlight++
		return true, time.Time{}
	}
	if b.remaining > 0 {
		b.remaining--
		b.inFlight++
		return true, time.Time{}
	}
	return false, b.resetAt
}

// Close wakes every waiter with an error wrapping [protocols.ErrClosed].
func (b *bucket) Close() error {
	b.mu.Lock()
	b.q.Close()
	b.mu.Unlock()
	return nil
}

// finish releases a permit's slot and, when info is not nil, learns from
// the response. Only a permit's first finish counts.
func (b *bucket) finish(p *bucketPermit, info *protocols.RateLimitInfo) {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if p.done {
		return
	}
	p.done = true
	b.inFlight--
	if info != nil {
		b.learn(*info, now)
	}
	b.q.Signal()
}

// learn updates the bucket from a response that arrived at now. b.mu is
// held.
func (b *bucket) learn(info protocols.RateLimitInfo, now time.Time) {
	if info.Limited() {
		switch info.Scope {
		case protocols.ScopeUser, protocols.ScopeShared:
			if until := now.Add(info.RetryAfter); until.After(b.pausedUntil) {
				b.pausedUntil = until
			}
		default:
			// Global and Cloudflare 429s are the limiter's business, and
			// their headers say nothing about this bucket.
			return
		}
	}
	switch {
	case info.HasLimit:
		b.known, b.unlimited = true, false
		b.limit, b.remaining = info.Limit, info.Remaining
		b.resetAt = now.Add(info.ResetAfter)
	case info.Status >= http.StatusOK && info.Status < http.StatusMultipleChoices && info.Bucket == "":
		b.unlimited = true
	}
}

// Update applies a response that arrived now to the bucket without
// releasing any slot.
func (b *bucket) Update(info protocols.RateLimitInfo) {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.learn(info, now)
	b.q.Signal()
}

type bucketPermit struct {
	b    *bucket
	done bool // guarded by b.mu
}

// Complete releases the slot and teaches the bucket what the response said.
func (p *bucketPermit) Complete(info protocols.RateLimitInfo) { p.b.finish(p, &info) }

// Cancel releases the slot. The remaining count stays spent: the request
// may have reached Discord.
func (p *bucketPermit) Cancel() { p.b.finish(p, nil) }
