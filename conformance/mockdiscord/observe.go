package mockdiscord

import (
	"fmt"
	"net/http"
	"time"
)

// StatusClientGone is the Observation.Status of a request whose client
// went away (its context ended) while the mock was waiting on Latency or a
// slow fault; no response was written.
const StatusClientGone = 499

// Observation records one REST request the mock received and how it
// answered. Control requests (/_mock/...) are not observed.
type Observation struct {
	// Time is when the request was processed: after Latency, before any
	// slow fault.
	Time time.Time `json:"time"`
	// Method is the request method.
	Method string `json:"method"`
	// Path is the escaped request path as received, with its /api/vN
	// prefix: "/api/v10/channels/123/messages".
	Path string `json:"path"`
	// Query is the raw query string, without "?".
	Query string `json:"query,omitempty"`
	// Version is the API version from the path (9 or 10), or 0.
	Version int `json:"version,omitempty"`
	// Endpoint is the method and route template, "GET /channels/{channel_id}",
	// or "" when no route matched.
	Endpoint string `json:"endpoint,omitempty"`
	// Resource is the top-level resource, "channels/123", "guilds/9",
	// "webhooks/5/TOKEN" or "interactions/7/TOKEN"; "" if none.
	Resource string `json:"resource,omitempty"`
	// Bucket is the X-RateLimit-Bucket hash the route advertised, "" for
	// a route without a per-route limit or a request that did not reach
	// the per-route limiter (unauthorized, faulted, global 429, ...).
	Bucket string `json:"bucket,omitempty"`
	// Group is the identity of the counter the request was checked
	// against: the spec's Group (default its Hash), then a space and the
	// top-level resource when the spec is PerResource. Requests with the
	// same Group share one window; that is what "one bucket" means in
	// assertions. "" when Bucket is "".
	Group string `json:"group,omitempty"`
	// Status is the response status, or StatusClientGone.
	Status int `json:"status"`
	// Code is the JSON error code of an error body, 0 otherwise.
	Code int `json:"code,omitempty"`
	// Scope is the X-RateLimit-Scope of a 429: "user", "global" or
	// "shared"; "" for other responses and for header-less 429s (bans
	// and cloudflare429 faults).
	Scope string `json:"scope,omitempty"`
	// Global reports that the request took a slot of the global window:
	// an authenticated request to a non-exempt route that was admitted
	// (see Options.GlobalCountsRejected). Interaction routes and
	// unauthenticated requests never do.
	Global bool `json:"global"`
	// Invalid reports that the response counted toward the invalid-request
	// limit: 401, 403, or a 429 other than shared scope (ban responses
	// excluded).
	Invalid bool `json:"invalid,omitempty"`
	// Banned reports that the request got the ban response.
	Banned bool `json:"banned,omitempty"`
	// Fault is the kind of the injected fault that shaped the response
	// ("slow", "server_error", ...; "slow,shared429" when a slow fault and
	// another both applied); "" if none.
	Fault string `json:"fault,omitempty"`
	// UserAgent is the User-Agent header.
	UserAgent string `json:"user_agent,omitempty"`
	// AuditLogReason is the X-Audit-Log-Reason header, percent-decoded.
	AuditLogReason string `json:"audit_log_reason,omitempty"`
	// Authorized reports that the request carried the right
	// "Authorization: Bot <token>" header.
	Authorized bool `json:"authorized"`
}

// record stores o in arrival order; the caller holds mu.
func (s *Server) record(o Observation, seq uint64) {
	s.obs = append(s.obs, o)
	s.obsSeq = append(s.obsSeq, seq)
	// Requests finish out of order; keep the slice sorted by arrival.
	for i := len(s.obs) - 1; i > 0 && s.obsSeq[i-1] > s.obsSeq[i]; i-- {
		s.obs[i-1], s.obs[i] = s.obs[i], s.obs[i-1]
		s.obsSeq[i-1], s.obsSeq[i] = s.obsSeq[i], s.obsSeq[i-1]
	}
}

// Observations returns a copy of what the mock has observed since New or
// the last Reset, in arrival order. An observation is recorded before its
// response is written, so it is visible as soon as the client has the
// response.
func (s *Server) Observations() []Observation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Observation(nil), s.obs...)
}

// Count returns how many observed responses had the given status.
func (s *Server) Count(status int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, o := range s.obs {
		if o.Status == status {
			n++
		}
	}
	return n
}

// WindowViolations lists, one line per response, every sign that a client
// sent more than Discord allows. The mock never admits more than a window's
// Limit (it answers 429 instead), so a violation shows up as:
//
//   - a 429 of scope "user": the request was sent while its per-route window
//     (Observation.Group) was already full;
//   - a 429 of scope "global": more than GlobalLimit requests in one second;
//   - a ban response: the client went past the invalid-request limit.
//
// 429s produced by injected faults (Observation.Fault other than "" and
// "slow") are not violations, nor are shared-scope 429s. A well-behaved client therefore
// gets an empty result, and `if v := srv.WindowViolations(); len(v) > 0 {
// t.Errorf(...) }` asserts both "no unexpected 429" and "no window
// exceeded". Each line reads like
// "12:00:01.250 POST /api/v10/channels/1/messages: 429 user (bucket 5f3c..., group 5f3c... channels/1)".
func (s *Server) WindowViolations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, o := range s.obs {
		if o.Fault != "" && o.Fault != string(FaultSlow) {
			continue // shaped by an injected fault
		}
		at := o.Time.UTC().Format("15:04:05.000")
		switch {
		case o.Banned:
			out = append(out, fmt.Sprintf("%s %s %s: banned (invalid-request limit exceeded)", at, o.Method, o.Path))
		case o.Status == http.StatusTooManyRequests && o.Scope == "user":
			out = append(out, fmt.Sprintf("%s %s %s: 429 user (bucket %s, group %s)", at, o.Method, o.Path, o.Bucket, o.Group))
		case o.Status == http.StatusTooManyRequests && o.Scope == "global":
			out = append(out, fmt.Sprintf("%s %s %s: 429 global", at, o.Method, o.Path))
		}
	}
	return out
}
