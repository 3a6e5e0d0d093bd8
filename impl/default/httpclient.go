package reference

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cordkit/cordkit/internal/backoff"
	"github.com/cordkit/cordkit/internal/wait"
	"github.com/cordkit/cordkit/protocols"
)

var (
	_ protocols.HTTPClient                                           = (*client)(nil)
	_ func(protocols.HTTPClientParams) (protocols.HTTPClient, error) = NewHTTPClient
	_ func(protocols.HTTPClientParams) (protocols.HTTPClient, error) = HTTPClientOptions{}.New
)

// Defaults of [protocols.HTTPClientParams] and [HTTPClientOptions].
const (
	// DefaultMaxRetries is the number of retries of a 5xx or network
	// failure when HTTPClientParams.MaxRetries is zero.
	DefaultMaxRetries = 5
	// DefaultInvalidRequestBudget is the number of invalid responses (401,
	// 403, non-shared 429) allowed per [InvalidRequestWindow] when
	// HTTPClientParams.InvalidRequestBudget is zero: half of Discord's
	// 10,000, leaving room for other processes behind the same IP.
	DefaultInvalidRequestBudget = 5000
	// DefaultMaxRateLimitRetries is the number of 429s a request retries
	// when HTTPClientOptions.MaxRateLimitRetries is zero.
	DefaultMaxRateLimitRetries = 10
	// DefaultUserAgent is sent when HTTPClientParams.UserAgent is empty.
	DefaultUserAgent = "DiscordBot (https://github.com/cordkit/cordkit, 0.1.0)"
	// InvalidRequestWindow is Discord's window for counting invalid
	// requests.
	InvalidRequestWindow = 10 * time.Minute
)

// HTTPClientOptions holds the settings of the reference HTTP client that
// [protocols.HTTPClientParams] does not carry. The zero value gives the
// defaults. Its New method has the shape of the TypeSheet's NewHTTPClient
// field.
type HTTPClientOptions struct {
	// BackoffBase is the ceiling of the first delay between retries of a
	// 5xx or network failure; each retry doubles it, and the delay is drawn
	// from the upper half of the ceiling. Defaults to 100ms.
	BackoffBase time.Duration
	// BackoffMax caps the delay between retries. Defaults to 10s.
	BackoffMax time.Duration
	// MaxRateLimitRetries is how many 429s of user, shared or global scope
	// a request retries before it fails with an error wrapping both
	// [protocols.ErrRetriesExhausted] and the last *RateLimitError. These
	// retries do not use up MaxRetries, which counts real failures, but
	// are bounded too, so that a server that answers 429 forever cannot
	// hold a request forever. Defaults to [DefaultMaxRateLimitRetries];
	// negative means 429s are never retried.
	MaxRateLimitRetries int
}

// NewHTTPClient returns the reference [protocols.HTTPClient] with default
// [HTTPClientOptions].
func NewHTTPClient(p protocols.HTTPClientParams) (protocols.HTTPClient, error) {
	return HTTPClientOptions{}.New(p)
}

// New returns the reference [protocols.HTTPClient] with options o. It
// checks p: the token must pass [protocols.Token.Validate] (the error wraps
// [protocols.ErrInvalidToken]), BaseURL must be an absolute http or https
// URL, and RateLimiter must not be nil.
//
// Defaults: UserAgent [DefaultUserAgent]; MaxRetries 0 means
// [DefaultMaxRetries] and a negative value means no retries at all, 429s
// included; InvalidRequestBudget 0 means [DefaultInvalidRequestBudget] and
// a negative value disables the budget; a nil Logger discards logs; a nil
// Doer means an *http.Client built here.
//
// # Requests
//
// Each attempt of [protocols.HTTPClient.Do] waits on the RateLimiter, sends
// the request, reads and closes the whole body, parses the rate-limit
// headers with [protocols.ParseRateLimitInfo] and completes the permit (or
// cancels it when no response came). Then:
//
//   - 2xx: the response is returned.
//   - 429 of user, shared or global scope: retried once the limiter's pause
//     is over, up to MaxRateLimitRetries times. When the caller's deadline
//     comes before RetryAfter, the *RateLimitError is returned at once
//     instead of sleeping into the deadline.
//   - 429 of Cloudflare scope (an IP ban): a *RateLimitError, not retried;
//     the limiter pauses every route.
//   - 5xx and network errors: retried after exponential backoff with
//     jitter, up to MaxRetries times; then an error wrapping
//     [protocols.ErrRetriesExhausted] and the last failure.
//   - Other statuses: a *HTTPError, not retried. After a 401 of a request
//     that carried the token, every later authenticated request fails at
//     once with [protocols.ErrInvalidToken], without being sent.
//
// 401, 403 and non-shared 429 responses are counted over
// [InvalidRequestWindow]; once the count reaches the budget, requests fail
// at once with [protocols.ErrInvalidRequestBudget] until the oldest ones
// leave the window, so that Cloudflare does not ban the IP.
//
// A request with Files is rebuilt for every attempt. A file whose Reader
// is an io.Seeker is rewound to where it stood before the first attempt;
// any other reader makes the request fail with its first failure instead
// of being retried.
//
// # The token
//
// The token is sent only to BaseURL's scheme and host. The *http.Client
// built here, and a caller's *http.Client whose CheckRedirect is nil (a
// copy is used, the caller's client is not changed), refuse to follow a
// redirect to another host or scheme and return the 3xx as a *HTTPError.
// The token never appears in errors or logs, and neither does a request
// path, which may hold a webhook token: logs and errors name the route by
// its template ([protocols.Route.Endpoint]), except the protocols'
// *HTTPError and *RateLimitError, which print their Route.
//
// Logs go to p.Logger: Debug for every response, Warn for 429s and
// retries, with the attributes route, bucket, status, scope and
// retry_after.
//
// # Close
//
// Close cancels the requests in progress, which then fail with
// [protocols.ErrClosed], and closes the idle connections of an
// *http.Client Doer. It does not close the RateLimiter: the limiter
// belongs to whoever built it (cordkit's State), which may share it.
func (o HTTPClientOptions) New(p protocols.HTTPClientParams) (protocols.HTTPClient, error) {
	if err := p.Token.Validate(); err != nil {
		return nil, fmt.Errorf("reference: new HTTP client: %w", err)
	}
	if p.RateLimiter == nil {
		return nil, errors.New("reference: new HTTP client: RateLimiter is nil")
	}
	base, err := url.Parse(p.BaseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" ||
		base.User != nil || base.RawQuery != "" || base.Fragment != "" {
		return nil, fmt.Errorf("reference: new HTTP client: BaseURL %q is not an absolute http or https URL without query", p.BaseURL)
	}
	c := &client{
		token:    p.Token,
		base:     strings.TrimRight(base.String(), "/"),
		scheme:   base.Scheme,
		host:     base.Host,
		ua:       p.UserAgent,
		limiter:  p.RateLimiter,
		retries:  p.MaxRetries,
		limited:  o.MaxRateLimitRetries,
		budget:   p.InvalidRequestBudget,
		backoff:  backoff.Backoff{Base: o.BackoffBase, Max: o.BackoffMax},
		logger:   p.Logger,
		inflight: make(map[uint64]context.CancelCauseFunc),
	}
	if c.ua == "" {
		c.ua = DefaultUserAgent
	}
	c.uaHeader = []string{c.ua}
	c.authHeader = &[]string{c.token.Authorization()}
	switch {
	case c.retries == 0:
		c.retries = DefaultMaxRetries
	case c.retries < 0:
		c.retries = 0
		c.limited = -1
	}
	if c.limited == 0 {
		c.limited = DefaultMaxRateLimitRetries
	}
	if c.budget == 0 {
		c.budget = DefaultInvalidRequestBudget
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	switch d := p.Doer.(type) {
	case nil:
		c.doer = c.defaultDoer()
	case *http.Client:
		if d.CheckRedirect == nil {
			cp := *d
			cp.CheckRedirect = c.checkRedirect
			c.doer = &cp
		} else {
			c.doer = d
		}
	default:
		c.doer = d
	}
	return c, nil
}

type client struct {
	token  protocols.Token
	base   string // BaseURL without its trailing slash
	scheme string
	host   string
	ua     string
	// uaHeader and authHeader are the User-Agent and Authorization
	// header values, built once.
	uaHeader []string
	// authHeader is behind a pointer so that printing the client (%v of
	// a struct prints unexported fields as they are) shows an address,
	// never the token.
	authHeader *[]string
	doer       protocols.HTTPDoer
	limiter    protocols.RateLimiter
	retries    int // retries of 5xx and network failures, >= 0
	limited    int // retries of 429s; < 0 for none
	budget     int // invalid responses per window; < 0 for no budget
	backoff    backoff.Backoff
	logger     *slog.Logger

	tokenInvalid atomic.Bool

	mu       sync.Mutex
	closed   bool
	nextID   uint64
	inflight map[uint64]context.CancelCauseFunc // cancels Do calls on Close
	invalid  []time.Time                        // arrival of invalid responses, oldest first
}

// defaultDoer builds the *http.Client used when no Doer is given: the
// default transport's timeouts, more idle connections to the one host, a
// bound on waiting for response headers, and no redirect off BaseURL's
// host.
func (c *client) defaultDoer() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 32
	t.ResponseHeaderTimeout = 30 * time.Second
	return &http.Client{Transport: t, CheckRedirect: c.checkRedirect}
}

// checkRedirect follows redirects on BaseURL's scheme and host only, so
// that the Authorization header never leaves for another host.
func (c *client) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if req.URL.Scheme != c.scheme || req.URL.Host != c.host {
		return http.ErrUseLastResponse
	}
	return nil
}

// Do sends req and returns its 2xx response; see [HTTPClientOptions.New].
func (c *client) Do(ctx context.Context, req *protocols.Request) (*protocols.Response, error) {
	if req == nil {
		return nil, fmt.Errorf("reference: do: nil request: %w", protocols.ErrInvalidRoute)
	}
	r := req.Route
	if err := checkRoute(r); err != nil {
		return nil, err
	}
	dctx, done, err := c.begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("reference: %s: %w", r.Endpoint(), err)
	}
	defer done()

	files := newFileSet(req.Files)
	var (
		failures  int       // 5xx and network failures so far
		limited   int       // 429s retried so far
		lastErr   error     // the last failure
		notBefore time.Time // a 429's RetryAfter ends then
	)
	for attempt := 0; ; attempt++ {
		if attempt > 0 && !files.rewind() {
			return nil, lastErr // a file cannot be read again
		}
		if err := c.preflight(r, req.NoAuth); err != nil {
			return nil, err
		}
		body, contentType, err := encodeBody(req, &files)
		if err != nil {
			return nil, fmt.Errorf("reference: %s: %w", r.Endpoint(), err)
		}
		// The limiter, told of a 429 by Complete, already waits for its
		// RetryAfter; waiting here too only matters with a limiter that
		// ignores 429s, which would otherwise be hammered.
		if err := wait.Until(dctx, notBefore, nil); err != nil {
			return nil, c.ended(ctx, dctx, r, err, lastErr)
		}
		permit, err := c.limiter.Acquire(dctx, r)
		if err != nil {
			return nil, c.ended(ctx, dctx, r, err, lastErr)
		}
		hreq, err := c.newRequest(dctx, req, body, contentType)
		if err != nil {
			permit.Cancel()
			return nil, err
		}
		resp, err := c.doer.Do(hreq)
		if err != nil {
			if resp != nil && resp.Body != nil {
				_ = resp.Body.Close() // only a CheckRedirect error comes with a response
			}
			permit.Cancel()
			if dctx.Err() != nil {
				return nil, c.ended(ctx, dctx, r, dctx.Err(), lastErr)
			}
			lastErr = fmt.Errorf("reference: %s: %w", r.Endpoint(), stripURL(err))
			if err := c.retryAfterFailure(ctx, dctx, r, &failures, lastErr, &files); err != nil {
				return nil, err
			}
			continue
		}
		var data []byte
		var readErr error
		if resp.Body != nil {
			data, readErr = readBody(resp)
			_ = resp.Body.Close()
		}
		now := time.Now()
		info := protocols.ParseRateLimitInfo(resp.StatusCode, resp.Header, data, now)
		permit.Complete(info)
		if info.Invalid() {
			c.noteInvalid(now)
		}
		if c.logger.Enabled(ctx, slog.LevelDebug) { // spares the arguments' allocations
			c.logger.DebugContext(ctx, "response", "route", r.Endpoint(), "bucket", info.Bucket,
				"status", resp.StatusCode, "attempt", attempt)
		}
		if readErr != nil {
			if dctx.Err() != nil {
				return nil, c.ended(ctx, dctx, r, dctx.Err(), lastErr)
			}
			lastErr = fmt.Errorf("reference: %s: reading the body of a %d response: %w", r.Endpoint(), resp.StatusCode, stripURL(readErr))
			if err := c.retryAfterFailure(ctx, dctx, r, &failures, lastErr, &files); err != nil {
				return nil, err
			}
			continue
		}

		switch status := resp.StatusCode; {
		case status >= 200 && status < 300:
			return &protocols.Response{Status: status, Header: resp.Header, Body: data, RateLimit: info}, nil

		case status == http.StatusTooManyRequests:
			rlErr := &protocols.RateLimitError{Route: r, Bucket: info.Bucket, Scope: info.Scope,
				RetryAfter: info.RetryAfter, Message: discordMessage(data)}
			c.logger.WarnContext(ctx, "rate limited", "route", r.Endpoint(), "bucket", info.Bucket,
				"status", status, "scope", string(info.Scope), "retry_after", info.RetryAfter)
			lastErr = rlErr
			switch {
			case info.Scope == protocols.ScopeCloudflare || c.limited < 0:
				return nil, rlErr
			case limited >= c.limited:
				return nil, fmt.Errorf("reference: %s: %w: %w", r.Endpoint(), protocols.ErrRetriesExhausted, rlErr)
			case !files.rewindable():
				return nil, rlErr
			}
			if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < info.RetryAfter {
				return nil, rlErr // the caller would rather know now than at its deadline
			}
			limited++
			notBefore = now.Add(info.RetryAfter)

		case status >= 500:
			lastErr = newHTTPError(r, status, data)
			if err := c.retryAfterFailure(ctx, dctx, r, &failures, lastErr, &files); err != nil {
				return nil, err
			}

		default:
			herr := newHTTPError(r, status, data)
			if status == http.StatusUnauthorized && !req.NoAuth {
				c.tokenInvalid.Store(true)
				c.logger.WarnContext(ctx, "token rejected: later requests fail fast", "route", r.Endpoint(), "status", status)
			}
			return nil, herr
		}
	}
}

// checkRoute rejects a Route that cannot be sent.
func checkRoute(r protocols.Route) error {
	switch r.Method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return fmt.Errorf("reference: do: %w: method %q", protocols.ErrInvalidRoute, r.Method)
	}
	if !strings.HasPrefix(r.Path, "/") || strings.ContainsAny(r.Path, "?# \r\n") {
		return fmt.Errorf("reference: do: %w: %s: path must start with / and carry no query", protocols.ErrInvalidRoute, r.Endpoint())
	}
	return nil
}

// begin registers a Do call so that Close can cancel it, and returns its
// context and the function that unregisters it.
func (c *client) begin(ctx context.Context) (context.Context, func(), error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, nil, protocols.ErrClosed
	}
	dctx, cancel := context.WithCancelCause(ctx)
	id := c.nextID
	c.nextID++
	c.inflight[id] = cancel
	return dctx, func() {
		c.mu.Lock()
		delete(c.inflight, id)
		c.mu.Unlock()
		cancel(nil)
	}, nil
}

// ended builds the error of a Do call whose wait or request failed: one
// wrapping the caller's context error, [protocols.ErrClosed] after Close,
// or err otherwise; and the last failure, if any.
func (c *client) ended(ctx, dctx context.Context, r protocols.Route, err, last error) error {
	switch {
	case ctx.Err() != nil:
		err = ctx.Err()
	case errors.Is(context.Cause(dctx), protocols.ErrClosed):
		err = protocols.ErrClosed
	}
	if last != nil {
		return fmt.Errorf("reference: %s: %w; last failure: %w", r.Endpoint(), err, last)
	}
	return fmt.Errorf("reference: %s: %w", r.Endpoint(), err)
}

// retryAfterFailure counts a 5xx or network failure and sleeps before the
// next attempt, or returns the error that ends the request.
func (c *client) retryAfterFailure(ctx, dctx context.Context, r protocols.Route, failures *int, last error, files *fileSet) error {
	if !files.rewindable() {
		return last
	}
	if *failures >= c.retries {
		return fmt.Errorf("reference: %s: %w after %d attempts: %w", r.Endpoint(), protocols.ErrRetriesExhausted, *failures+1, last)
	}
	d := c.backoff.Delay(*failures)
	*failures++
	// An *HTTPError prints its path, which may hold a webhook token: log
	// its status only. Network errors were worded by Do, without the path.
	cause := slog.String("error", last.Error())
	if he := (*protocols.HTTPError)(nil); errors.As(last, &he) {
		cause = slog.Int("status", he.Status)
	}
	c.logger.WarnContext(ctx, "retrying", "route", r.Endpoint(), cause, "retry", *failures, "backoff", d)
	if err := wait.Sleep(dctx, d, nil); err != nil {
		return c.ended(ctx, dctx, r, err, last)
	}
	return nil
}

// preflight fails fast, without sending, after Close, after a 401, or when
// the invalid-request budget is spent.
func (c *client) preflight(r protocols.Route, noAuth bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("reference: %s: %w", r.Endpoint(), protocols.ErrClosed)
	}
	if !noAuth && c.tokenInvalid.Load() {
		return fmt.Errorf("reference: %s: %w: Discord answered 401 to an earlier request", r.Endpoint(), protocols.ErrInvalidToken)
	}
	if c.budget < 0 {
		return nil
	}
	c.pruneInvalid(time.Now())
	if len(c.invalid) >= c.budget {
		return fmt.Errorf("reference: %s: %w: %d invalid responses in the last %v", r.Endpoint(),
			protocols.ErrInvalidRequestBudget, len(c.invalid), InvalidRequestWindow)
	}
	return nil
}

// noteInvalid counts an invalid response that arrived at now.
func (c *client) noteInvalid(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pruneInvalid(now)
	c.invalid = append(c.invalid, now)
}

// pruneInvalid drops the invalid responses that left the window. c.mu is
// held.
func (c *client) pruneInvalid(now time.Time) {
	i := 0
	for i < len(c.invalid) && !now.Before(c.invalid[i].Add(InvalidRequestWindow)) {
		i++
	}
	if i > 0 {
		c.invalid = append(c.invalid[:0], c.invalid[i:]...)
	}
}

// newRequest builds the *http.Request of one attempt.
func (c *client) newRequest(ctx context.Context, req *protocols.Request, body []byte, contentType string) (*http.Request, error) {
	r := req.Route
	u := c.base + r.Path
	if len(req.Query) > 0 {
		u += "?" + req.Query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	hreq, err := http.NewRequestWithContext(ctx, r.Method, u, rd)
	if err != nil || hreq.URL.Scheme != c.scheme || hreq.URL.Host != c.host {
		// err would print the URL, which may hold a webhook token.
		return nil, fmt.Errorf("reference: %s: %w: the path does not form a URL under BaseURL", r.Endpoint(), protocols.ErrInvalidRoute)
	}
	for k, vs := range req.Header {
		switch k = http.CanonicalHeaderKey(k); k {
		case "Authorization", "User-Agent", "Host", "Content-Length":
			continue
		}
		hreq.Header[k] = append([]string(nil), vs...)
	}
	if contentType != "" && (len(req.Files) > 0 || hreq.Header.Get("Content-Type") == "") {
		if contentType == jsonContentType[0] {
			hreq.Header["Content-Type"] = jsonContentType
		} else {
			hreq.Header.Set("Content-Type", contentType)
		}
	}
	if req.Reason != "" {
		hreq.Header.Set("X-Audit-Log-Reason", escapeReason(req.Reason))
	}
	// The same slices for every request: net/http never changes a
	// request's header values, and sharing them spares two allocations.
	hreq.Header["User-Agent"] = c.uaHeader
	if !req.NoAuth {
		hreq.Header["Authorization"] = *c.authHeader
	}
	return hreq, nil
}

// jsonContentType is the Content-Type header of JSON bodies, shared by
// every request.
var jsonContentType = []string{"application/json"}

// maxPresized is the largest Content-Length readBody allocates up front;
// longer or unknown bodies grow as they arrive.
const maxPresized = 1 << 20

// readBody reads the whole body into one allocation when its length is
// known.
func readBody(resp *http.Response) ([]byte, error) {
	n := resp.ContentLength
	if n <= 0 || n > maxPresized { // 0 may be a Doer that did not set it
		return io.ReadAll(resp.Body)
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(resp.Body, data); err != nil {
		return nil, err
	}
	// The body must end here: more bytes than announced are an error, as
	// net/http itself reports them.
	var one [1]byte
	if k, err := resp.Body.Read(one[:]); k > 0 || (err != nil && err != io.EOF) {
		if err == nil {
			err = errors.New("response body longer than its Content-Length")
		}
		return nil, err
	}
	return data, nil
}

// escapeReason percent-encodes an audit-log reason as Discord wants it:
// every byte but the unreserved characters (letters, digits, - _ . ~), and
// a space as %20, never +, so that any URL decoder reads it back the same.
func escapeReason(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// stripURL removes the *url.Error layer, whose message holds the URL and
// so perhaps a webhook token.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// Close cancels the requests in progress and makes later calls fail with
// [protocols.ErrClosed]. It does not close the RateLimiter.
func (c *client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	cancels := make([]context.CancelCauseFunc, 0, len(c.inflight))
	for _, cancel := range c.inflight {
		cancels = append(cancels, cancel)
	}
	c.mu.Unlock()
	for _, cancel := range cancels {
		cancel(protocols.ErrClosed)
	}
	if hc, ok := c.doer.(*http.Client); ok {
		hc.CloseIdleConnections()
	}
	return nil
}

// discordError is the JSON body of a Discord error.
type discordError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Errors  json.RawMessage `json:"errors"`
}

// newHTTPError builds the error of a non-2xx response.
func newHTTPError(r protocols.Route, status int, body []byte) *protocols.HTTPError {
	e := &protocols.HTTPError{Route: r, Status: status, Body: body}
	var d discordError
	if json.Unmarshal(body, &d) == nil {
		e.Code, e.Message = d.Code, d.Message
		if len(d.Errors) > 0 && string(d.Errors) != "null" {
			e.Errors = d.Errors
		}
	}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	return e
}

// discordMessage returns the message of a JSON error body, or "".
func discordMessage(body []byte) string {
	var d discordError
	if json.Unmarshal(body, &d) != nil {
		return ""
	}
	return d.Message
}
