package fast

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cordkit/cordkit/internal/wait"
	"github.com/cordkit/cordkit/protocols"
)

// held marks a global token taken by a permit not yet finished.
const held = math.MaxInt64

// token is one global token: the limiter time (see [clock]) from which it
// is free, or held. It has a cache line of its own so that goroutines
// taking different tokens do not slow each other down.
type token struct {
	free atomic.Int64
	_    [56]byte
}

// clock is the limiter's time: nanoseconds since the limiter was built,
// read from package time (so synctest bubbles drive it).
type clock struct{ epoch time.Time }

func (c clock) now() int64              { return int64(time.Since(c.epoch)) }
func (c clock) since(t time.Time) int64 { return int64(t.Sub(c.epoch)) }
func (c clock) at(v int64) time.Time    { return c.epoch.Add(time.Duration(v)) }

// gate is the global part of the limiter, on atomics: the proactive global
// limit as a ring of GlobalLimit tokens, the pause after a global 429 and
// the ban after a Cloudflare 429. Only a request that has to wait takes
// its mutex.
//
// A token is held from Acquire to Complete and becomes free one second
// after Complete (at once after Cancel), so no one-second window on
// Discord's side can see more than GlobalLimit requests, whatever the
// latency: the same accounting as the reference limiter's, one token per
// slot instead of a counter and a list under a lock.
type gate struct {
	clock
	tokens []token // nil when the proactive limit is off

	pausedUntil atomic.Int64 // a global 429 pauses non-exempt routes
	bannedUntil atomic.Int64 // a Cloudflare 429 pauses every route
	waiting     atomic.Int32 // goroutines in the slow path, waiting for a token

	mu     sync.Mutex
	queue  *wait.Queue // non-exempt requests that could not take a token
	exempt *wait.Queue // exempt requests waiting out a ban
}

func newGate(c clock, limit int) *gate {
	g := &gate{clock: c}
	if limit > 0 {
		g.tokens = make([]token, limit)
	}
	g.queue = wait.NewQueue(&g.mu)
	g.exempt = wait.NewQueue(&g.mu)
	return g
}

// acquire waits until a request may go and returns the index of the token
// it took, or -1 when it took none (exempt route, or no proactive limit).
func (g *gate) acquire(ctx context.Context, exempt bool, now int64) (int, error) {
	if exempt {
		if now >= g.bannedUntil.Load() {
			return -1, nil
		}
		return -1, g.exempt.Wait(ctx, func(t time.Time) (bool, time.Time) {
			if until := g.bannedUntil.Load(); g.since(t) < until {
				return false, g.at(until)
			}
			return true, time.Time{}
		})
	}
	// The fast path: no pause, nobody queued (so nobody is overtaken), and
	// a free token.
	if g.waiting.Load() == 0 && now >= max(g.pausedUntil.Load(), g.bannedUntil.Load()) {
		if g.tokens == nil {
			return -1, nil
		}
		if i := g.take(now); i >= 0 {
			return i, nil
		}
	}
	// The slow path. waiting is raised before the queue looks at the
	// tokens, and release frees a token before it looks at waiting, so
	// either the waiter sees the token or release signals the queue.
	g.waiting.Add(1)
	defer g.waiting.Add(-1)
	took := -1
	err := g.queue.Wait(ctx, func(t time.Time) (bool, time.Time) {
		now := g.since(t)
		if until := max(g.pausedUntil.Load(), g.bannedUntil.Load()); now < until {
			return false, g.at(until)
		}
		if g.tokens == nil {
			return true, time.Time{}
		}
		if i := g.take(now); i >= 0 {
			took = i
			return true, time.Time{}
		}
		next := int64(held)
		for i := range g.tokens {
			next = min(next, g.tokens[i].free.Load())
		}
		if next == held {
			return false, time.Time{} // every token is held: wait for a release
		}
		return false, g.at(next)
	})
	return took, err
}

// take takes a free token and returns its index, or -1. It starts at a
// random token so that goroutines spread over the ring.
func (g *gate) take(now int64) int {
	n := len(g.tokens)
	start := rand.IntN(n)
	for k := range n {
		i := start + k
		if i >= n {
			i -= n
		}
		t := &g.tokens[i].free
		if v := t.Load(); v <= now && t.CompareAndSwap(v, held) {
			return i
		}
	}
	return -1
}

// release gives token i back (none when i < 0): one second after now when
// the request got a response, at once when it was cancelled.
func (g *gate) release(i int, completed bool, now int64) {
	if i < 0 {
		return
	}
	free := int64(0)
	if completed {
		free = now + int64(time.Second)
	}
	g.tokens[i].free.Store(free)
	if g.waiting.Load() > 0 {
		g.mu.Lock()
		g.queue.Signal()
		g.mu.Unlock()
	}
}

// apply applies a global or Cloudflare 429 that arrived at now.
func (g *gate) apply(info protocols.RateLimitInfo, now int64, cloudflarePause time.Duration) {
	if !info.Limited() {
		return
	}
	switch info.Scope {
	case protocols.ScopeGlobal:
		raise(&g.pausedUntil, now+int64(info.RetryAfter))
	case protocols.ScopeCloudflare:
		d := info.RetryAfter
		if d <= 0 {
			d = cloudflarePause
		}
		raise(&g.bannedUntil, now+int64(d))
	}
}

func (g *gate) close() {
	g.mu.Lock()
	g.queue.Close()
	g.exempt.Close()
	g.mu.Unlock()
}

// raise sets v to x when x is later.
func raise(v *atomic.Int64, x int64) {
	for {
		old := v.Load()
		if x <= old || v.CompareAndSwap(old, x) {
			return
		}
	}
}
