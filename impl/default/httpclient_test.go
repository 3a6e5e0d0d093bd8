package reference_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"testing/synctest"
	"time"

	reference "github.com/cordkit/cordkit/impl/default"
	"github.com/cordkit/cordkit/protocols"
)

// seen is one request as the fake Discord received it.
type seen struct {
	method, url string
	header      http.Header
	body        []byte
	at          time.Time
}

// fakeDiscord answers requests with a handler, numbering them from 0, and
// records them.
type fakeDiscord struct {
	handle func(req *http.Request, n int) (*http.Response, error)

	mu   sync.Mutex
	reqs []seen
}

func (f *fakeDiscord) Do(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body.Close()
	}
	f.mu.Lock()
	n := len(f.reqs)
	f.reqs = append(f.reqs, seen{req.Method, req.URL.String(), req.Header.Clone(), body, time.Now()})
	f.mu.Unlock()
	return f.handle(req, n)
}

func (f *fakeDiscord) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

// script answers the n-th request with the n-th response, and the last one
// after that.
func script(responses ...func(req *http.Request) *http.Response) *fakeDiscord {
	return &fakeDiscord{handle: func(req *http.Request, n int) (*http.Response, error) {
		if n >= len(responses) {
			n = len(responses) - 1
		}
		return responses[n](req), nil
	}}
}

func ok(body string) func(*http.Request) *http.Response {
	return func(req *http.Request) *http.Response {
		return response(req, 200, body, "Content-Type", "application/json",
			"X-RateLimit-Limit", "5", "X-RateLimit-Remaining", "4", "X-RateLimit-Reset-After", "1", "X-RateLimit-Bucket", "H")
	}
}

func status(code int, body string, header ...string) func(*http.Request) *http.Response {
	return func(req *http.Request) *http.Response { return response(req, code, body, header...) }
}

// rateLimited answers a 429 of the scope with retry_after seconds.
func rateLimited(scope, retryAfter string) func(*http.Request) *http.Response {
	switch scope {
	case "cloudflare":
		return status(429, `{"code":0,"message":"You are being blocked"}`)
	case "global":
		return status(429, `{"message":"You are being rate limited.","retry_after":`+retryAfter+`,"global":true}`,
			"X-RateLimit-Global", "true", "X-RateLimit-Scope", "global", "Retry-After", retryAfter)
	}
	return status(429, `{"message":"You are being rate limited.","retry_after":`+retryAfter+`,"global":false}`,
		"X-RateLimit-Scope", scope, "Retry-After", retryAfter, "X-RateLimit-Bucket", "H",
		"X-RateLimit-Limit", "5", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset-After", retryAfter)
}

type clientConfig struct {
	params protocols.HTTPClientParams
	opts   reference.HTTPClientOptions
}

// newClient builds a client on doer with a fresh limiter; both are closed
// at the end of the test.
func newClient(t *testing.T, doer protocols.HTTPDoer, mods ...func(*clientConfig)) protocols.HTTPClient {
	t.Helper()
	l, err := reference.NewRateLimiter(protocols.RateLimiterParams{GlobalLimit: reference.DefaultGlobalLimit})
	if err != nil {
		t.Fatal(err)
	}
	cfg := clientConfig{params: protocols.HTTPClientParams{
		Token:       protocols.BotToken(secret),
		BaseURL:     "https://discord.test/api/v10",
		Doer:        doer,
		RateLimiter: l,
	}}
	for _, m := range mods {
		m(&cfg)
	}
	c, err := cfg.opts.New(cfg.params)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		l.Close()
	})
	return c
}

func get(t *testing.T, template string, args ...string) *protocols.Request {
	return &protocols.Request{Route: route(t, "GET", template, args...)}
}

func TestNewHTTPClientValidatesParams(t *testing.T) {
	l, _ := reference.NewRateLimiter(protocols.RateLimiterParams{})
	defer l.Close()
	valid := protocols.HTTPClientParams{Token: protocols.BotToken(secret), BaseURL: "https://discord.com/api/v10", RateLimiter: l}
	tests := []struct {
		name   string
		modify func(p *protocols.HTTPClientParams)
		want   error // nil: any error
	}{
		{"EmptyToken", func(p *protocols.HTTPClientParams) { p.Token = protocols.Token{} }, protocols.ErrInvalidToken},
		{"MalformedToken", func(p *protocols.HTTPClientParams) { p.Token = protocols.BotToken("not-a-token") }, protocols.ErrInvalidToken},
		{"NilRateLimiter", func(p *protocols.HTTPClientParams) { p.RateLimiter = nil }, nil},
		{"EmptyBaseURL", func(p *protocols.HTTPClientParams) { p.BaseURL = "" }, nil},
		{"RelativeBaseURL", func(p *protocols.HTTPClientParams) { p.BaseURL = "/api/v10" }, nil},
		{"FTPBaseURL", func(p *protocols.HTTPClientParams) { p.BaseURL = "ftp://discord.com/api" }, nil},
		{"BaseURLWithQuery", func(p *protocols.HTTPClientParams) { p.BaseURL = "https://discord.com/api?x=1" }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := valid
			tt.modify(&p)
			c, err := reference.NewHTTPClient(p)
			if err == nil {
				c.Close()
				t.Fatal("NewHTTPClient accepted invalid params")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("got %v, want an error wrapping %v", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error %q contains the token", err)
			}
		})
	}
	c, err := reference.NewHTTPClient(valid)
	if err != nil {
		t.Fatalf("valid params: %v", err)
	}
	c.Close()
}

func TestHTTPClientHeaders(t *testing.T) {
	tests := []struct {
		name   string
		req    func(t *testing.T) *protocols.Request
		ua     string
		check  func(t *testing.T, s seen)
		target string // wanted URL
	}{
		{
			name:   "AuthorizationAndDefaultUserAgent",
			req:    func(t *testing.T) *protocols.Request { return get(t, "/users/@me") },
			target: "https://discord.test/api/v10/users/@me",
			check: func(t *testing.T, s seen) {
				if got, want := s.header.Get("Authorization"), "Bot "+secret; got != want {
					t.Errorf("Authorization = %q, want %q", got, want)
				}
				if got := s.header.Get("User-Agent"); got != reference.DefaultUserAgent {
					t.Errorf("User-Agent = %q, want %q", got, reference.DefaultUserAgent)
				}
				if !strings.HasPrefix(reference.DefaultUserAgent, "DiscordBot (") {
					t.Errorf("default User-Agent %q is not a DiscordBot one", reference.DefaultUserAgent)
				}
				if got := s.header.Get("Content-Type"); got != "" {
					t.Errorf("Content-Type = %q on a request without body", got)
				}
			},
		},
		{
			name: "CustomUserAgentQueryAndJSONBody",
			ua:   "DiscordBot (https://example.com, 2.0)",
			req: func(t *testing.T) *protocols.Request {
				return &protocols.Request{Route: route(t, "POST", "/channels/{channel_id}/messages", "1"),
					Query: url.Values{"wait": {"true"}}, Body: []byte(`{"content":"hi"}`)}
			},
			target: "https://discord.test/api/v10/channels/1/messages?wait=true",
			check: func(t *testing.T, s seen) {
				if got := s.header.Get("User-Agent"); got != "DiscordBot (https://example.com, 2.0)" {
					t.Errorf("User-Agent = %q", got)
				}
				if got := s.header.Get("Content-Type"); got != "application/json" {
					t.Errorf("Content-Type = %q, want application/json", got)
				}
				if string(s.body) != `{"content":"hi"}` {
					t.Errorf("body = %q", s.body)
				}
			},
		},
		{
			name: "ReasonIsURLEncoded",
			req: func(t *testing.T) *protocols.Request {
				return &protocols.Request{Route: route(t, "DELETE", "/guilds/{guild_id}/members/{user_id}", "1", "2"),
					Reason: "spam & abuse/ü 100%+1"}
			},
			target: "https://discord.test/api/v10/guilds/1/members/2",
			check: func(t *testing.T, s seen) {
				got := s.header.Get("X-Audit-Log-Reason")
				if want := "spam%20%26%20abuse%2F%C3%BC%20100%25%2B1"; got != want {
					t.Errorf("X-Audit-Log-Reason = %q, want %q", got, want)
				}
				for _, unescape := range []func(string) (string, error){url.PathUnescape, url.QueryUnescape} {
					if back, err := unescape(got); err != nil || back != "spam & abuse/ü 100%+1" {
						t.Errorf("reason decodes to %q, %v", back, err)
					}
				}
			},
		},
		{
			name: "ExtraHeadersCannotOverrideCredentials",
			req: func(t *testing.T) *protocols.Request {
				r := get(t, "/users/@me")
				r.Header = http.Header{"Authorization": {"Bot stolen"}, "user-agent": {"evil"}, "X-Custom": {"1"}}
				return r
			},
			target: "https://discord.test/api/v10/users/@me",
			check: func(t *testing.T, s seen) {
				if got := s.header.Values("Authorization"); len(got) != 1 || got[0] != "Bot "+secret {
					t.Errorf("Authorization = %q", got)
				}
				if got := s.header.Values("User-Agent"); len(got) != 1 || got[0] != reference.DefaultUserAgent {
					t.Errorf("User-Agent = %q", got)
				}
				if got := s.header.Get("X-Custom"); got != "1" {
					t.Errorf("X-Custom = %q, want 1", got)
				}
			},
		},
		{
			name: "NoAuthSendsNoToken",
			req: func(t *testing.T) *protocols.Request {
				r := &protocols.Request{Route: route(t, "POST", "/webhooks/{webhook_id}/{webhook_token}", "1", "tok"),
					Body: []byte(`{}`), NoAuth: true, Header: http.Header{"Authorization": {"Bot x"}}}
				return r
			},
			target: "https://discord.test/api/v10/webhooks/1/tok",
			check: func(t *testing.T, s seen) {
				if got := s.header.Values("Authorization"); len(got) != 0 {
					t.Errorf("Authorization = %q on a NoAuth request", got)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := script(ok(`{}`))
				c := newClient(t, d, func(c *clientConfig) { c.params.UserAgent = tt.ua })
				if _, err := c.Do(t.Context(), tt.req(t)); err != nil {
					t.Fatal(err)
				}
				reqs := d.requests()
				if len(reqs) != 1 {
					t.Fatalf("%d requests sent, want 1", len(reqs))
				}
				if reqs[0].url != tt.target {
					t.Errorf("URL = %q, want %q", reqs[0].url, tt.target)
				}
				tt.check(t, reqs[0])
			})
		})
	}
}

func TestHTTPClientMultipart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := script(ok(`{}`))
		c := newClient(t, d)
		req := &protocols.Request{
			Route: route(t, "POST", "/channels/{channel_id}/messages", "1"),
			Body:  []byte(`{"content":"files"}`),
			Files: []protocols.File{
				{Name: "a.txt", ContentType: "text/plain", Reader: strings.NewReader("hello")},
				{Name: `we"ird\r\nname.bin`, Reader: bytes.NewReader([]byte{0, 1, 2})},
			},
		}
		if _, err := c.Do(t.Context(), req); err != nil {
			t.Fatal(err)
		}
		s := d.requests()[0]
		mt, params, err := mime.ParseMediaType(s.header.Get("Content-Type"))
		if err != nil || mt != "multipart/form-data" {
			t.Fatalf("Content-Type = %q", s.header.Get("Content-Type"))
		}
		mr := multipart.NewReader(bytes.NewReader(s.body), params["boundary"])
		type part struct{ name, filename, contentType, body string }
		var parts []part
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(p)
			parts = append(parts, part{p.FormName(), p.FileName(), p.Header.Get("Content-Type"), string(b)})
		}
		want := []part{
			{"payload_json", "", "application/json", `{"content":"files"}`},
			{"files[0]", "a.txt", "text/plain", "hello"},
			{"files[1]", `we"ird\r\nname.bin`, "application/octet-stream", "\x00\x01\x02"},
		}
		if len(parts) != len(want) {
			t.Fatalf("parts = %+v, want %+v", parts, want)
		}
		for i := range want {
			if parts[i] != want[i] {
				t.Errorf("part %d = %+v, want %+v", i, parts[i], want[i])
			}
		}
	})
}

func TestHTTPClientSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newClient(t, script(ok(`{"id":"1"}`)))
		resp, err := c.Do(t.Context(), get(t, "/users/@me"))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != 200 || string(resp.Body) != `{"id":"1"}` || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("response = %d %q %v", resp.Status, resp.Body, resp.Header)
		}
		if want := limits("H", 5, 4, time.Second); resp.RateLimit != want {
			t.Errorf("RateLimit = %+v, want %+v", resp.RateLimit, want)
		}
	})
}

func TestHTTPClientHTTPError(t *testing.T) {
	const body = `{"code":50035,"message":"Invalid Form Body","errors":{"embeds":{"0":{"title":{"_errors":[{"code":"BASE_TYPE_MAX_LENGTH","message":"Too long."}]}}},"content":{"_errors":[{"code":"BASE_TYPE_REQUIRED","message":"This field is required"}]}}}`
	tests := []struct {
		name        string
		status      int
		body        string
		wantCode    int
		wantMessage string
		wantFields  []protocols.FieldError
	}{
		{"FormErrors", 400, body, 50035, "Invalid Form Body", []protocols.FieldError{
			{Path: "content", Code: "BASE_TYPE_REQUIRED", Message: "This field is required"},
			{Path: "embeds.0.title", Code: "BASE_TYPE_MAX_LENGTH", Message: "Too long."},
		}},
		{"NotFound", 404, `{"code":10003,"message":"Unknown Channel"}`, 10003, "Unknown Channel", nil},
		{"Forbidden", 403, `{"code":50013,"message":"Missing Permissions"}`, 50013, "Missing Permissions", nil},
		{"NotJSON", 405, `<html>nope</html>`, 0, "Method Not Allowed", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := script(status(tt.status, tt.body))
				c := newClient(t, d)
				r := &protocols.Request{Route: route(t, "POST", "/channels/{channel_id}/messages", "1"), Body: []byte(`{}`)}
				_, err := c.Do(t.Context(), r)
				var he *protocols.HTTPError
				if !errors.As(err, &he) {
					t.Fatalf("got %v, want *HTTPError", err)
				}
				if he.Status != tt.status || he.Code != tt.wantCode || he.Message != tt.wantMessage ||
					string(he.Body) != tt.body || he.Route != r.Route {
					t.Errorf("HTTPError = %+v", he)
				}
				fields := he.FieldErrors()
				if len(fields) != len(tt.wantFields) {
					t.Fatalf("FieldErrors = %+v, want %+v", fields, tt.wantFields)
				}
				for i := range fields {
					if fields[i] != tt.wantFields[i] {
						t.Errorf("FieldErrors[%d] = %+v, want %+v", i, fields[i], tt.wantFields[i])
					}
				}
				if n := len(d.requests()); n != 1 {
					t.Errorf("%d requests sent, want 1: a 4xx is not retried", n)
				}
			})
		})
	}
}

func TestHTTPClientRetriesServerErrors(t *testing.T) {
	netErr := func(*http.Request) *http.Response { return nil }
	tests := []struct {
		name       string
		responses  []func(*http.Request) *http.Response // nil response: network error
		maxRetries int
		wantSent   int
		wantErr    error // nil: success
		wantStatus int   // of the *HTTPError in the chain, 0 for none
	}{
		{"5xxThenSuccess", []func(*http.Request) *http.Response{status(502, ""), status(500, ""), ok("{}")}, 0, 3, nil, 0},
		{"NetworkErrorThenSuccess", []func(*http.Request) *http.Response{netErr, ok("{}")}, 0, 2, nil, 0},
		{"5xxExhausted", []func(*http.Request) *http.Response{status(503, `{"message":"down"}`)}, 2, 3, protocols.ErrRetriesExhausted, 503},
		{"DefaultMaxRetries", []func(*http.Request) *http.Response{status(500, "")}, 0, reference.DefaultMaxRetries + 1, protocols.ErrRetriesExhausted, 500},
		{"BodyReadErrorThenSuccess", []func(*http.Request) *http.Response{brokenBody, ok("{}")}, 0, 2, nil, 0},
		{"NetworkErrorsExhausted", []func(*http.Request) *http.Response{netErr}, 1, 2, protocols.ErrRetriesExhausted, 0},
		{"NegativeMaxRetriesDisablesRetries", []func(*http.Request) *http.Response{status(502, "")}, -1, 1, protocols.ErrRetriesExhausted, 502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := &fakeDiscord{handle: func(req *http.Request, n int) (*http.Response, error) {
					if n >= len(tt.responses) {
						n = len(tt.responses) - 1
					}
					if resp := tt.responses[n](req); resp != nil {
						return resp, nil
					}
					return nil, &url.Error{Op: "Get", URL: req.URL.String(), Err: errors.New("connection reset")}
				}}
				c := newClient(t, d, func(c *clientConfig) { c.params.MaxRetries = tt.maxRetries })
				_, err := c.Do(t.Context(), get(t, "/webhooks/{webhook_id}/{webhook_token}", "1", "webhook-secret"))
				if tt.wantErr == nil && err != nil {
					t.Fatalf("Do: %v", err)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Fatalf("Do: got %v, want an error wrapping %v", err, tt.wantErr)
				}
				var he *protocols.HTTPError
				if got := errors.As(err, &he); got != (tt.wantStatus != 0) || got && he.Status != tt.wantStatus {
					t.Errorf("Do: got %v, want an *HTTPError with status %d", err, tt.wantStatus)
				}
				// *HTTPError prints its Route's path (protocols' choice);
				// the client's own wording must not.
				if err != nil && tt.wantStatus == 0 && strings.Contains(err.Error(), "webhook-secret") {
					t.Errorf("error %q holds the webhook token of the URL", err)
				}
				reqs := d.requests()
				if len(reqs) != tt.wantSent {
					t.Fatalf("%d requests sent, want %d", len(reqs), tt.wantSent)
				}
				// Backoff: retry n waits between half and all of
				// 100ms*2^n (capped at 10s).
				for i := 1; i < len(reqs); i++ {
					gap := reqs[i].at.Sub(reqs[i-1].at)
					ceiling := min(100*time.Millisecond<<(i-1), 10*time.Second)
					if gap < ceiling/2 || gap > ceiling {
						t.Errorf("retry %d came %v after the previous attempt, want within [%v, %v]", i, gap, ceiling/2, ceiling)
					}
				}
			})
		})
	}
}

// brokenBody answers 200 with a body that fails halfway.
func brokenBody(req *http.Request) *http.Response {
	resp := response(req, 200, "")
	resp.Body = io.NopCloser(io.MultiReader(strings.NewReader(`{"id":`), iotest.ErrReader(errors.New("connection reset"))))
	return resp
}

func TestHTTPClientRateLimits(t *testing.T) {
	tests := []struct {
		name      string
		responses []func(*http.Request) *http.Response
		opts      reference.HTTPClientOptions
		deadline  time.Duration // 0: none
		wantSent  int
		wantGap   time.Duration // between the first two requests
		wantErr   error
		wantScope protocols.Scope // of the *RateLimitError in the chain
		wantLimit bool            // budget counts the 429: one more fails fast
	}{
		{name: "UserRetriedAfterRetryAfter", responses: []func(*http.Request) *http.Response{rateLimited("user", "2.5"), ok("{}")},
			wantSent: 2, wantGap: 2500 * time.Millisecond},
		{name: "SharedRetriedAfterRetryAfter", responses: []func(*http.Request) *http.Response{rateLimited("shared", "3"), ok("{}")},
			wantSent: 2, wantGap: 3 * time.Second},
		{name: "GlobalRetriedAfterRetryAfter", responses: []func(*http.Request) *http.Response{rateLimited("global", "1.2"), ok("{}")},
			wantSent: 2, wantGap: 1200 * time.Millisecond},
		{name: "CloudflareNotRetried", responses: []func(*http.Request) *http.Response{rateLimited("cloudflare", ""), ok("{}")},
			wantSent: 1, wantErr: protocols.ErrRateLimited, wantScope: protocols.ScopeCloudflare},
		{name: "DeadlineShorterThanRetryAfter", responses: []func(*http.Request) *http.Response{rateLimited("user", "30"), ok("{}")},
			deadline: 10 * time.Second, wantSent: 1, wantErr: protocols.ErrRateLimited, wantScope: protocols.ScopeUser},
		{name: "RateLimitRetriesBounded", responses: []func(*http.Request) *http.Response{rateLimited("user", "1")},
			opts: reference.HTTPClientOptions{MaxRateLimitRetries: 2}, wantSent: 3, wantGap: time.Second,
			wantErr: protocols.ErrRetriesExhausted, wantScope: protocols.ScopeUser},
		{name: "RateLimitRetriesDisabled", responses: []func(*http.Request) *http.Response{rateLimited("shared", "1")},
			opts: reference.HTTPClientOptions{MaxRateLimitRetries: -1}, wantSent: 1,
			wantErr: protocols.ErrRateLimited, wantScope: protocols.ScopeShared},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := script(tt.responses...)
				c := newClient(t, d, func(c *clientConfig) { c.opts = tt.opts })
				ctx := t.Context()
				if tt.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.deadline)
					defer cancel()
				}
				start := time.Now()
				_, err := c.Do(ctx, get(t, "/channels/{channel_id}", "1"))
				if tt.wantErr == nil && err != nil {
					t.Fatalf("Do: %v", err)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Fatalf("Do: got %v, want an error wrapping %v", err, tt.wantErr)
				}
				var rl *protocols.RateLimitError
				if tt.wantScope != "" && (!errors.As(err, &rl) || rl.Scope != tt.wantScope) {
					t.Errorf("Do: got %v, want a *RateLimitError of scope %s", err, tt.wantScope)
				}
				if tt.deadline > 0 && time.Since(start) != 0 {
					t.Errorf("Do slept %v before giving up on a wait past its deadline", time.Since(start))
				}
				reqs := d.requests()
				if len(reqs) != tt.wantSent {
					t.Fatalf("%d requests sent, want %d", len(reqs), tt.wantSent)
				}
				if tt.wantGap > 0 {
					if gap := reqs[1].at.Sub(reqs[0].at); gap != tt.wantGap {
						t.Errorf("retry sent %v after the 429, want %v", gap, tt.wantGap)
					}
				}
			})
		})
	}
}

func TestHTTPClientRateLimitRetryDoesNotCountAsFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := script(status(502, ""), rateLimited("user", "1"), rateLimited("shared", "1"), ok("{}"))
		c := newClient(t, d, func(c *clientConfig) { c.params.MaxRetries = 1 })
		if _, err := c.Do(t.Context(), get(t, "/channels/{channel_id}", "1")); err != nil {
			t.Fatalf("Do: %v; two 429s and one 502 must fit MaxRetries 1", err)
		}
	})
}

func TestHTTPClientUnauthorizedFailsFast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := script(status(401, `{"message":"401: Unauthorized","code":0}`), ok("{}"))
		c := newClient(t, d)
		_, err := c.Do(t.Context(), get(t, "/users/@me"))
		var he *protocols.HTTPError
		if !errors.As(err, &he) || he.Status != 401 || !errors.Is(err, protocols.ErrInvalidToken) {
			t.Fatalf("first Do: got %v, want a 401 *HTTPError matching ErrInvalidToken", err)
		}
		for range 3 {
			_, err = c.Do(t.Context(), get(t, "/guilds/{guild_id}", "1"))
			if !errors.Is(err, protocols.ErrInvalidToken) {
				t.Fatalf("later Do: got %v, want ErrInvalidToken", err)
			}
		}
		if n := len(d.requests()); n != 1 {
			t.Fatalf("%d requests sent, want 1: later requests must fail without sending", n)
		}
		// A request that carries no token is not affected.
		r := &protocols.Request{Route: route(t, "POST", "/webhooks/{webhook_id}/{webhook_token}", "1", "t"), NoAuth: true}
		if _, err := c.Do(t.Context(), r); err != nil {
			t.Fatalf("NoAuth Do: %v", err)
		}
	})
}

func TestHTTPClientNoAuthUnauthorizedKeepsToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := script(status(401, `{"message":"Invalid Webhook Token","code":50027}`), ok("{}"))
		c := newClient(t, d)
		r := &protocols.Request{Route: route(t, "POST", "/webhooks/{webhook_id}/{webhook_token}", "1", "t"), NoAuth: true}
		if _, err := c.Do(t.Context(), r); err == nil {
			t.Fatal("want the 401")
		}
		if _, err := c.Do(t.Context(), get(t, "/users/@me")); err != nil {
			t.Fatalf("a NoAuth 401 marked the bot token invalid: %v", err)
		}
	})
}

func TestHTTPClientInvalidRequestBudget(t *testing.T) {
	tests := []struct {
		name    string
		answer  func(*http.Request) *http.Response
		counted bool
	}{
		{"Forbidden", status(403, `{"code":50013,"message":"Missing Permissions"}`), true},
		{"UserRateLimit", rateLimited("user", "0"), true},
		{"SharedRateLimitNotCounted", rateLimited("shared", "0"), false},
		{"NotFoundNotCounted", status(404, `{"code":10003,"message":"Unknown Channel"}`), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := script(tt.answer)
				c := newClient(t, d, func(c *clientConfig) {
					c.params.InvalidRequestBudget = 3
					c.opts.MaxRateLimitRetries = -1
				})
				for i := range 3 {
					time.Sleep(time.Minute)
					if _, err := c.Do(t.Context(), get(t, "/channels/{channel_id}", "1")); errors.Is(err, protocols.ErrInvalidRequestBudget) {
						t.Fatalf("request %d failed fast before the budget was spent", i)
					}
				}
				_, err := c.Do(t.Context(), get(t, "/channels/{channel_id}", "2"))
				if got := errors.Is(err, protocols.ErrInvalidRequestBudget); got != tt.counted {
					t.Fatalf("fourth Do: got %v, want ErrInvalidRequestBudget: %v", err, tt.counted)
				}
				if !tt.counted {
					return
				}
				if n := len(d.requests()); n != 3 {
					t.Errorf("%d requests sent, want 3", n)
				}
				// The first invalid response leaves the 10-minute window
				// 10 minutes after it arrived.
				time.Sleep(reference.InvalidRequestWindow - 2*time.Minute)
				if _, err := c.Do(t.Context(), get(t, "/channels/{channel_id}", "3")); errors.Is(err, protocols.ErrInvalidRequestBudget) {
					t.Errorf("still failing fast after the window slid: %v", err)
				}
			})
		})
	}
}

func TestHTTPClientRedirectsNeverLeakToken(t *testing.T) {
	// Real loopback servers, outside a bubble: another port is another
	// host, as far as the client is concerned.
	var leaked sync.Map
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Store(r.Header.Get("Authorization"), true)
	}))
	defer evil.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v10/away":
			http.Redirect(w, r, evil.URL+"/steal", http.StatusFound)
		case "/api/v10/here":
			http.Redirect(w, r, "/api/v10/target", http.StatusTemporaryRedirect)
		case "/api/v10/target":
			if r.Header.Get("Authorization") != "Bot "+secret {
				w.WriteHeader(401)
				return
			}
			w.Write([]byte(`{}`))
		}
	}))
	defer api.Close()

	doers := []struct {
		name string
		doer protocols.HTTPDoer
	}{
		{"DefaultDoer", nil},
		{"CallerClientWithoutCheckRedirect", &http.Client{}},
	}
	for _, dd := range doers {
		t.Run(dd.name, func(t *testing.T) {
			c := newClient(t, dd.doer, func(c *clientConfig) { c.params.BaseURL = api.URL + "/api/v10/" })
			_, err := c.Do(t.Context(), get(t, "/away"))
			var he *protocols.HTTPError
			if !errors.As(err, &he) || he.Status != http.StatusFound {
				t.Errorf("cross-host redirect: got %v, want the 302 as *HTTPError", err)
			}
			if _, err := c.Do(t.Context(), get(t, "/here")); err != nil {
				t.Errorf("same-host redirect: %v", err)
			}
			leaked.Range(func(k, _ any) bool {
				t.Errorf("the other host received a request (Authorization %q)", k)
				return true
			})
			if err := c.Close(); err != nil {
				t.Error(err)
			}
		})
	}
	if dd := doers[1].doer.(*http.Client); dd.CheckRedirect != nil {
		t.Error("the caller's *http.Client was modified")
	}
}

func TestHTTPClientRetryRereadsFiles(t *testing.T) {
	tests := []struct {
		name     string
		reader   func() io.Reader
		wantSent int
		wantErr  error
	}{
		{"SeekerIsRewound", func() io.Reader {
			r := strings.NewReader("skip:content")
			r.Seek(5, io.SeekStart) // starts mid-way: rewound to here, not to 0
			return r
		}, 2, nil},
		{"NonSeekerIsNotRetried", func() io.Reader { return io.MultiReader(strings.NewReader("content")) }, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := script(status(502, `{"message":"bad gateway"}`), ok("{}"))
				c := newClient(t, d)
				req := &protocols.Request{Route: route(t, "POST", "/channels/{channel_id}/messages", "1"),
					Files: []protocols.File{{Name: "f.txt", Reader: tt.reader()}}}
				_, err := c.Do(t.Context(), req)
				reqs := d.requests()
				if len(reqs) != tt.wantSent {
					t.Fatalf("%d requests sent, want %d (err %v)", len(reqs), tt.wantSent, err)
				}
				if tt.wantSent == 1 {
					var he *protocols.HTTPError
					if !errors.As(err, &he) || he.Status != 502 {
						t.Errorf("got %v, want the 502", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Contains(reqs[0].body, []byte("\r\n\r\ncontent\r\n")) || bytes.Contains(reqs[0].body, []byte("skip")) ||
					!bytes.Contains(reqs[1].body, []byte("\r\n\r\ncontent\r\n")) || bytes.Contains(reqs[1].body, []byte("skip")) {
					t.Errorf("retry body differs or is wrong:\n%q\n%q", reqs[0].body, reqs[1].body)
				}
			})
		})
	}
}

func TestHTTPClientHonorsContext(t *testing.T) {
	tests := []struct {
		name    string
		handle  func(req *http.Request, n int) (*http.Response, error)
		timeout time.Duration
		cancel  time.Duration
		want    error
	}{
		{"CanceledDuringRequest", func(req *http.Request, n int) (*http.Response, error) {
			<-req.Context().Done()
			return nil, req.Context().Err()
		}, 0, time.Second, context.Canceled},
		{"DeadlineDuringBackoff", func(req *http.Request, n int) (*http.Response, error) {
			return response(req, 500, ""), nil
		}, 250 * time.Millisecond, 0, context.DeadlineExceeded},
		{"DeadlineDuringRequest", func(req *http.Request, n int) (*http.Response, error) {
			<-req.Context().Done()
			return nil, req.Context().Err()
		}, time.Second, 0, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newClient(t, &fakeDiscord{handle: tt.handle})
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				if tt.timeout > 0 {
					ctx, cancel = context.WithTimeout(ctx, tt.timeout)
					defer cancel()
				}
				if tt.cancel > 0 {
					time.AfterFunc(tt.cancel, cancel)
				}
				_, err := c.Do(ctx, get(t, "/users/@me"))
				if !errors.Is(err, tt.want) {
					t.Fatalf("Do: got %v, want an error wrapping %v", err, tt.want)
				}
			})
		})
	}
}

func TestHTTPClientClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		started := make(chan struct{})
		d := &fakeDiscord{handle: func(req *http.Request, n int) (*http.Response, error) {
			if n == 0 {
				close(started)
				<-req.Context().Done()
				return nil, req.Context().Err()
			}
			return response(req, 200, "{}"), nil
		}}
		l, _ := reference.NewRateLimiter(protocols.RateLimiterParams{GlobalLimit: 50})
		defer l.Close()
		c, err := reference.NewHTTPClient(protocols.HTTPClientParams{Token: protocols.BotToken(secret),
			BaseURL: "https://discord.test/api/v10", Doer: d, RateLimiter: l})
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error)
		go func() {
			_, err := c.Do(t.Context(), get(t, "/users/@me"))
			errc <- err
		}()
		<-started
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if err := <-errc; !errors.Is(err, protocols.ErrClosed) {
			t.Errorf("in-flight Do: got %v, want ErrClosed", err)
		}
		if _, err := c.Do(t.Context(), get(t, "/users/@me")); !errors.Is(err, protocols.ErrClosed) {
			t.Errorf("Do after Close: got %v, want ErrClosed", err)
		}
		// The limiter belongs to its builder and is still open.
		p, err := l.Acquire(t.Context(), route(t, "GET", "/users/@me"))
		if err != nil {
			t.Fatalf("the client closed the limiter: %v", err)
		}
		p.Cancel()
	})
}

func TestHTTPClientRejectsBadRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := script(ok("{}"))
		c := newClient(t, d)
		for _, req := range []*protocols.Request{
			nil,
			{},
			{Route: protocols.Route{Method: "GET", Path: "users/@me"}},
			{Route: protocols.Route{Method: "TRACE", Path: "/users/@me"}},
			{Route: protocols.Route{Method: "GET", Path: "/users?x=1"}},
		} {
			if _, err := c.Do(t.Context(), req); !errors.Is(err, protocols.ErrInvalidRoute) {
				t.Errorf("Do(%+v): got %v, want ErrInvalidRoute", req, err)
			}
		}
		if n := len(d.requests()); n != 0 {
			t.Errorf("%d requests sent", n)
		}
	})
}

func TestHTTPClientNeverLogsSecrets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		d := script(status(500, ""), rateLimited("user", "1"), status(403, `{"message":"no"}`), ok("{}"),
			rateLimited("cloudflare", ""), status(401, `{"message":"401: Unauthorized"}`))
		c := newClient(t, d, func(c *clientConfig) { c.params.Logger = logger })
		var errs []string
		for range 4 {
			r := &protocols.Request{Route: route(t, "POST", "/webhooks/{webhook_id}/{webhook_token}", "1", "hook-secret")}
			if _, err := c.Do(t.Context(), r); err != nil {
				errs = append(errs, err.Error())
			}
		}
		if logs.Len() == 0 {
			t.Fatal("nothing logged")
		}
		for _, s := range append(errs, logs.String()) {
			// Errors may hold the path (see *HTTPError), never the token.
			if strings.Contains(s, "s3cr3t") {
				t.Errorf("the token leaked: %s", s)
			}
		}
		if strings.Contains(logs.String(), "hook-secret") {
			t.Errorf("a webhook token leaked into the logs: %s", logs.String())
		}
		for _, key := range []string{`"route"`, `"bucket"`, `"status"`, `"retry_after"`} {
			if !strings.Contains(logs.String(), key) {
				t.Errorf("no %s attribute in the logs", key)
			}
		}
	})
}

// passLimiter admits everything at once and learns nothing.
type passLimiter struct{}

func (passLimiter) Acquire(ctx context.Context, r protocols.Route) (protocols.Permit, error) {
	return passPermit{}, ctx.Err()
}
func (passLimiter) Close() error { return nil }

type passPermit struct{}

func (passPermit) Complete(protocols.RateLimitInfo) {}
func (passPermit) Cancel()                          {}

func TestHTTPClientWaitsRetryAfterWithoutLimiterHelp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := script(rateLimited("user", "2"), ok("{}"))
		c := newClient(t, d, func(c *clientConfig) { c.params.RateLimiter = passLimiter{} })
		if _, err := c.Do(t.Context(), get(t, "/users/@me")); err != nil {
			t.Fatal(err)
		}
		reqs := d.requests()
		if gap := reqs[1].at.Sub(reqs[0].at); gap != 2*time.Second {
			t.Errorf("retry sent %v after the 429, want 2s even with a limiter that ignores 429s", gap)
		}
	})
}
