package conformance

import (
	"fmt"
	"sync"
	"time"

	"github.com/cordkit/cordkit/protocols"
)

// sim is a tiny model of Discord's rate-limit counters for the suites that
// need no HTTP server: each request the implementation admits "hits" it at
// the bubble's current time and gets the RateLimitInfo Discord would send.
// It records every request that Discord would have refused.
//
// A window starts at the first request after the previous one reset, as
// Discord's do, and ResetAfter is computed when the request hits, so a
// response that arrives later makes the client's view of the reset later
// than the truth, never earlier.
type sim struct {
	mu       sync.Mutex
	global   int // <= 0: no global limit
	specs    map[string]simSpec
	counters map[string]*simCounter
	hits     []time.Time // non-exempt requests, for the global limit
	bad      []string    // requests Discord would have refused
	total    int
}

// simSpec is one endpoint's limit.
type simSpec struct {
	hash   string
	group  string // counter identity; defaults to hash
	limit  int
	window time.Duration
}

type simCounter struct {
	count   int
	resetAt time.Time
}

func newSim(global int, specs map[string]simSpec) *sim {
	return &sim{global: global, specs: specs, counters: make(map[string]*simCounter)}
}

// hit counts one request of r that Discord receives now.
func (s *sim) hit(r protocols.Route) protocols.RateLimitInfo {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total++
	if !r.Exempt && s.global > 0 {
		s.hits = append(s.hits, now)
		if n := len(s.hits); n > s.global {
			first := s.hits[n-1-s.global]
			if d := now.Sub(first); d < time.Second {
				s.bad = append(s.bad, fmt.Sprintf("%d requests within %v (global limit %d/s) at %v", s.global+1, d, s.global, r))
				return tooMany(protocols.ScopeGlobal, "", 0, 0, time.Second-d)
			}
		}
	}
	spec, ok := s.specs[r.Endpoint()]
	if !ok {
		return protocols.RateLimitInfo{Status: 200}
	}
	group := spec.group
	if group == "" {
		group = spec.hash
	}
	key := group + " " + r.Resource
	c := s.counters[key]
	if c == nil {
		c = &simCounter{}
		s.counters[key] = c
	}
	if !now.Before(c.resetAt) {
		c.count, c.resetAt = 0, now.Add(spec.window)
	}
	if c.count >= spec.limit {
		s.bad = append(s.bad, fmt.Sprintf("request %d in one window of %d per %v at %v (bucket %s %s)",
			c.count+1, spec.limit, spec.window, r, spec.hash, r.Resource))
		return tooMany(protocols.ScopeUser, spec.hash, spec.limit, 0, c.resetAt.Sub(now))
	}
	c.count++
	return ok200(spec.hash, spec.limit, spec.limit-c.count, c.resetAt.Sub(now))
}

// violations returns what Discord would have refused.
func (s *sim) violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bad...)
}
