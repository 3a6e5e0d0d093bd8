package protocols

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Sentinel errors. Each says who returns it and when; test for them with
// [errors.Is].
var (
	// ErrClosed is returned by every method called after Close. It is
	// [net.ErrClosed], so errors.Is works with either.
	ErrClosed = net.ErrClosed

	// ErrInvalidRoute is wrapped by NewRoute and ParseRoute, and by a
	// client given a malformed Route.
	ErrInvalidRoute = errors.New("protocols: invalid route")

	// ErrRateLimited matches every *RateLimitError.
	ErrRateLimited = errors.New("protocols: rate limited")

	// ErrInvalidToken means Discord rejected the token: a REST 401 (after
	// which the client fails fast), or gateway close code 4004.
	ErrInvalidToken = errors.New("protocols: invalid token")

	// ErrInvalidRequestBudget is returned, without sending, once the
	// client's budget of invalid requests (401, 403, non-shared 429) in
	// Discord's 10-minute window is spent, so that Cloudflare does not ban
	// the IP.
	ErrInvalidRequestBudget = errors.New("protocols: invalid-request budget exhausted")

	// ErrRetriesExhausted is wrapped, with the last failure, when a request
	// failed MaxRetries+1 times with 5xx or network errors, or met more
	// 429s in a row than the client's own bound.
	ErrRetriesExhausted = errors.New("protocols: retries exhausted")

	// ErrNotSupported is returned by optional capabilities an
	// implementation does not have; the conformance suite skips on it.
	ErrNotSupported = errors.New("protocols: not supported")

	// ErrZombieConnection is returned by KeepAlive.Run when no heartbeat
	// ACK arrived between two heartbeats.
	ErrZombieConnection = errors.New("protocols: zombie connection: heartbeat not acknowledged")

	// ErrInvalidSession means the gateway sent INVALID_SESSION.
	ErrInvalidSession = errors.New("protocols: invalid session")

	// ErrNoSession is returned by SessionStore.Load when no session is
	// stored for the shard.
	ErrNoSession = errors.New("protocols: no stored session")

	// ErrInvalidShard matches close code 4010 and invalid shard settings.
	ErrInvalidShard = errors.New("protocols: invalid shard")

	// ErrShardingRequired matches close code 4011: the bot has too many
	// guilds for its shard count.
	ErrShardingRequired = errors.New("protocols: sharding required")

	// ErrInvalidAPIVersion matches close code 4012.
	ErrInvalidAPIVersion = errors.New("protocols: invalid API version")

	// ErrInvalidIntents matches close code 4013 and intents out of range.
	ErrInvalidIntents = errors.New("protocols: invalid intents")

	// ErrDisallowedIntents matches close code 4014: a privileged intent not
	// enabled for the application.
	ErrDisallowedIntents = errors.New("protocols: disallowed intents")

	// ErrSessionStartLimit means the daily session-start budget from
	// /gateway/bot is spent until its reset.
	ErrSessionStartLimit = errors.New("protocols: session start limit reached")
)

// RateLimitError reports a 429 the client did not retry: a Cloudflare ban,
// or a wait longer than the caller's context allows. It matches
// [ErrRateLimited].
type RateLimitError struct {
	// Route is the request's route.
	Route Route
	// Bucket is the bucket hash, if Discord sent one.
	Bucket string
	// Scope is the 429's scope.
	Scope Scope
	// RetryAfter is how long Discord asked to wait.
	RetryAfter time.Duration
	// Message is Discord's message, if the body had one.
	Message string
}

// Error describes the failure; it never contains the token.
func (e *RateLimitError) Error() string {
	return fmt.Sprintf("%s: rate limited (scope %s), retry after %v", e.Route.Redacted(), e.Scope, e.RetryAfter)
}

// Is reports whether target is [ErrRateLimited].
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// HTTPError is a non-2xx response other than a retried 429 or 5xx.
// A 401 also matches [ErrInvalidToken].
type HTTPError struct {
	// Route is the request's route.
	Route Route
	// Status is the HTTP status code.
	Status int
	// Code is Discord's JSON error code (0 when the body had none).
	Code int
	// Message is Discord's message, or the status text.
	Message string
	// Errors is the nested "errors" object of a form error, raw; see
	// [HTTPError.FieldErrors].
	Errors json.RawMessage
	// Body is the raw response body.
	Body []byte
}

// Error describes the failure; it never contains the token.
func (e *HTTPError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d %s", e.Route.Redacted(), e.Status, http.StatusText(e.Status))
	if e.Code != 0 || e.Message != "" {
		fmt.Fprintf(&b, ": %d %s", e.Code, e.Message)
	}
	for _, f := range e.FieldErrors() {
		fmt.Fprintf(&b, "; %s: %s", f.Path, f.Message)
	}
	return b.String()
}

// Is reports whether target is [ErrInvalidToken] and the status was 401.
func (e *HTTPError) Is(target error) bool {
	return target == ErrInvalidToken && e.Status == http.StatusUnauthorized
}

// FieldError is one leaf of Discord's nested form errors.
type FieldError struct {
	// Path locates the field: "embeds.0.title"; "" for the whole request.
	Path string
	// Code is the leaf's code, such as "BASE_TYPE_REQUIRED".
	Code string
	// Message is the leaf's message.
	Message string
}

// FieldErrors flattens [HTTPError.Errors] into one entry per leaf, sorted by
// path. Malformed trees yield what could be read.
func (e *HTTPError) FieldErrors() []FieldError {
	if len(e.Errors) == 0 {
		return nil
	}
	var out []FieldError
	walkErrors(e.Errors, "", &out)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func walkErrors(raw json.RawMessage, path string, out *[]FieldError) {
	var node map[string]json.RawMessage
	if json.Unmarshal(raw, &node) != nil {
		return
	}
	for key, val := range node {
		if key == "_errors" {
			var leaves []struct {
				Code    json.RawMessage `json:"code"`
				Message string          `json:"message"`
			}
			if json.Unmarshal(val, &leaves) != nil {
				continue
			}
			for _, l := range leaves {
				code := strings.Trim(string(l.Code), `"`)
				*out = append(*out, FieldError{Path: path, Code: code, Message: l.Message})
			}
			continue
		}
		p := key
		if path != "" {
			p = path + "." + key
		}
		walkErrors(val, p, out)
	}
}

// CloseError is a gateway connection closed with a close frame. Fatal codes
// also match their sentinel: 4004 [ErrInvalidToken], 4010
// [ErrInvalidShard], 4011 [ErrShardingRequired], 4012
// [ErrInvalidAPIVersion], 4013 [ErrInvalidIntents], 4014
// [ErrDisallowedIntents].
type CloseError struct {
	// Code is the close code.
	Code CloseCode
	// Reason is the close frame's reason text.
	Reason string
}

// Error describes the failure; it never contains the token.
func (e *CloseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("gateway closed: %d %s", int(e.Code), e.Code)
	}
	return fmt.Sprintf("gateway closed: %d %s: %s", int(e.Code), e.Code, e.Reason)
}

// Is reports whether target is the sentinel of a fatal close code.
func (e *CloseError) Is(target error) bool {
	s, ok := fatalSentinels[e.Code]
	return ok && s == target
}

var fatalSentinels = map[CloseCode]error{
	CloseAuthenticationFailed: ErrInvalidToken,
	CloseInvalidShard:         ErrInvalidShard,
	CloseShardingRequired:     ErrShardingRequired,
	CloseInvalidAPIVersion:    ErrInvalidAPIVersion,
	CloseInvalidIntents:       ErrInvalidIntents,
	CloseDisallowedIntents:    ErrDisallowedIntents,
}

// CloseStatus returns the close code of the first *CloseError in err's
// chain, or -1 when there is none.
func CloseStatus(err error) CloseCode {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}
