package mockdiscord

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// disabledLimit is the X-RateLimit-Limit sent when DisableRateLimits is set.
const disabledLimit = 1_000_000

// sessionWindow is the window of session_start_limit.
const sessionWindow = 24 * time.Hour

// bucketState is the live form of a BucketSpec; change_hash edits it.
type bucketState struct {
	hash, group string
	limit       int
	window      time.Duration
	perResource bool
}

// key returns the counter key for a request to resource.
func (b *bucketState) key(resource string) string {
	if b.perResource && resource != "" {
		return b.group + " " + resource
	}
	return b.group
}

// window is one fixed rate-limit window.
type window struct {
	count   int
	resetAt time.Time
}

// jsonSeconds renders d as a JSON number of seconds with three decimals,
// rounded up to the millisecond.
func jsonSeconds(d time.Duration) json.Number { return json.Number(secondsString(d)) }

// limitHeaders sets the five X-RateLimit-* headers.
func (c *call) limitHeaders(limit, remaining int, resetAt, now time.Time, hash string) {
	h := c.hdr
	h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-RateLimit-Reset", epochString(resetAt))
	h.Set("X-RateLimit-Reset-After", secondsString(resetAt.Sub(now)))
	h.Set("X-RateLimit-Bucket", hash)
}

// admit applies the global and per-route limits to c. It sets the
// rate-limit headers and reports true when the request may proceed, or
// answers 429 and reports false. A rejected request takes no quota (see
// Options.GlobalCountsRejected).
func (c *call) admit() bool {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	global := c.obs.Authorized && !c.exempt && s.cfg.GlobalLimit > 0 && !s.cfg.DisableRateLimits
	if global {
		if wait := s.globalWait(now); wait > 0 {
			c.globalLimited(wait)
			return false
		}
	}
	if b := s.buckets[c.rt]; b != nil {
		key := b.key(c.resource)
		c.obs.Bucket, c.obs.Group = b.hash, key
		if s.cfg.DisableRateLimits {
			c.limitHeaders(disabledLimit, disabledLimit-1, now.Add(b.window), now, b.hash)
		} else {
			w := s.windows[key]
			if w == nil || !now.Before(w.resetAt) {
				w = &window{resetAt: now.Add(b.window)}
				s.windows[key] = w
			}
			if w.count >= b.limit {
				if global && s.cfg.GlobalCountsRejected {
					s.global = append(s.global, now)
					c.obs.Global = true
				}
				wait := w.resetAt.Sub(now)
				c.limitHeaders(b.limit, 0, w.resetAt, now, b.hash)
				c.hdr.Set("X-RateLimit-Scope", "user")
				c.hdr.Set("Retry-After", retryAfterHeader(wait, s.cfg.FractionalRetryAfter))
				c.obs.Scope = "user"
				c.json(http.StatusTooManyRequests, rateLimitBody{Message: msgRateLimited, RetryAfter: jsonSeconds(wait)})
				return false
			}
			w.count++
			c.limitHeaders(b.limit, max(b.limit-w.count, 0), w.resetAt, now, b.hash)
		}
	}
	if global {
		s.global = append(s.global, now)
		c.obs.Global = true
	}
	return true
}

// globalWait drops global-window entries older than a second and returns
// how long until a slot frees, or 0 when one is free. The caller holds mu.
func (s *Server) globalWait(now time.Time) time.Duration {
	i := 0
	for i < len(s.global) && now.Sub(s.global[i]) >= time.Second {
		i++
	}
	s.global = s.global[i:]
	if len(s.global) < s.cfg.GlobalLimit {
		return 0
	}
	return s.global[len(s.global)-s.cfg.GlobalLimit].Add(time.Second).Sub(now)
}

// globalLimited answers a global 429: only Retry-After,
// X-RateLimit-Global and X-RateLimit-Scope.
func (c *call) globalLimited(wait time.Duration) {
	c.hdr.Set("Retry-After", retryAfterHeader(wait, c.s.cfg.FractionalRetryAfter))
	c.hdr.Set("X-RateLimit-Global", "true")
	c.hdr.Set("X-RateLimit-Scope", "global")
	c.obs.Scope = "global"
	c.json(http.StatusTooManyRequests, rateLimitBody{Message: msgRateLimited, RetryAfter: jsonSeconds(wait), Global: true})
}

// isInvalid reports whether a response counts toward the invalid-request
// limit: 401, 403, and 429 other than shared scope. Ban responses do not.
func isInvalid(o *Observation) bool {
	switch o.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return true
	case http.StatusTooManyRequests:
		return o.Scope != "shared" && !o.Banned
	}
	return false
}

// noteInvalid counts one invalid response at now and starts a ban when the
// count in the window goes past the limit. The caller holds mu.
func (s *Server) noteInvalid(now time.Time) {
	if s.cfg.InvalidRequestLimit < 0 {
		return
	}
	i := 0
	for i < len(s.invalid) && now.Sub(s.invalid[i]) >= s.cfg.InvalidRequestWindow {
		i++
	}
	s.invalid = append(s.invalid[i:], now)
	if len(s.invalid) > s.cfg.InvalidRequestLimit {
		s.bannedUntil = now.Add(s.cfg.BanDuration)
		s.invalid = nil
	}
}

// ban answers the ban response; left is the rest of the ban.
func (c *call) ban(left time.Duration) {
	c.obs.Banned = true
	c.hdr.Set("Retry-After", retryAfterHeader(left, c.s.cfg.FractionalRetryAfter))
	if c.s.cfg.BanStyle == BanCloudflare {
		c.hdr.Del("Via")
		c.text(http.StatusTooManyRequests, "text/html", "error code: 1015")
		return
	}
	c.fail(http.StatusTooManyRequests, codeGeneral, msgBan)
}

// sessionStarts tracks session_start_limit for GET /gateway/bot.
type sessionStarts struct {
	used    int
	resetAt time.Time // end of the 24-hour window; zero before the first start
}

// sessionStartLimit returns total, remaining and the time until the
// window resets (zero before any session started). The caller holds mu.
func (s *Server) sessionStartLimit(now time.Time) (total, remaining int, resetAfter time.Duration) {
	if !s.sessions.resetAt.IsZero() && !now.Before(s.sessions.resetAt) {
		s.sessions = sessionStarts{}
	}
	total = s.cfg.SessionStartTotal
	remaining = max(total-s.sessions.used, 0)
	if !s.sessions.resetAt.IsZero() {
		resetAfter = s.sessions.resetAt.Sub(now)
	}
	return total, remaining, resetAfter
}

// ConsumeSessionStart uses one session start of the session_start_limit
// that GET /gateway/bot reports, as an IDENTIFY does, and reports whether
// one was left. The first start opens a 24-hour window; Reset restores
// the budget. The gateway half of the mock calls it on every IDENTIFY.
func (s *Server) ConsumeSessionStart() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if _, remaining, _ := s.sessionStartLimit(now); remaining == 0 {
		return false
	}
	if s.sessions.resetAt.IsZero() {
		s.sessions.resetAt = now.Add(sessionWindow)
	}
	s.sessions.used++
	return true
}
