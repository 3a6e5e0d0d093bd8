package reference

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cordkit/cordkit/protocols"
)

var (
	_ protocols.IdentifyLimiter                                                = (*identifyLimiter)(nil)
	_ func(protocols.IdentifyLimiterParams) (protocols.IdentifyLimiter, error) = NewIdentifyLimiter
)

const (
	// IdentifyInterval is how far apart identifies in one max_concurrency
	// bucket must be (discord-protocol.md §C.14).
	IdentifyInterval = 5 * time.Second
	// SessionStartWindow is the period of the daily session-start budget:
	// after the reset that /gateway/bot announced, the limiter assumes a
	// new budget of SessionStartLimit.Total every SessionStartWindow.
	SessionStartWindow = 24 * time.Hour
)

// NewIdentifyLimiter returns the reference [protocols.IdentifyLimiter], for
// the shards of one process.
//
// Shards identify in p.MaxConcurrency buckets keyed by shard ID modulo
// MaxConcurrency (zero or less means 1). In each bucket, identifies are at
// least [IdentifyInterval] apart, counted from when Wait returns, and
// waiters are served first come, first served; a waiter whose context ends
// leaves the queue at once. Buckets are independent, so MaxConcurrency
// shards can identify at the same instant.
//
// When p.SessionStartLimit.Total is positive, the limiter also spends the
// daily budget: at most Remaining identifies until ResetAfter (milliseconds
// from now) has passed, then Total per [SessionStartWindow], the window
// starting at the first identify after a reset (the latest the real reset
// can be, so the guess never overspends). Discord ends every session and
// resets the token of a bot that goes over, so an identify that would have
// to wait past the context's deadline for the reset fails at once with an
// error wrapping [protocols.ErrSessionStartLimit]; without a deadline it
// waits for the reset. A zero Total means the budget is unknown and not
// enforced.
//
// Wait returns an error wrapping [protocols.ErrInvalidShard] for a negative
// shard ID, and one wrapping ctx.Err() when ctx ends first. The limiter
// starts no goroutine.
func NewIdentifyLimiter(p protocols.IdentifyLimiterParams) (protocols.IdentifyLimiter, error) {
	s := p.SessionStartLimit
	if s.Total < 0 || s.Remaining < 0 || s.ResetAfter < 0 {
		return nil, fmt.Errorf("reference: identify limiter: negative session start limit %+v", s)
	}
	n := max(p.MaxConcurrency, 1)
	l := &identifyLimiter{
		buckets:   make([]*identifyBucket, n),
		total:     s.Total,
		remaining: s.Remaining,
		resetAt:   time.Now().Add(time.Duration(s.ResetAfter) * time.Millisecond),
	}
	for i := range l.buckets {
		l.buckets[i] = &identifyBucket{}
	}
	return l, nil
}

type identifyLimiter struct {
	buckets []*identifyBucket

	mu        sync.Mutex // guards the daily budget
	total     int        // 0: unknown, not enforced
	remaining int
	resetAt   time.Time
}

type identifyBucket struct {
	turn fifoMutex
	next time.Time // earliest next identify; guarded by turn
}

func (l *identifyLimiter) Wait(ctx context.Context, shardID int) error {
	if shardID < 0 {
		return fmt.Errorf("reference: identify: shard %d: %w", shardID, protocols.ErrInvalidShard)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("reference: identify: shard %d: %w", shardID, err)
	}
	b := l.buckets[shardID%len(l.buckets)]
	if err := b.turn.lock(ctx); err != nil {
		return fmt.Errorf("reference: identify: shard %d: %w", shardID, err)
	}
	defer b.turn.unlock()
	if err := sleepUntil(ctx, b.next); err != nil {
		return fmt.Errorf("reference: identify: shard %d: %w", shardID, err)
	}
	if err := l.spendSessionStart(ctx); err != nil {
		return fmt.Errorf("reference: identify: shard %d: %w", shardID, err)
	}
	b.next = time.Now().Add(IdentifyInterval)
	return nil
}

// spendSessionStart takes one identify from the daily budget, waiting for
// its reset if it is spent and ctx allows.
func (l *identifyLimiter) spendSessionStart(ctx context.Context) error {
	for {
		l.mu.Lock()
		if l.total <= 0 {
			l.mu.Unlock()
			return nil
		}
		now := time.Now()
		if !now.Before(l.resetAt) {
			l.remaining = l.total
			l.resetAt = now.Add(SessionStartWindow)
		}
		if l.remaining > 0 {
			l.remaining--
			l.mu.Unlock()
			return nil
		}
		resetAt := l.resetAt
		l.mu.Unlock()

		if deadline, ok := ctx.Deadline(); ok && deadline.Before(resetAt) {
			return fmt.Errorf("%w: the budget resets in %v, after the context's deadline",
				protocols.ErrSessionStartLimit, resetAt.Sub(now).Round(time.Millisecond))
		}
		if err := sleepUntil(ctx, resetAt); err != nil {
			return fmt.Errorf("%w: %w", protocols.ErrSessionStartLimit, err)
		}
	}
}

// sleepUntil waits until t or until ctx ends, returning ctx.Err() then.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fifoMutex is a mutex whose lock honours a context and which hands itself
// to waiters in the order they came. Waiting is a channel receive, so
// testing/synctest sees it as durably blocked. The zero value is unlocked.
type fifoMutex struct {
	mu      sync.Mutex
	held    bool
	waiters []chan struct{} // closed to hand the lock over
}

// lock waits for the mutex or for ctx to end, returning ctx.Err() then.
func (m *fifoMutex) lock(ctx context.Context) error {
	m.mu.Lock()
	if !m.held {
		m.held = true
		m.mu.Unlock()
		return nil
	}
	turn := make(chan struct{})
	m.waiters = append(m.waiters, turn)
	m.mu.Unlock()

	select {
	case <-turn:
		return nil
	case <-ctx.Done():
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, w := range m.waiters {
		if w == turn {
			m.waiters = append(m.waiters[:i:i], m.waiters[i+1:]...)
			return ctx.Err()
		}
	}
	// The lock was handed over while ctx ended: pass it on.
	m.unlockLocked()
	return ctx.Err()
}

func (m *fifoMutex) unlock() {
	m.mu.Lock()
	m.unlockLocked()
	m.mu.Unlock()
}

func (m *fifoMutex) unlockLocked() {
	if len(m.waiters) == 0 {
		m.held = false
		return
	}
	next := m.waiters[0]
	m.waiters[0] = nil
	m.waiters = m.waiters[1:]
	close(next)
}
