package mockdiscord

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// FaultKind names a scripted misbehaviour; see [Fault].
type FaultKind string

// The fault kinds.
const (
	// FaultShared429 answers 429 with the route's five X-RateLimit-*
	// headers (Remaining as it stands, possibly above 0), X-RateLimit-Scope:
	// shared, Retry-After, and {"message": "The resource is being rate
	// limited.", "retry_after": ..., "global": false}. It does not count
	// toward the invalid-request limit. On a route without a BucketSpec
	// only the scope and Retry-After headers are sent.
	FaultShared429 FaultKind = "shared429"
	// FaultServerError answers Status (default 500) with a JSON body
	// {"message": "500: Internal Server Error", "code": 0}.
	FaultServerError FaultKind = "server_error"
	// FaultCloudflare429 answers 429 with only Retry-After, no Via and no
	// X-RateLimit-* headers, and the text/html body "error code: 1015".
	FaultCloudflare429 FaultKind = "cloudflare429"
	// FaultChangeHash makes Endpoint advertise NewHash from now on; its
	// counter moves to the group NewHash (a fresh window, unless another
	// route already counts under that group). It applies when injected and
	// takes no response. Reset undoes it.
	FaultChangeHash FaultKind = "change_hash"
	// FaultSlow waits Delay before processing the request (rate limits
	// are checked after the wait). The wait ends early, without a
	// response, if the request's context ends. It combines with one other
	// queued fault.
	FaultSlow FaultKind = "slow"
	// FaultGlobal429 answers a global 429: only Retry-After,
	// X-RateLimit-Global: true and X-RateLimit-Scope: global, body
	// {"message": "You are being rate limited.", "retry_after": ...,
	// "global": true}. It does not block later requests by itself.
	FaultGlobal429 FaultKind = "global429"
)

// ErrInvalidFault is wrapped by the error [Server.Inject] returns for a
// fault it cannot apply.
var ErrInvalidFault = errors.New("mockdiscord: invalid fault")

// Fault is a scripted misbehaviour, queued by [Server.Inject]. A request
// that passes the ban, User-Agent, version, route and auth checks takes
// the first queued fault that matches its endpoint (and, before it, the
// first matching slow fault); every fault but change_hash replaces the
// normal response, and takes no rate-limit quota.
type Fault struct {
	// Kind says what happens.
	Kind FaultKind
	// Endpoint limits the fault to one route, written like
	// BucketSpec.Endpoint ("POST /channels/{channel_id}/messages"); ""
	// means any route. change_hash needs it.
	Endpoint string
	// Count is how many responses the fault affects. Zero means 1; a
	// negative value means every matching response until Reset.
	Count int
	// Status is the status of a server_error: 500 to 599. Zero means 500.
	Status int
	// RetryAfter is the wait a 429 fault asks for. Zero means one second.
	RetryAfter time.Duration
	// NewHash is the hash change_hash makes Endpoint advertise.
	NewHash string
	// Delay is how long slow waits. It must be positive for slow.
	Delay time.Duration
}

type queuedFault struct {
	f    Fault
	rt   *route // nil: any route
	left int    // negative: unlimited
}

// Inject queues f, or applies it at once for change_hash. It returns an
// error wrapping ErrInvalidFault, and changes nothing, for an unknown Kind
// or Endpoint, a server_error Status outside 500-599, a negative
// RetryAfter or Delay, a slow fault without Delay, or a change_hash
// without Endpoint or NewHash, or whose Endpoint has no BucketSpec.
func (s *Server) Inject(f Fault) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidFault}, args...)...)
	}
	var rt *route
	if f.Endpoint != "" {
		if rt = lookupEndpoint(f.Endpoint); rt == nil {
			return bad("endpoint %q is not a route the mock serves", f.Endpoint)
		}
	}
	if f.RetryAfter < 0 || f.Delay < 0 {
		return bad("negative duration")
	}
	if f.Count == 0 {
		f.Count = 1
	}
	if f.RetryAfter == 0 {
		f.RetryAfter = time.Second
	}
	switch f.Kind {
	case FaultShared429, FaultCloudflare429, FaultGlobal429:
	case FaultServerError:
		if f.Status == 0 {
			f.Status = http.StatusInternalServerError
		}
		if f.Status < 500 || f.Status > 599 {
			return bad("server_error status %d is not 5xx", f.Status)
		}
	case FaultSlow:
		if f.Delay <= 0 {
			return bad("slow needs a positive Delay")
		}
	case FaultChangeHash:
		if rt == nil || f.NewHash == "" {
			return bad("change_hash needs Endpoint and NewHash")
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		b := s.buckets[rt]
		if b == nil {
			return bad("endpoint %q has no per-route limit", f.Endpoint)
		}
		b.hash, b.group = f.NewHash, f.NewHash
		return nil
	default:
		return bad("unknown kind %q", f.Kind)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &queuedFault{f: f, rt: rt, left: f.Count})
	return nil
}

// takeFaults consumes, for a request to rt, the first matching slow fault
// and the first matching response fault. The caller holds mu.
func (s *Server) takeFaults(rt *route) (slow *Fault, resp *Fault) {
	kept := s.faults[:0]
	for _, q := range s.faults {
		if q.rt == nil || q.rt == rt {
			isSlow := q.f.Kind == FaultSlow
			if (isSlow && slow == nil) || (!isSlow && resp == nil) {
				f := q.f
				if isSlow {
					slow = &f
				} else {
					resp = &f
				}
				if q.left > 0 {
					q.left--
				}
			}
		}
		if q.left != 0 {
			kept = append(kept, q)
		}
	}
	for i := len(kept); i < len(s.faults); i++ {
		s.faults[i] = nil
	}
	s.faults = kept
	return slow, resp
}

// applyFault answers c with fault f.
func (c *call) applyFault(f *Fault) {
	s := c.s
	switch f.Kind {
	case FaultServerError:
		c.fail(f.Status, codeGeneral, statusMessage(f.Status))
	case FaultCloudflare429:
		c.hdr.Del("Via")
		c.hdr.Set("Retry-After", retryAfterHeader(f.RetryAfter, s.cfg.FractionalRetryAfter))
		c.text(http.StatusTooManyRequests, "text/html", "error code: 1015")
	case FaultGlobal429:
		c.globalLimited(f.RetryAfter)
	case FaultShared429:
		s.mu.Lock()
		if b := s.buckets[c.rt]; b != nil {
			now := time.Now()
			key := b.key(c.resource)
			remaining, reset := b.limit, now.Add(b.window)
			if w := s.windows[key]; w != nil && now.Before(w.resetAt) {
				remaining, reset = max(b.limit-w.count, 0), w.resetAt
			}
			c.obs.Bucket, c.obs.Group = b.hash, key
			c.limitHeaders(b.limit, remaining, reset, now, b.hash)
		}
		s.mu.Unlock()
		c.hdr.Set("X-RateLimit-Scope", "shared")
		c.hdr.Set("Retry-After", retryAfterHeader(f.RetryAfter, s.cfg.FractionalRetryAfter))
		c.obs.Scope = "shared"
		c.json(http.StatusTooManyRequests, rateLimitBody{
			Message: msgResourceRateLimited, RetryAfter: jsonSeconds(f.RetryAfter),
			Code: s.cfg.SharedRateLimitCode,
		})
	}
}

// faultNames joins the kinds of the faults applied to one request.
func faultNames(fs ...*Fault) string {
	var names []string
	for _, f := range fs {
		if f != nil {
			names = append(names, string(f.Kind))
		}
	}
	return strings.Join(names, ",")
}
