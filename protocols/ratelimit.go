package protocols

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Scope is the X-RateLimit-Scope of a 429 response.
type Scope string

// The scopes Discord sends, and ScopeCloudflare for a 429 that carries no
// rate-limit information at all.
const (
	// ScopeUser is this bot's own per-route limit: the bucket is exhausted.
	ScopeUser Scope = "user"
	// ScopeGlobal is this bot's global limit: every route must pause.
	ScopeGlobal Scope = "global"
	// ScopeShared is a limit on the resource, shared with others. It is not
	// this bot's fault and does not count toward the invalid-request limit.
	ScopeShared Scope = "shared"
	// ScopeCloudflare marks a 429 with neither X-RateLimit-Scope nor
	// X-RateLimit-Global, or with a body that is not JSON: an IP ban in
	// front of the API. It is not a value Discord sends.
	ScopeCloudflare Scope = "cloudflare"
)

// RateLimitInfo is what one response says about rate limits, parsed from its
// status, headers and (for a 429) body by [ParseRateLimitInfo].
type RateLimitInfo struct {
	// Status is the HTTP status code of the response.
	Status int
	// Bucket is X-RateLimit-Bucket, or "" when absent.
	Bucket string
	// HasLimit reports that X-RateLimit-Limit and X-RateLimit-Remaining
	// were present; Limit and Remaining are meaningful only then.
	HasLimit bool
	// Limit is X-RateLimit-Limit: requests allowed per window.
	Limit int
	// Remaining is X-RateLimit-Remaining: requests left in this window.
	Remaining int
	// ResetAfter is X-RateLimit-Reset-After, to the millisecond. When only
	// X-RateLimit-Reset was sent it is derived from that and Date. Zero
	// when neither was sent.
	ResetAfter time.Duration
	// Scope is the 429's scope; "" for responses other than 429.
	Scope Scope
	// RetryAfter is how long a 429 asks to wait: the body's retry_after
	// (float seconds) when present, else the Retry-After header.
	RetryAfter time.Duration
}

// Limited reports whether the response was a 429.
func (i RateLimitInfo) Limited() bool { return i.Status == http.StatusTooManyRequests }

// Invalid reports whether the response counts toward Discord's
// invalid-request limit: 401, 403, and every 429 but shared-scope ones.
func (i RateLimitInfo) Invalid() bool {
	switch i.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return true
	case http.StatusTooManyRequests:
		return i.Scope != ScopeShared
	}
	return false
}

// ParseRateLimitInfo reads the rate-limit headers of a response, and for a
// 429 its JSON body, as Discord's rate-limit documentation describes them.
// now is the time the response arrived; it is used only when the response
// carries X-RateLimit-Reset without X-RateLimit-Reset-After. Malformed
// values are treated as absent. A 429 without scope information, or whose
// body is not JSON, gets [ScopeCloudflare].
func ParseRateLimitInfo(status int, h http.Header, body []byte, now time.Time) RateLimitInfo {
	info := RateLimitInfo{Status: status, Bucket: header(h, "X-Ratelimit-Bucket")}
	limit, errL := strconv.Atoi(header(h, "X-Ratelimit-Limit"))
	remaining, errR := strconv.Atoi(header(h, "X-Ratelimit-Remaining"))
	if errL == nil && errR == nil && limit >= 0 && remaining >= 0 {
		info.HasLimit, info.Limit, info.Remaining = true, limit, remaining
	}
	if d, ok := seconds(header(h, "X-Ratelimit-Reset-After")); ok {
		info.ResetAfter = d
	} else if at, ok := seconds(header(h, "X-Ratelimit-Reset")); ok {
		base := now
		if date, err := http.ParseTime(header(h, "Date")); err == nil {
			base = date
		}
		if d := time.Unix(0, 0).Add(at).Sub(base); d > 0 {
			info.ResetAfter = d
		}
	}
	if status != http.StatusTooManyRequests {
		return info
	}
	var b struct {
		RetryAfter *float64 `json:"retry_after"`
		Global     bool     `json:"global"`
	}
	jsonBody := json.Unmarshal(body, &b) == nil
	if jsonBody && b.RetryAfter != nil && *b.RetryAfter >= 0 && !math.IsInf(*b.RetryAfter, 0) {
		info.RetryAfter = floatSeconds(*b.RetryAfter)
	} else if d, ok := seconds(header(h, "Retry-After")); ok {
		info.RetryAfter = d
	}
	switch scope := Scope(strings.ToLower(header(h, "X-Ratelimit-Scope"))); {
	case !jsonBody:
		info.Scope = ScopeCloudflare
	case scope == ScopeUser || scope == ScopeShared || scope == ScopeGlobal:
		info.Scope = scope
	case strings.EqualFold(header(h, "X-Ratelimit-Global"), "true") || b.Global:
		info.Scope = ScopeGlobal
	case info.HasLimit || info.Bucket != "":
		info.Scope = ScopeUser
	default:
		info.Scope = ScopeCloudflare
	}
	return info
}

// seconds parses a non-negative decimal number of seconds, such as "1.337".
func seconds(s string) (time.Duration, bool) {
	if s == "" {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return floatSeconds(f), true
}

// floatSeconds converts seconds to a Duration, rounding up to the
// millisecond so that a wait is never shorter than asked.
func floatSeconds(f float64) time.Duration {
	const maxSeconds = float64(math.MaxInt64 / int64(time.Second))
	if f > maxSeconds {
		f = maxSeconds
	}
	return time.Duration(math.Ceil(f*1000)) * time.Millisecond
}

// Permit is the right to send one request, handed out by
// [RateLimiter.Acquire] or [Bucket.Acquire]. Exactly one of Complete or
// Cancel must be called, once; a permit that is never finished is a bug and
// may hold its bucket forever. Calls after the first are ignored.
// A Permit may be finished from any goroutine.
type Permit interface {
	// Complete reports the response the request got. The limiter learns the
	// route's bucket and limits from info, and pauses the bucket or every
	// route when info is a 429.
	Complete(info RateLimitInfo)
	// Cancel reports that no response came (the request failed, or was
	// never sent). It releases the permit's slot and its global token.
	Cancel()
}

// Bucket is one rate-limit bucket: the state behind one bucket hash and
// top-level resource. It admits requests while it has room and otherwise
// waits for the window to reset.
//
// Rules (quoted by the conformance suite):
//   - A bucket whose limit is not known yet admits one request at a time.
//   - A bucket admits no request while Remaining from the latest response is zero and its reset has not passed.
//   - When its reset passes, a bucket admits waiting requests again without another response.
//   - A bucket admits at most Remaining requests before its reset passes, counting those still in flight.
//   - ResetAfter is counted from the moment the response arrived.
//   - A 429 of user or shared scope pauses the bucket for RetryAfter.
//   - Cancel releases the permit's slot.
//   - Acquire returns promptly with an error wrapping ctx.Err() when ctx ends.
//
// A Bucket must be safe for concurrent use. Implementations should pass
// [github.com/cordkit/cordkit/conformance.TestBucket].
type Bucket interface {
	// Acquire blocks until the bucket admits one request, ctx ends, or the
	// bucket is closed (an error wrapping [ErrClosed]).
	Acquire(ctx context.Context) (Permit, error)
	// Close wakes every waiter with [ErrClosed]. A limiter closes a bucket
	// it retires, so its waiters move to the bucket that replaces it.
	// Close is idempotent.
	Close() error
}

// BucketUpdater is an optional interface of a [Bucket]: Update applies a
// response to the bucket as [Permit.Complete] does, but without a permit,
// so no slot is released. A RateLimiter uses it when Discord names a
// route's bucket only in a response: a request admitted by the route's
// temporary bucket may come back saying it spent the last request of a
// bucket that other routes already share, and that shared bucket must
// learn it. A bucket without Update is taught only by its own permits.
type BucketUpdater interface {
	// Update applies info, which arrived now. It must not block.
	Update(info RateLimitInfo)
}

// BucketFunc builds a new, empty Bucket. A [RateLimiter] that accepts one
// calls it once per bucket key.
type BucketFunc func() Bucket

// RateLimiter maps routes to buckets and enforces Discord's limits before
// Discord does.
//
// Rules (quoted by the conformance suite):
//   - Routes that get the same X-RateLimit-Bucket share one bucket per top-level resource.
//   - A route whose bucket hash changes is re-mapped, and its waiting requests move to the new bucket.
//   - A known route template starts a new top-level resource with the known limit.
//   - At most the global limit of non-exempt requests complete within any one second; exempt routes never wait for it.
//   - A global 429 pauses every non-exempt route for RetryAfter; a user 429 pauses only its bucket.
//   - A cancelled permit gives its global token back.
//   - A 429 of Cloudflare scope pauses every route, exempt ones included, for RetryAfter.
//   - While buckets have room, a limiter admits non-exempt requests at the full rate of the global limit.
//   - A steady stream of requests to one bucket finishes close to the fastest time its limit allows.
//   - Routes that share a bucket hash but not its counter never deadlock, and together get at least the rate of one shared bucket.
//   - A limiter whose [ConcurrentBuckets] method reports true admits up to Remaining requests of a bucket at once, and no more before the bucket's reset passes, whatever order their responses come back in.
//
// A RateLimiter must be safe for concurrent use; the context's deadline is
// the longest wait the caller accepts. Implementations should pass
// [github.com/cordkit/cordkit/conformance.TestRateLimiter].
type RateLimiter interface {
	// Acquire blocks until the route may be sent: room in its bucket, then
	// a global token unless the route is exempt (a request never holds a
	// global token while its bucket waits for a reset). It returns an error wrapping
	// ctx.Err() when ctx ends first, and one wrapping [ErrClosed] after
	// Close. Nothing is held when Acquire returns an error.
	Acquire(ctx context.Context, r Route) (Permit, error)
	// Close ends every wait with [ErrClosed] and releases what the limiter
	// holds. It is idempotent.
	Close() error
}

// ConcurrentBuckets is an optional interface of a [RateLimiter] that can
// let several requests of one bucket be in flight at once, instead of one
// at a time as the [Bucket] rules ask until each response is seen.
// Discord counts a request when it arrives, so such a limiter counts the
// requests it admits against the window, whether their responses are
// pending or not, and must cope with responses that come back out of
// order and with requests that reach Discord after its reset.
//
// The conformance suite finds the interface by type assertion and checks
// the mode only when ConcurrentBuckets reports true; a decorator that
// does not forward it simply opts out of the check.
type ConcurrentBuckets interface {
	// ConcurrentBuckets reports whether the mode is on: whether a bucket
	// whose limit is known admits up to Remaining requests without
	// waiting for their responses. It must not change over the limiter's
	// life.
	ConcurrentBuckets() bool
}

// header returns the first value of the header whose key is given in its
// canonical form, without canonicalizing it again as http.Header.Get
// does: that saves an allocation per lookup of a key such as
// "X-RateLimit-Limit", whose canonical form is "X-Ratelimit-Limit".
func header(h http.Header, canonicalKey string) string {
	if v := h[canonicalKey]; len(v) > 0 {
		return v[0]
	}
	return ""
}
