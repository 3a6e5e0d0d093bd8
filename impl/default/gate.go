package reference

import (
	"context"
	"sync"
	"time"

	"github.com/cordkit/cordkit/internal/wait"
	"github.com/cordkit/cordkit/protocols"
)

// gate is the limiter's global part: the proactive global limit, the pause
// after a global 429, and the pause after a Cloudflare 429.
type gate struct {
	limit int // tokens; <= 0 disables the proactive limit

	mu          sync.Mutex
	tokens      *wait.Queue // non-exempt requests
	exempt      *wait.Queue // exempt requests: they wait for bans only
	inUse       int         // tokens held by permits not yet finished
	returns     []time.Time // when completed tokens come back, in order
	pausedUntil time.Time   // a global 429 pauses non-exempt routes
	bannedUntil time.Time   // a Cloudflare 429 pauses every route
}

func newGate(limit int) *gate {
	g := &gate{limit: limit}
	g.tokens = wait.NewQueue(&g.mu)
	g.exempt = wait.NewQueue(&g.mu)
	return g
}

// acquire waits until a request may go and reports whether it took a token.
func (g *gate) acquire(ctx context.Context, exempt bool) (bool, error) {
	if exempt {
		return false, g.exempt.Wait(ctx, func(now time.Time) (bool, time.Time) {
			if now.Before(g.bannedUntil) {
				return false, g.bannedUntil
			}
			return true, time.Time{}
		})
	}
	var took bool
	err := g.tokens.Wait(ctx, func(now time.Time) (bool, time.Time) {
		until := g.pausedUntil
		if g.bannedUntil.After(until) {
			until = g.bannedUntil
		}
		if now.Before(until) {
			return false, until
		}
		if g.limit <= 0 {
			return true, time.Time{}
		}
		i := 0
		for i < len(g.returns) && !now.Before(g.returns[i]) {
			i++
		}
		g.returns = g.returns[i:]
		if g.inUse+len(g.returns) < g.limit {
			g.inUse++
			took = true
			return true, time.Time{}
		}
		if len(g.returns) > 0 {
			return false, g.returns[0]
		}
		return false, time.Time{} // every token is held: wait for a release
	})
	return took, err
}

// release gives a token back, one second after now when the request got a
// response (info not nil) and at once when it was cancelled, and applies a
// global or Cloudflare 429.
func (g *gate) release(token bool, info *protocols.RateLimitInfo, cloudflarePause time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	if token {
		g.inUse--
		if info != nil {
			g.returns = append(g.returns, now.Add(time.Second))
		}
	}
	if info != nil && info.Limited() {
		switch info.Scope {
		case protocols.ScopeGlobal:
			if t := now.Add(info.RetryAfter); t.After(g.pausedUntil) {
				g.pausedUntil = t
			}
		case protocols.ScopeCloudflare:
			d := info.RetryAfter
			if d <= 0 {
				d = cloudflarePause
			}
			if t := now.Add(d); t.After(g.bannedUntil) {
				g.bannedUntil = t
			}
		}
	}
	g.tokens.Signal()
	g.exempt.Signal()
}

func (g *gate) close() {
	g.mu.Lock()
	g.tokens.Close()
	g.exempt.Close()
	g.mu.Unlock()
}
