package mockdiscord

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// call is one REST request in progress. Its response is built in memory
// (status, hdr, body) and written by finish, after the observation is
// recorded.
type call struct {
	s        *Server
	r        *http.Request
	seq      uint64
	obs      Observation
	rt       *route
	p        params
	resource string
	exempt   bool

	hdr     http.Header
	status  int
	body    []byte
	written bool // a response was built
	gone    bool // the client left: write nothing
}

// json answers status with v as JSON.
func (c *call) json(status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		c.fail(http.StatusInternalServerError, codeGeneral, statusMessage(http.StatusInternalServerError))
		return
	}
	c.hdr.Set("Content-Type", "application/json")
	c.status, c.body, c.written = status, b, true
}

// text answers status with a non-JSON body.
func (c *call) text(status int, contentType, body string) {
	c.hdr.Set("Content-Type", contentType)
	c.status, c.body, c.written = status, []byte(body), true
}

// noContent answers 204.
func (c *call) noContent() {
	c.hdr.Del("Content-Type")
	c.status, c.body, c.written = http.StatusNoContent, nil, true
}

// fail answers a Discord JSON error.
func (c *call) fail(status, code int, message string) {
	c.obs.Code = code
	c.json(status, apiError{Message: message, Code: code})
}

// failForm answers 400 Invalid Form Body with nested errors.
func (c *call) failForm(errs formErrors) {
	c.obs.Code = codeInvalidFormBody
	c.json(http.StatusBadRequest, apiError{Message: msgInvalidFormBody, Code: codeInvalidFormBody, Errors: errs})
}

// unauthorized answers 401.
func (c *call) unauthorized() {
	if c.s.cfg.UnauthorizedCode == codeInvalidToken {
		c.fail(http.StatusUnauthorized, codeInvalidToken, "Invalid authentication token")
		return
	}
	c.fail(http.StatusUnauthorized, c.s.cfg.UnauthorizedCode, statusMessage(http.StatusUnauthorized))
}

// serveAPI handles every request outside /_mock/.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	pr := s.pause(r.Context(), s.cfg.Latency)
	c := s.begin(r)
	switch pr {
	case pauseCanceled:
		c.gone = true
	case pauseClosed:
		c.fail(http.StatusServiceUnavailable, codeGeneral, "mock server closed")
	default:
		c.run()
	}
	c.finish(w)
}

// begin records the request's arrival.
func (s *Server) begin(r *http.Request) *call {
	c := &call{s: s, r: r, hdr: http.Header{}}
	c.hdr.Set("Via", "1.1 google")
	reason := r.Header.Get("X-Audit-Log-Reason")
	if dec, err := url.PathUnescape(reason); err == nil {
		reason = dec
	}
	c.obs = Observation{
		Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery,
		UserAgent: r.UserAgent(), AuditLogReason: reason,
	}
	s.mu.Lock()
	s.seq++
	c.seq = s.seq
	c.obs.Time = time.Now()
	s.mu.Unlock()
	return c
}

// run applies the checks in Discord's order and calls the route handler.
func (c *call) run() {
	s := c.s
	s.mu.Lock()
	until := s.bannedUntil
	s.mu.Unlock()
	if c.obs.Time.Before(until) {
		c.ban(until.Sub(c.obs.Time))
		return
	}
	if !s.cfg.AllowAnyUserAgent && !strings.HasPrefix(c.r.UserAgent(), "DiscordBot") {
		c.fail(http.StatusForbidden, codeCloudflare, msgCloudflare)
		return
	}
	rest, ok := c.version()
	if !ok {
		return
	}
	rt, p, status := match(c.r.Method, rest)
	switch status {
	case http.StatusNotFound:
		c.fail(http.StatusNotFound, codeGeneral, statusMessage(http.StatusNotFound))
		return
	case http.StatusMethodNotAllowed:
		c.fail(http.StatusMethodNotAllowed, codeGeneral, statusMessage(http.StatusMethodNotAllowed))
		return
	}
	c.rt, c.p = rt, p
	c.obs.Endpoint = rt.endpoint()
	c.resource = resourceOf(rt, p)
	c.obs.Resource = c.resource
	// Interaction endpoints are exempt from the global limit; a follow-up
	// is a webhook whose ID is the application's.
	c.exempt = rt.exempt || (rt.segs[0] == "webhooks" && p["webhook_id"] == s.world.botID)

	auth := c.r.Header.Get("Authorization")
	c.obs.Authorized = auth != "" && auth == "Bot "+s.cfg.Token
	if (auth != "" && !c.obs.Authorized) || (auth == "" && rt.auth == authRequired) {
		c.unauthorized()
		return
	}

	s.mu.Lock()
	slow, fault := s.takeFaults(rt)
	s.mu.Unlock()
	c.obs.Fault = faultNames(slow, fault)
	if slow != nil {
		switch s.pause(c.r.Context(), slow.Delay) {
		case pauseCanceled:
			c.gone = true
			return
		case pauseClosed:
			c.fail(http.StatusServiceUnavailable, codeGeneral, "mock server closed")
			return
		}
	}
	if fault != nil {
		c.applyFault(fault)
		return
	}
	if !c.admit() {
		return
	}
	if utf8.RuneCountInString(c.obs.AuditLogReason) > 512 {
		errs := formErrors{}
		errs.add("BASE_TYPE_MAX_LENGTH", "Must be 512 or fewer in length.", "audit_log_reason")
		c.failForm(errs)
		return
	}
	rt.handle(c)
}

// version strips /api/vN from the path. Only v9 and v10 are served;
// other versions, and paths without one (Discord's deprecated default,
// v6), get 400 with code 50041. Paths outside /api/ get 404.
func (c *call) version() (string, bool) {
	p := c.r.URL.EscapedPath()
	if !strings.HasPrefix(p, "/api/") {
		c.fail(http.StatusNotFound, codeGeneral, statusMessage(http.StatusNotFound))
		return "", false
	}
	v, rest, _ := strings.Cut(p[len("/api/"):], "/")
	if v == "" {
		c.fail(http.StatusNotFound, codeGeneral, statusMessage(http.StatusNotFound))
		return "", false
	}
	n := 0
	if len(v) > 1 && v[0] == 'v' {
		if x, err := strconv.Atoi(v[1:]); err == nil && x > 0 {
			n = x
		}
	}
	if n != 9 && n != 10 {
		c.fail(http.StatusBadRequest, codeInvalidAPIVersion, "Invalid API Version")
		return "", false
	}
	c.obs.Version = n
	return "/" + rest, true
}

// finish records the observation and the invalid-request count, delivers
// events, then writes the response.
func (c *call) finish(w http.ResponseWriter) {
	s := c.s
	if !c.written && !c.gone {
		c.fail(http.StatusInternalServerError, codeGeneral, statusMessage(http.StatusInternalServerError))
	}
	c.obs.Status = c.status
	if c.gone {
		c.obs.Status = StatusClientGone
	}
	s.mu.Lock()
	if isInvalid(&c.obs) {
		c.obs.Invalid = true
		s.noteInvalid(time.Now())
	}
	s.record(c.obs, c.seq)
	s.mu.Unlock()
	s.publish()
	if c.gone {
		return
	}
	h := w.Header()
	for k, v := range c.hdr {
		h[k] = v
	}
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	if c.body != nil {
		h.Set("Content-Length", strconv.Itoa(len(c.body)))
	}
	w.WriteHeader(c.status)
	if c.body != nil {
		_, _ = w.Write(c.body)
	}
}
