package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
	"github.com/cordkit/cordkit/protocols"
)

// Rule sentences of the HTTPClient suite, quoted from package protocols.
const (
	ruleHeaders        = "Every request carries Authorization, a DiscordBot User-Agent, and X-Audit-Log-Reason URL-encoded when a reason is given."
	ruleClientError    = "A 4xx other than 429 is returned as *HTTPError with Discord's code, message and errors, and is not retried."
	ruleServerError    = "A 5xx or network error is retried with backoff up to MaxRetries times."
	rule429Retried     = "A 429 is retried after RetryAfter without counting as a failure of the request."
	ruleInvalidToken   = "After a 401 the token is remembered as invalid and later requests fail fast with ErrInvalidToken."
	ruleBudget         = "Past the invalid-request budget, requests fail fast with ErrInvalidRequestBudget."
	ruleNoAuth         = "NoAuth sends the request without the Authorization header, for routes that take their credential in the path (webhooks with token)."
	ruleHeaderOverride = "Authorization and User-Agent are set by the client and cannot be overridden here."
	ruleQuery          = "Query is appended to the path."
	ruleBody           = "Body is the JSON body, already encoded; nil for none."
	ruleFiles          = "Files turns the request into multipart/form-data."
	ruleFileRewind     = "It is read once per attempt; when it is an io.Seeker it is rewound before a retry, otherwise the request is not retried after its body was read."
	ruleExhausted      = "ErrRetriesExhausted is wrapped, with the last failure, when a request failed MaxRetries+1 times with 5xx or network errors, or met more 429s in a row than the client's own bound."
	ruleRateLimitError = "RateLimitError reports a 429 the client did not retry: a Cloudflare ban, or a wait longer than the caller's context allows."
	ruleSharedInvalid  = "It is not this bot's fault and does not count toward the invalid-request limit."
	ruleInvalid429     = "ErrInvalidRequestBudget is returned, without sending, once the client's budget of invalid requests (401, 403, non-shared 429) in Discord's 10-minute window is spent, so that Cloudflare does not ban the IP."
	ruleDoErrors       = "Errors wrap ctx.Err() when ctx ends, [ErrClosed] after Close, and are otherwise *HTTPError, *RateLimitError or a sentinel of this package."
	ruleClientClose    = "Close releases the client's resources; later calls fail with [ErrClosed]."
	ruleResponseInfo   = "RateLimit is what the response said about rate limits."
)

// Settings the HTTPClient suite passes in HTTPClientParams unless a case
// says otherwise.
const (
	// UserAgent is the User-Agent the suite asks the client to send.
	suiteUserAgent  = "DiscordBot (https://github.com/cordkit/cordkit, conformance)"
	suiteMaxRetries = 3
	suiteBudget     = 1000
	// httpTimeout bounds every request of a case, in bubble time.
	httpTimeout = 15 * time.Minute
)

// TestHTTPClient tests a [protocols.HTTPClient] implementation against
// [mockdiscord], a strict mock of Discord's REST API.
//
// newClient is called once or more per subtest, inside the subtest's
// synctest bubble. The suite fills p.Token, p.BaseURL, p.Doer (the mock's
// in-memory *http.Client, or a wrapper around it), p.UserAgent,
// p.MaxRetries, p.InvalidRequestBudget and p.Logger; p.RateLimiter is nil
// and the factory builds its own (typically with p.GlobalLimit 50):
//
//	func(t *testing.T, p protocols.HTTPClientParams) protocols.HTTPClient {
//		p.RateLimiter, _ = mylimiter.New(protocols.RateLimiterParams{GlobalLimit: 50})
//		t.Cleanup(func() { p.RateLimiter.Close() })
//		c, err := myclient.New(p)
//		if err != nil {
//			t.Fatal(err)
//		}
//		return c
//	}
//
// The suite closes the client and then the mock when the subtest ends,
// and asserts from the mock's observations: what headers arrived, how many
// requests were sent and when, and that no per-route or global window was
// exceeded.
func TestHTTPClient(t *testing.T, newClient func(t *testing.T, p protocols.HTTPClientParams) protocols.HTTPClient) {
	t.Helper()
	Options{}.TestHTTPClient(t, newClient)
}

// TestHTTPClient is [TestHTTPClient] with options.
func (o Options) TestHTTPClient(t *testing.T, newClient func(t *testing.T, p protocols.HTTPClientParams) protocols.HTTPClient) {
	t.Helper()
	runRules(t, o, "TestHTTPClient", httpRules, func(t *testing.T) *httpEnv {
		return &httpEnv{t: t, newClient: newClient}
	})
}

// httpEnv builds a mock and a client inside a case's bubble.
type httpEnv struct {
	t         *testing.T
	newClient func(t *testing.T, p protocols.HTTPClientParams) protocols.HTTPClient
}

// start builds a mock with opts and a client for it, with the suite's
// parameters changed by tweak (which may be nil). Both are closed when the
// case ends, the client first.
func (e *httpEnv) start(opts *mockdiscord.Options, tweak func(*protocols.HTTPClientParams)) (*mockdiscord.Server, protocols.HTTPClient) {
	e.t.Helper()
	srv := mockdiscord.New(opts)
	e.t.Cleanup(func() { _ = srv.Close() })
	p := protocols.HTTPClientParams{
		Token:                protocols.BotToken(mockdiscord.DefaultToken),
		BaseURL:              srv.APIBase(),
		UserAgent:            suiteUserAgent,
		Doer:                 srv.Client(),
		MaxRetries:           suiteMaxRetries,
		InvalidRequestBudget: suiteBudget,
		Logger:               slog.New(slog.NewTextHandler(e.t.Output(), &slog.HandlerOptions{Level: slog.LevelError})),
	}
	if tweak != nil {
		tweak(&p)
	}
	c := e.newClient(e.t, p)
	if c == nil {
		e.t.Fatal("conformance: newClient returned nil")
	}
	e.t.Cleanup(func() { _ = c.Close() })
	return srv, c
}

// doAttempt is a Do call running in its own goroutine.
type doAttempt = attempt[*protocols.Response]

// startDo runs c.Do(ctx, req) in its own goroutine, with the case's context
// bounded by httpTimeout.
func startDo(t *caseT, c protocols.HTTPClient, req *protocols.Request) *doAttempt {
	ctx, cancel := context.WithDeadline(t.ctx, t.start.Add(httpTimeout))
	t.Cleanup(cancel)
	return startDoCtx(t, ctx, c, req)
}

func startDoCtx(t *caseT, ctx context.Context, c protocols.HTTPClient, req *protocols.Request) *doAttempt {
	return startCtx(t, ctx, func(ctx context.Context) (*protocols.Response, error) {
		resp, err := c.Do(ctx, req)
		if err == nil && resp == nil {
			err = errors.New("got a nil *Response and a nil error")
		}
		return resp, err
	})
}

// do calls c.Do and waits for it.
func do(t *caseT, c protocols.HTTPClient, req *protocols.Request) (*protocols.Response, error) {
	a := startDo(t, c, req)
	<-a.done
	return a.v, a.err
}

// mustDo calls c.Do and fails the case unless it returns a response.
func mustDo(t *caseT, c protocols.HTTPClient, req *protocols.Request) *protocols.Response {
	t.Helper()
	resp, err := do(t, c, req)
	if err != nil {
		t.Fatalf("HTTPClient.Do(%v): got error %v, want a response", req.Route, err)
	}
	return resp
}

// jsonBody encodes v for Request.Body.
func jsonBody(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// Requests the HTTP cases send.
func getMe() *protocols.Request {
	return &protocols.Request{Route: mustRoute("GET", "/users/@me")}
}

func getChannel(ch string) *protocols.Request {
	return &protocols.Request{Route: mustRoute("GET", "/channels/{channel_id}", ch)}
}

func getMessages(ch string, q url.Values) *protocols.Request {
	return &protocols.Request{Route: mustRoute("GET", "/channels/{channel_id}/messages", ch), Query: q}
}

func postMessage(ch, content string) *protocols.Request {
	return &protocols.Request{Route: mustRoute("POST", "/channels/{channel_id}/messages", ch), Body: jsonBody(map[string]string{"content": content})}
}

// createdID returns the "id" of a JSON object response.
func createdID(t *caseT, resp *protocols.Response) string {
	t.Helper()
	var m struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(resp.Body, &m); err != nil || m.ID == "" {
		t.Fatalf("HTTPClient.Do: got body %q, want a JSON object with an id (err %v)", resp.Body, err)
	}
	return m.ID
}

// countObs counts the observations of endpoint ("" for all).
func countObs(srv *mockdiscord.Server, endpoint string) int {
	n := 0
	for _, o := range srv.Observations() {
		if endpoint == "" || o.Endpoint == endpoint {
			n++
		}
	}
	return n
}

// noViolations fails the case when the mock saw a window exceeded.
func noViolations(t *caseT, srv *mockdiscord.Server) {
	t.Helper()
	if v := srv.WindowViolations(); len(v) > 0 {
		t.Errorf("HTTPClient: the mock saw %d requests past Discord's limits, want 0; first: %s", len(v), v[0])
	}
}

// flakyDoer fails the first n requests with a network error.
type flakyDoer struct {
	next  protocols.HTTPDoer
	fail  int64
	calls atomic.Int64
}

func (d *flakyDoer) Do(req *http.Request) (*http.Response, error) {
	if d.calls.Add(1) <= d.fail {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused (injected by the conformance suite)")}
	}
	return d.next.Do(req)
}

// onlyReader hides every method of a reader but Read, so that it is not an
// io.Seeker.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// gaps returns the time between consecutive observations.
func gaps(obs []mockdiscord.Observation) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(obs); i++ {
		out = append(out, obs[i].Time.Sub(obs[i-1].Time))
	}
	return out
}

// runRequests sends reqs through c from workers goroutines and returns the
// errors and the bubble time the last one finished.
func runRequests(t *caseT, c protocols.HTTPClient, reqs []*protocols.Request, workers int) ([]error, time.Duration) {
	ctx, cancel := context.WithDeadline(t.ctx, t.start.Add(httpTimeout))
	defer cancel()
	start := time.Now()
	queue := make(chan *protocols.Request, len(reqs))
	for _, r := range reqs {
		queue <- r
	}
	close(queue)
	var (
		mu   sync.Mutex
		errs []error
		last time.Duration
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for r := range queue {
				_, err := c.Do(ctx, r)
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("HTTPClient.Do(%v) at %s: %w", r.Route, t.since(time.Now()), err))
				}
				if d := time.Since(start); d > last {
					last = d
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errs, last
}

func reportErrs(t *caseT, errs []error, n int) {
	t.Helper()
	if len(errs) > 0 {
		t.Errorf("HTTPClient.Do: %d of %d requests failed, want none; first: %v", len(errs), n, errs[0])
	}
}

// otherToken is a well-formed bot token the mock does not accept.
const otherToken = "MjIyMjIyMjIyMjIyMjIyMjIy.R3ZhYg.another-token_for-tests"

var httpRules = []rule[*httpEnv]{
	{
		name: "AuthorizationAndUserAgent",
		rule: ruleHeaders,
		run: func(t *caseT, e *httpEnv) {
			srv, c := e.start(nil, nil)
			ch := srv.Channels()[0]
			mustDo(t, c, getMe())
			mustDo(t, c, postMessage(ch, "hello"))
			mustDo(t, c, getMessages(ch, nil))
			for _, o := range srv.Observations() {
				if !o.Authorized {
					t.Errorf("HTTPClient.Do(%s %s): the mock got no valid \"Authorization: Bot <token>\", want one", o.Method, o.Path)
				}
				if o.UserAgent != suiteUserAgent {
					t.Errorf("HTTPClient.Do(%s %s): got User-Agent %q, want %q (HTTPClientParams.UserAgent)", o.Method, o.Path, o.UserAgent, suiteUserAgent)
				}
				if o.AuditLogReason != "" {
					t.Errorf("HTTPClient.Do(%s %s): got X-Audit-Log-Reason %q, want none: no reason was given", o.Method, o.Path, o.AuditLogReason)
				}
			}
		},
	},
	{
		name: "AuditLogReasonURLEncoded",
		rule: ruleHeaders,
		run: func(t *caseT, e *httpEnv) {
			srv, c := e.start(nil, nil)
			ch := srv.Channels()[0]
			msg := createdID(t, mustDo(t, c, postMessage(ch, "to delete")))
			const reason = "Spam & abuse: 100% ünïcödé ✓ / \"quoted\"\nsecond line"
			req := &protocols.Request{Route: mustRoute("DELETE", "/channels/{channel_id}/messages/{message_id}", ch, msg), Reason: reason}
			mustDo(t, c, req)
			obs := srv.Observations()
			if got := obs[len(obs)-1].AuditLogReason; got != reason {
				t.Errorf("HTTPClient.Do: the mock decoded X-Audit-Log-Reason %q, want %q: the reason must be percent-encoded (spaces as %%20)", got, reason)
			}
		},
	},
	{
		name: "NoAuthOmitsAuthorization",
		rule: ruleNoAuth,
		run: func(t *caseT, e *httpEnv) {
			srv, c := e.start(nil, nil)
			hook := srv.Webhooks()[0]
			req := &protocols.Request{
				Route:  mustRoute("POST", "/webhooks/{webhook_id}/{webhook_token}", hook.ID, hook.Token),
				Body:   jsonBody(map[string]string{"content": "from a webhook"}),
				NoAuth: true,
			}
			resp, err := do(t, c, req)
			if err != nil {
				// The mock answers 401 to an Authorization header with the
				// wrong credential.
				t.Fatalf("HTTPClient.Do (NoAuth webhook execute): got error %v, want a response", err)
			}
			obs := srv.Observations()
			if o := obs[len(obs)-1]; o.Authorized {
				t.Errorf("HTTPClient.Do (NoAuth): the mock got the bot's Authorization header, want none")
			}
			if resp.Status/100 != 2 {
				t.Errorf("HTTPClient.Do (NoAuth): got status %d, want 2xx", resp.Status)
			}
		},
	},
	{
		name: "HeaderCannotOverrideAuthorization",
		rule: ruleHeaderOverride,
		run: func(t *caseT, e *httpEnv) {
			srv, c := e.start(nil, nil)
			req := getMe()
			req.Header = http.Header{
				"Authorization": {"Bot " + otherToken},
				"User-Agent":    {"curl/8.0"},
			}
			if _, err := do(t, c, req); err != nil {
				t.Errorf("HTTPClient.Do (Header with Authorization and User-Agent): got error %v, want a response", err)
			}
			obs := srv.Observations()
			if len(obs) == 0 {
				t.Fatalf("HTTPClient.Do: the mock saw no request, want 1")
			}
			o := obs[len(obs)-1]
			if !o.Authorized {
				t.Errorf("HTTPClient.Do: the mock got an Authorization header other than the client's token, want Request.Header ignored for it")
			}
			if o.UserAgent != suiteUserAgent {
				t.Errorf("HTTPClient.Do: got User-Agent %q, want %q: Request.Header must not override it", o.UserAgent, suiteUserAgent)
			}
		},
	},
	{
		name: "QueryParameters",
		rule: ruleQuery,
		run: func(t *caseT, e *httpEnv) {
			srv, c := e.start(nil, nil)
			ch := srv.Channels()[0]
			for i := range 3 {
				mustDo(t, c, postMessage(ch, "message "+strconv.Itoa(i)))
			}
			q := url.Values{"limit": {"2"}, "after": {"0"}}
			resp := mustDo(t, c, getMessages(ch, q))
			obs := srv.Observations()
			got, err := url.ParseQuery(obs[len(obs)-1].Query)
			if err != nil || got.Get("limit") != "2" || got.Get("after") != "0" || len(got) != 2 {
				t.Errorf("HTTPClient.Do: the mock got query %q, want %q", obs[len(obs)-1].Query, q.Encode())
			}
			var msgs []json.RawMessage
			if err := json.Unmarshal(resp.Body, &msgs); err != nil || len(msgs) != 2 {
				t.Errorf("HTTPClient.Do (limit=2): got %d messages (err %v), want 2", len(msgs), err)
			}
		},
	},
	{
		name: "JSONBodyAndResponse",
		rule: ruleBody,
		run: func(t *caseT, e *httpEnv) {
			srv, c := e.start(nil, nil)
			ch := srv.Channels()[0]
			resp := mustDo(t, c, postMessage(ch, "hello, world"))
			if resp.Status != http.StatusOK {
				t.Errorf("HTTPClient.Do (create message): got status %d, want 200", resp.Status)
			}
			var m struct {
				Content string `json:"content"`
			}
			if err := json.Unmarshal(resp.Body, &m); err != nil || m.Content != "hello, world" {
				t.Errorf("HTTPClient.Do: got body %q, want the created message with content \"hello, world\"", resp.Body)
			}
			if ms := srv.Messages(ch); len(ms) != 1 || ms[0].Content != "hello, world" {
				t.Errorf("HTTPClient.Do: the mock stored %d messages, want one with content \"hello, world\"", len(ms))
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("HTTPClient.Do: got response Content-Type %q, want the response's headers", ct)
			}
		},
	},
	{
		name: "ResponseCarriesRateLimitInfo",
		rule: ruleResponseInfo,
		run: func(t *caseT, e *httpEnv) {
			srv, c := e.start(nil, nil)
			resp := mustDo(t, c, getChannel(srv.Channels()[0]))
			obs := srv.Observations()
			o := obs[len(obs)-1]
			got := resp.RateLimit
			if got.Status != resp.Status || got.Bucket != o.Bucket || !got.HasLimit || got.Limit != 5 || got.Remaining != 4 || got.ResetAfter != time.Second {
				t.Errorf("HTTPClient.Do: got Response.RateLimit %+v, want Status %d, Bucket %q, Limit 5, Remaining 4, ResetAfter 1s", got, resp.Status, o.Bucket)
			}
		},
	},
	{
		name: "MultipartFilesAndPayloadJSON",
		rule: ruleFiles,
		run: func(t *caseT, e *httpEnv) {
			srv, c := e.start(nil, nil)
			ch := srv.Channels()[0]
			req := postMessage(ch, "two files")
			req.Files = []protocols.File{
				{Name: "hello.txt", ContentType: "text/plain", Reader: strings.NewReader("hello, file")},
				{Name: "data.bin", Reader: bytes.NewReader([]byte{0, 1, 2, 255})},
			}
			mustDo(t, c, req)
			ms := srv.Messages(ch)
			if len(ms) != 1 {
				t.Fatalf("HTTPClient.Do (files): the mock stored %d messages, want 1", len(ms))
			}
			m := ms[0]
			if m.Content != "two files" {
				t.Errorf("HTTPClient.Do (files): got content %q, want \"two files\" from the payload_json part", m.Content)
			}
			if len(m.Attachments) != 2 {
				t.Fatalf("HTTPClient.Do (files): got %d attachments, want 2", len(m.Attachments))
			}
			want := []struct{ name, ct, data string }{{"hello.txt", "text/plain", "hello, file"}, {"data.bin", "application/octet-stream", "\x00\x01\x02\xff"}}
			for i, a := range m.Attachments {
				if a.Filename != want[i].name || !strings.HasPrefix(a.ContentType, want[i].ct) || string(a.Data) != want[i].data {
					t.Errorf("HTTPClient.Do (files): attachment %d is %q (%s, %q), want %q (%s, %q)", i, a.Filename, a.ContentType, a.Data, want[i].name, want[i].ct, want[i].data)
				}
			}
		},
	},
	{
		name: "SeekableFileRewoundOnRetry",
		rule: ruleFileRewind,
		run: func(t *caseT, e *httpEnv) {
			srv, c := e.start(nil, nil)
			ch := srv.Channels()[0]
			if err := srv.Inject(mockdiscord.Fault{Kind: mockdiscord.FaultServerError, Endpoint: "POST /channels/{channel_id}/messages", Status: 502}); err != nil {
				t.Fatalf("mockdiscord.Inject: %v", err)
			}
			req := postMessage(ch, "retried upload")
			req.Files = []protocols.File{{Name: "a.txt", ContentType: "text/plain", Reader: bytes.NewReader([]byte("the whole content"))}}
			if _, err := do(t, c, req); err != nil {
				t.Fatalf("HTTPClient.Do (a bytes.Reader file, first attempt 502): got error %v, want a response after a retry", err)
			}
			ms := srv.Messages(ch)
			if len(ms) != 1 || len(ms[0].Attachments) != 1 || string(ms[0].Attachments[0].Data) != "the whole content" {
				t.Errorf("HTTPClient.Do: the retried upload stored %+v, want one message with the file's whole content", ms)
			}
		},
	},
	{
		name: "UnseekableFileNotRetried",
		rule: ruleFileRewind,
		run: func(t *caseT, e *httpEnv) {
			srv, c := e.start(nil, nil)
			ch := srv.Channels()[0]
			if err := srv.Inject(mockdiscord.Fault{Kind: mockdiscord.FaultServerError, Endpoint: "POST /channels/{channel_id}/messages", Status: 502}); err != nil {
				t.Fatalf("mockdiscord.Inject: %v", err)
			}
			req := postMessage(ch, "not retried")
			req.Files = []protocols.File{{Name: "a.txt", ContentType: "text/plain", Reader: onlyReader{strings.NewReader("read once")}}}
			_, err := do(t, c, req)
			if err == nil {
				t.Errorf("HTTPClient.Do (a file that is not an io.Seeker, first attempt 502): got a response, want an error: the file was read and cannot be sent again")
			}
			if n := countObs(srv, "POST /channels/{channel_id}/messages"); n != 1 {
				t.Errorf("HTTPClient.Do (a file that is not an io.Seeker): the mock saw %d attempts, want 1", n)
			}
		},
	},
	{
		name: "HTTPErrorCarriesFormErrors",
		rule: ruleClientError,
		run: func(t *caseT, e *httpEnv) {
			srv, c := e.start(nil, nil)
			_, err := do(t, c, getMessages(srv.Channels()[0], url.Values{"limit": {"0"}}))
			var herr *protocols.HTTPError
			if !errors.As(err, &herr) {
				t.Fatalf("HTTPClient.Do (?limit=0): got error %v, want a *protocols.HTTPError", err)
			}
			if herr.Status != 400 || herr.Code != 50035 || herr.Message == "" {
				t.Errorf("HTTPClient.Do: got HTTPError status %d, code %d, message %q, want 400, 50035 and Discord's message", herr.Status, herr.Code, herr.Message)
			}
			fes := herr.FieldErrors()
			if len(fes) != 1 || fes[0].Path != "limit" || fes[0].Code == "" {
				t.Errorf("HTTPClient.Do: got FieldErrors %+v from Errors %s, want one error at path \"limit\"", fes, herr.Errors)
			}
			if n := countObs(srv, ""); n != 1 {
				t.Errorf("HTTPClient.Do: the mock saw %d requests, want 1: a 400 is not retried", n)
			}
		},
	},
	{
		name: "NotFoundNotRetried",
		rule: ruleClientError,
		run: func(t *caseT, e *httpEnv) {
			srv, c := e.start(nil, nil)
			_, err := do(t, c, getChannel("999999999999999999"))
			var herr *protocols.HTTPError
			if !errors.As(err, &herr) || herr.Status != 404 || herr.Code != 10003 {
				t.Errorf("HTTPClient.Do (unknown channel): got error %v, want a *protocols.HTTPError with status 404 and code 10003", err)
			}
			if errors.Is(err, protocols.ErrRetriesExhausted) {
				t.Errorf("HTTPClient.Do (unknown channel): got an error wrapping ErrRetriesExhausted, want a 404 not retried")
			}
			if n := countObs(srv, ""); n != 1 {
				t.Errorf("HTTPClient.Do: the mock saw %d requests, want 1: a 404 is not retried", n)
			}
		},
	},
	{
		name: "ServerErrorsRetriedWithBackoff",
		rule: ruleServerError,
		run: func(t *caseT, e *httpEnv) {
			srv, c := e.start(nil, nil)
			if err := srv.Inject(mockdiscord.Fault{Kind: mockdiscord.FaultServerError, Endpoint: "GET /users/@me", Status: 502, Count: 2}); err != nil {
				t.Fatalf("mockdiscord.Inject: %v", err)
			}
			if _, err := do(t, c, getMe()); err != nil {
				t.Errorf("HTTPClient.Do (two 502s, MaxRetries %d): got error %v, want a response", suiteMaxRetries, err)
			}
			obs := srv.Observations()
			if len(obs) != 3 {
				t.Fatalf("HTTPClient.Do: the mock saw %d requests, want 3 (two 502s, then 200)", len(obs))
			}
			for i, g := range gaps(obs) {
				if g <= 0 {
					t.Errorf("HTTPClient.Do: retry %d came %v after the failure, want a backoff delay", i+1, g)
				}
			}
		},
	},
	{
		name: "NetworkErrorsRetried",
		rule: ruleServerError,
		run: func(t *caseT, e *httpEnv) {
			var doer *flakyDoer
			srv, c := e.start(nil, func(p *protocols.HTTPClientParams) {
				doer = &flakyDoer{next: p.Doer, fail: 2}
				p.Doer = doer
			})
			if _, err := do(t, c, getMe()); err != nil {
				t.Errorf("HTTPClient.Do (two network errors, MaxRetries %d): got error %v, want a response", suiteMaxRetries, err)
			}
			if n := doer.calls.Load(); n != 3 {
				t.Errorf("HTTPClient.Do: the Doer was called %d times, want 3 (two network errors, then success)", n)
			}
			if n := countObs(srv, ""); n != 1 {
				t.Errorf("HTTPClient.Do: the mock saw %d requests, want 1", n)
			}
		},
	},
	{
		name: "RetriesExhausted",
		rule: ruleExhausted,
		run: func(t *caseT, e *httpEnv) {
			srv, c := e.start(nil, func(p *protocols.HTTPClientParams) { p.MaxRetries = 2 })
			if err := srv.Inject(mockdiscord.Fault{Kind: mockdiscord.FaultServerError, Endpoint: "GET /users/@me", Status: 503, Count: -1}); err != nil {
				t.Fatalf("mockdiscord.Inject: %v", err)
			}
			_, err := do(t, c, getMe())
			if !errors.Is(err, protocols.ErrRetriesExhausted) {
				t.Errorf("HTTPClient.Do (503 forever, MaxRetries 2): got error %v, want one wrapping ErrRetriesExhausted", err)
			}
			var herr *protocols.HTTPError
			if !errors.As(err, &herr) || herr.Status != 503 {
				t.Errorf("HTTPClient.Do (503 forever): got error %v, want it to wrap the last failure, a *protocols.HTTPError with status 503", err)
			}
			if n := countObs(srv, ""); n != 3 {
				t.Errorf("HTTPClient.Do (MaxRetries 2): the mock saw %d attempts, want 3", n)
			}
		},
	},
	{
		name: "EndlessRateLimitsExhaustRetries",
		rule: ruleExhausted,
		run: func(t *caseT, e *httpEnv) {
			srv, c := e.start(nil, nil)
			if err := srv.Inject(mockdiscord.Fault{Kind: mockdiscord.FaultShared429, Endpoint: "GET /users/@me", Count: -1, RetryAfter: 10 * time.Millisecond}); err != nil {
				t.Fatalf("mockdiscord.Inject: %v", err)
			}
			a := startDo(t, c, getMe())
			if !a.await(time.Now().Add(time.Hour)) {
				t.Fatalf("HTTPClient.Do (a shared 429 forever): still retrying after an hour and %d attempts, want it to give up", countObs(srv, ""))
			}
			if !errors.Is(a.err, protocols.ErrRetriesExhausted) {
				t.Errorf("HTTPClient.Do (a shared 429 forever): got error %v, want one wrapping ErrRetriesExhausted", a.err)
			}
			var rl *protocols.RateLimitError
			if !errors.As(a.err, &rl) {
				t.Errorf("HTTPClient.Do (a shared 429 forever): got error %v, want it to wrap the last failure, a *protocols.RateLimitError", a.err)
			}
			if n := countObs(srv, ""); n < 2 {
				t.Errorf("HTTPClient.Do: the mock saw %d requests, want the 429 retried", n)
			}
		},
	},
	{
		name: "RateLimitRetriedAfterRetryAfter",
		rule: rule429Retried,
		run: func(t *caseT, e *httpEnv) {
			srv, c := e.start(nil, func(p *protocols.HTTPClientParams) { p.MaxRetries = 1 })
			if err := srv.Inject(mockdiscord.Fault{Kind: mockdiscord.FaultShared429, Endpoint: "GET /users/@me", Count: 2, RetryAfter: 1500 * time.Millisecond}); err != nil {
				t.Fatalf("mockdiscord.Inject: %v", err)
			}
			if _, err := do(t, c, getMe()); err != nil {
				t.Errorf("HTTPClient.Do (two shared 429s, MaxRetries 1): got error %v, want a response: 429s are not failures", err)
			}
			obs := srv.Observations()
			if len(obs) != 3 {
				t.Fatalf("HTTPClient.Do: the mock saw %d requests, want 3 (two 429s, then 200)", len(obs))
			}
			for i, g := range gaps(obs) {
				if g < 1500*time.Millisecond || g > 1500*time.Millisecond+lateness {
					t.Errorf("HTTPClient.Do: retry %d came %v after a 429 with retry_after 1.5, want 1.5s", i+1, g)
				}
			}
		},
	},
	{
		name: "Global429PausesEveryRoute",
		rule: ruleGlobal429,
		run: func(t *caseT, e *httpEnv) {
			srv, c := e.start(nil, nil)
			if err := srv.Inject(mockdiscord.Fault{Kind: mockdiscord.FaultGlobal429, Endpoint: "GET /users/@me", RetryAfter: 2 * time.Second}); err != nil {
				t.Fatalf("mockdiscord.Inject: %v", err)
			}
			first := startDo(t, c, getMe())
			settle() // the 429 has arrived; the request waits to retry
			obs := srv.Observations()
			if len(obs) != 1 || obs[0].Scope != "global" {
				t.Fatalf("HTTPClient.Do: the mock saw %d requests, want 1 answered with a global 429", len(obs))
			}
			at := obs[0].Time
			var others []*doAttempt
			for _, ch := range srv.Channels()[:3] {
				others = append(others, startDo(t, c, getChannel(ch)))
			}
			others = append(others, startDo(t, c, &protocols.Request{Route: mustRoute("GET", "/guilds/{guild_id}", srv.Guilds()[0])}))
			for _, a := range append(others, first) {
				<-a.done
				if a.err != nil {
					t.Errorf("HTTPClient.Do: got error %v, want a response after the global pause", a.err)
				}
			}
			for _, o := range srv.Observations()[1:] {
				if d := o.Time.Sub(at); d < 2*time.Second {
					t.Errorf("HTTPClient.Do: %s %s reached the mock %v after a global 429 with retry_after 2, want no request for 2s", o.Method, o.Path, d)
				}
			}
		},
	},
	{
		name: "CloudflareHTML429IsTypedError",
		rule: ruleRateLimitError,
		run: func(t *caseT, e *httpEnv) {
			srv, c := e.start(nil, nil)
			if err := srv.Inject(mockdiscord.Fault{Kind: mockdiscord.FaultCloudflare429, Endpoint: "GET /users/@me", RetryAfter: 5 * time.Second}); err != nil {
				t.Fatalf("mockdiscord.Inject: %v", err)
			}
			_, err := do(t, c, getMe())
			var rl *protocols.RateLimitError
			if !errors.As(err, &rl) || !errors.Is(err, protocols.ErrRateLimited) {
				t.Fatalf("HTTPClient.Do (429 with an HTML body and no rate-limit headers): got error %v, want a *protocols.RateLimitError matching ErrRateLimited", err)
			}
			if rl.Scope != protocols.ScopeCloudflare {
				t.Errorf("HTTPClient.Do: got RateLimitError.Scope %q, want %q", rl.Scope, protocols.ScopeCloudflare)
			}
			if n := countObs(srv, ""); n != 1 {
				t.Errorf("HTTPClient.Do: the mock saw %d requests, want 1: a Cloudflare 429 is not retried", n)
			}
		},
	},
	{
		name: "Cloudflare429PausesEveryRoute",
		rule: ruleCloudflare,
		run: func(t *caseT, e *httpEnv) {
			srv, c := e.start(nil, nil)
			if err := srv.Inject(mockdiscord.Fault{Kind: mockdiscord.FaultCloudflare429, Endpoint: "GET /users/@me", RetryAfter: 5 * time.Second}); err != nil {
				t.Fatalf("mockdiscord.Inject: %v", err)
			}
			_, _ = do(t, c, getMe())
			obs := srv.Observations()
			if len(obs) == 0 {
				t.Fatalf("HTTPClient.Do: the mock saw no request")
			}
			at := obs[0].Time
			var as []*doAttempt
			for _, ch := range srv.Channels()[:2] {
				as = append(as, startDo(t, c, getChannel(ch)))
			}
			for _, a := range as {
				<-a.done
			}
			for _, o := range srv.Observations()[1:] {
				if d := o.Time.Sub(at); d < 5*time.Second {
					t.Errorf("HTTPClient.Do: %s %s reached the mock %v after a Cloudflare 429 with Retry-After 5, want no request for 5s", o.Method, o.Path, d)
				}
			}
		},
	},
	{
		name: "RetryAfterBeyondDeadlineFails",
		rule: ruleRateLimitError,
		run: func(t *caseT, e *httpEnv) {
			srv, c := e.start(nil, nil)
			if err := srv.Inject(mockdiscord.Fault{Kind: mockdiscord.FaultShared429, Endpoint: "GET /users/@me", RetryAfter: 30 * time.Second}); err != nil {
				t.Fatalf("mockdiscord.Inject: %v", err)
			}
			ctx, cancel := context.WithTimeout(t.ctx, time.Second)
			defer cancel()
			a := startDoCtx(t, ctx, c, getMe())
			if !a.await(time.Now().Add(time.Second + lateness)) {
				t.Fatalf("HTTPClient.Do (429 with retry_after 30, deadline 1s): still waiting at %s, want it to return by its deadline", t.since(time.Now()))
			}
			if !errors.Is(a.err, protocols.ErrRateLimited) && !errors.Is(a.err, context.DeadlineExceeded) {
				t.Errorf("HTTPClient.Do (429 with retry_after 30, deadline 1s): got error %v, want a *protocols.RateLimitError or one wrapping context.DeadlineExceeded", a.err)
			}
			if n := countObs(srv, ""); n != 1 {
				t.Errorf("HTTPClient.Do: the mock saw %d requests, want 1", n)
			}
		},
	},
	{
		name: "Unauthorized401FailsFast",
		rule: ruleInvalidToken,
		run: func(t *caseT, e *httpEnv) {
			srv, c := e.start(&mockdiscord.Options{Token: otherToken}, nil)
			_, err := do(t, c, getMe())
			var herr *protocols.HTTPError
			if !errors.Is(err, protocols.ErrInvalidToken) || !errors.As(err, &herr) || herr.Status != 401 {
				t.Errorf("HTTPClient.Do (wrong token): got error %v, want a *protocols.HTTPError with status 401 matching ErrInvalidToken", err)
			}
			for _, req := range []*protocols.Request{getMe(), getChannel(srv.Channels()[0]), postMessage(srv.Channels()[1], "x")} {
				if _, err := do(t, c, req); !errors.Is(err, protocols.ErrInvalidToken) {
					t.Errorf("HTTPClient.Do(%v) after a 401: got error %v, want one wrapping ErrInvalidToken", req.Route, err)
				}
			}
			if n := countObs(srv, ""); n != 1 {
				t.Errorf("HTTPClient.Do: the mock saw %d requests, want 1: after a 401, requests fail without being sent", n)
			}
		},
	},
	{
		name: "InvalidRequestBudgetFailsFast",
		rule: ruleBudget,
		run: func(t *caseT, e *httpEnv) {
			const budget = 3
			srv, c := e.start(nil, func(p *protocols.HTTPClientParams) { p.InvalidRequestBudget = budget })
			hook := srv.Webhooks()[0]
			resp := mustDo(t, c, &protocols.Request{
				Route:  mustRoute("POST", "/webhooks/{webhook_id}/{webhook_token}", hook.ID, hook.Token),
				Query:  url.Values{"wait": {"true"}},
				Body:   jsonBody(map[string]string{"content": "a webhook's message"}),
				NoAuth: true,
			})
			msg := createdID(t, resp)
			// The bot may not edit a webhook's message: 403, an invalid
			// request.
			edit := &protocols.Request{Route: mustRoute("PATCH", "/channels/{channel_id}/messages/{message_id}", hook.ChannelID, msg), Body: jsonBody(map[string]string{"content": "edited"})}
			failedFast := false
			for range budget + 3 {
				_, err := do(t, c, edit)
				if errors.Is(err, protocols.ErrInvalidRequestBudget) {
					failedFast = true
					break
				}
				var herr *protocols.HTTPError
				if !errors.As(err, &herr) || herr.Status != 403 {
					t.Fatalf("HTTPClient.Do (edit another author's message): got error %v, want a *protocols.HTTPError with status 403", err)
				}
			}
			invalid := 0
			for _, o := range srv.Observations() {
				if o.Invalid {
					invalid++
				}
			}
			if !failedFast {
				t.Errorf("HTTPClient.Do: %d requests got 403 with an invalid-request budget of %d, want ErrInvalidRequestBudget once the budget is spent", invalid, budget)
			}
			if invalid > budget {
				t.Errorf("HTTPClient.Do: the mock answered %d invalid requests, want at most the budget, %d", invalid, budget)
			}
			before := countObs(srv, "")
			if _, err := do(t, c, getMe()); !errors.Is(err, protocols.ErrInvalidRequestBudget) {
				t.Errorf("HTTPClient.Do (another route, budget spent): got error %v, want one wrapping ErrInvalidRequestBudget", err)
			}
			if after := countObs(srv, ""); after != before {
				t.Errorf("HTTPClient.Do: the mock saw %d more requests after the budget was spent, want none", after-before)
			}
		},
	},
	{
		name: "Shared429DoesNotCountAsInvalid",
		rule: ruleSharedInvalid,
		run: func(t *caseT, e *httpEnv) {
			const budget = 2
			srv, c := e.start(nil, func(p *protocols.HTTPClientParams) { p.InvalidRequestBudget = budget })
			if err := srv.Inject(mockdiscord.Fault{Kind: mockdiscord.FaultShared429, Endpoint: "GET /users/@me", Count: 3, RetryAfter: 100 * time.Millisecond}); err != nil {
				t.Fatalf("mockdiscord.Inject: %v", err)
			}
			if _, err := do(t, c, getMe()); err != nil {
				t.Errorf("HTTPClient.Do (three shared 429s, invalid-request budget %d): got error %v, want a response", budget, err)
			}
			for i := range 3 {
				if _, err := do(t, c, getChannel(srv.Channels()[0])); err != nil {
					t.Errorf("HTTPClient.Do (request %d after three shared 429s, budget %d): got error %v, want a response: shared 429s are not invalid requests", i+1, budget, err)
				}
			}
		},
	},
	{
		name: "HeaderLess429sCountAsInvalid",
		rule: ruleInvalid429,
		run: func(t *caseT, e *httpEnv) {
			const budget = 2
			srv, c := e.start(nil, func(p *protocols.HTTPClientParams) { p.InvalidRequestBudget = budget })
			ch := srv.Channels()[0]
			// A global 429 (retried) and a Cloudflare ban (not retried)
			// spend the budget of two.
			if err := srv.Inject(mockdiscord.Fault{Kind: mockdiscord.FaultGlobal429, Endpoint: "GET /users/@me", RetryAfter: 100 * time.Millisecond}); err != nil {
				t.Fatalf("mockdiscord.Inject: %v", err)
			}
			if err := srv.Inject(mockdiscord.Fault{Kind: mockdiscord.FaultCloudflare429, Endpoint: "GET /channels/{channel_id}", RetryAfter: time.Second}); err != nil {
				t.Fatalf("mockdiscord.Inject: %v", err)
			}
			if _, err := do(t, c, getMe()); err != nil {
				t.Errorf("HTTPClient.Do (one global 429): got error %v, want a response after the retry", err)
			}
			if _, err := do(t, c, getChannel(ch)); !errors.Is(err, protocols.ErrRateLimited) {
				t.Errorf("HTTPClient.Do (a Cloudflare 429): got error %v, want a *protocols.RateLimitError", err)
			}
			before := countObs(srv, "")
			for _, req := range []*protocols.Request{getMe(), getMessages(ch, nil)} {
				if _, err := do(t, c, req); !errors.Is(err, protocols.ErrInvalidRequestBudget) {
					t.Errorf("HTTPClient.Do(%v) after a global and a Cloudflare 429 with a budget of %d: got error %v, want one wrapping ErrInvalidRequestBudget", req.Route, budget, err)
				}
			}
			if after := countObs(srv, ""); after != before {
				t.Errorf("HTTPClient.Do: the mock saw %d more requests after the budget was spent, want none", after-before)
			}
		},
	},
	{
		name: "DoHonorsCanceledContext",
		rule: ruleDoErrors,
		run: func(t *caseT, e *httpEnv) {
			srv, c := e.start(nil, nil)
			ctx, cancel := context.WithCancel(t.ctx)
			cancel()
			pre := startDoCtx(t, ctx, c, getMe())
			ctxError(t, "HTTPClient.Do (context cancelled before the call)", pre, time.Now().Add(lateness), context.Canceled)

			if err := srv.Inject(mockdiscord.Fault{Kind: mockdiscord.FaultSlow, Endpoint: "GET /users/@me", Delay: time.Minute}); err != nil {
				t.Fatalf("mockdiscord.Inject: %v", err)
			}
			ctx, cancel = context.WithCancel(t.ctx)
			a := startDoCtx(t, ctx, c, getMe())
			time.Sleep(time.Second)
			cancel()
			ctxError(t, "HTTPClient.Do (context cancelled while the server was slow)", a, time.Now().Add(lateness), context.Canceled)
		},
	},
	{
		name: "DoHonorsDeadline",
		rule: ruleDoErrors,
		run: func(t *caseT, e *httpEnv) {
			srv, c := e.start(nil, nil)
			if err := srv.Inject(mockdiscord.Fault{Kind: mockdiscord.FaultSlow, Endpoint: "GET /users/@me", Delay: time.Minute}); err != nil {
				t.Fatalf("mockdiscord.Inject: %v", err)
			}
			ctx, cancel := context.WithTimeout(t.ctx, time.Second)
			defer cancel()
			a := startDoCtx(t, ctx, c, getMe())
			ctxError(t, "HTTPClient.Do (deadline 1s, the server takes a minute)", a, time.Now().Add(time.Second+lateness), context.DeadlineExceeded)
		},
	},
	{
		name: "CloseFailsLaterCalls",
		rule: ruleClientClose,
		run: func(t *caseT, e *httpEnv) {
			srv, c := e.start(nil, nil)
			mustDo(t, c, getMe())
			if err := c.Close(); err != nil {
				t.Errorf("HTTPClient.Close: got %v, want nil", err)
			}
			if err := callClose(c); err != nil {
				t.Errorf("HTTPClient.Close (second call): got %v, want nil", err)
			}
			a := startDo(t, c, getMe())
			ctxError(t, "HTTPClient.Do (after Close)", a, time.Now().Add(lateness), protocols.ErrClosed)
			if n := countObs(srv, ""); n != 1 {
				t.Errorf("HTTPClient.Do: the mock saw %d requests, want 1: nothing is sent after Close", n)
			}
		},
	},
	{
		name: "ConcurrentSafeThousandRequestsNo429",
		rule: ruleEnforces,
		run: func(t *caseT, e *httpEnv) {
			srv, c := e.start(&mockdiscord.Options{Guilds: 4, ChannelsPerGuild: 5}, nil)
			chans := srv.Channels()[:20]
			msgs := make([]string, len(chans))
			const emoji = "👍"
			// Discord names shared buckets only in responses: create a
			// message per channel and meet every endpoint once, one at a
			// time, before the concurrent load.
			for i, ch := range chans {
				msgs[i] = createdID(t, mustDo(t, c, postMessage(ch, "target")))
			}
			reqs := func(i int) *protocols.Request {
				ch, msg := chans[i%len(chans)], msgs[i%len(chans)]
				switch (i / len(chans)) % 8 {
				case 0:
					return getChannel(ch)
				case 1:
					return getMessages(ch, url.Values{"limit": {"5"}})
				case 2:
					return &protocols.Request{Route: mustRoute("GET", "/channels/{channel_id}/messages/{message_id}", ch, msg)}
				case 3, 7:
					return &protocols.Request{Route: mustRoute("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", ch, msg, emoji)}
				case 4:
					return &protocols.Request{Route: mustRoute("GET", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}", ch, msg, emoji)}
				case 5:
					return &protocols.Request{Route: mustRoute("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", ch, msg, emoji)}
				default:
					return &protocols.Request{Route: mustRoute("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/{user_id}", ch, msg, emoji, srv.UserID())}
				}
			}
			for k := range 8 {
				mustDo(t, c, reqs(k*len(chans)))
				time.Sleep(time.Second)
			}
			const n = 1000
			all := make([]*protocols.Request, n)
			for i := range all {
				all[i] = reqs(i)
			}
			before := srv.Observations()
			errs, elapsed := runRequests(t, c, all, 32)
			reportErrs(t, errs, n)
			t.Logf("%d requests from 32 goroutines took %v", n, elapsed)
			if got := len(srv.Observations()) - len(before); got != n {
				t.Errorf("HTTPClient.Do: the mock saw %d requests for %d calls, want %d", got, n, n)
			}
			noViolations(t, srv)
		},
	},
	{
		name: "OneBucketThroughputNearMinimum",
		rule: ruleSteady,
		run: func(t *caseT, e *httpEnv) {
			const n, limit, window, latency = 1000, 5, time.Second, 50 * time.Millisecond
			srv, c := e.start(&mockdiscord.Options{
				Latency: latency,
				Buckets: []mockdiscord.BucketSpec{{Endpoint: "GET /channels/{channel_id}/messages", Hash: "one", Limit: limit, Window: window, PerResource: true}},
			}, nil)
			ch := srv.Channels()[0]
			reqs := make([]*protocols.Request, n)
			for i := range reqs {
				reqs[i] = getMessages(ch, nil)
			}
			errs, elapsed := runRequests(t, c, reqs, 8)
			reportErrs(t, errs, n)
			noViolations(t, srv)
			// The mock opens a window when a request is processed, one
			// latency after it is sent, and admits the next window's first
			// request exactly one window later: n/limit windows, the last
			// of which starts (n/limit - 1) windows after the first request
			// was processed. A client that sends the first request of each
			// window only when the previous window's reset has passed by
			// its own clock loses one latency per window (5% here); 25% on
			// top of the minimum leaves room for that and a small safety
			// margin, and still fails one-request-per-window designs,
			// whole-second rounding of 1.05 s resets, and fixed sleeps.
			best := time.Duration(n/limit-1)*window + latency
			t.Logf("%d requests took %v; theoretical minimum %v", n, elapsed, best)
			if want := best * 5 / 4; elapsed > want {
				t.Errorf("HTTPClient: %d requests to one bucket of %d per %v with %v latency took %v, want at most %v (theoretical minimum %v, plus 25%%)",
					n, limit, window, latency, elapsed, want, best)
			}
		},
	},
	{
		name: "FiftyBucketsStayUnderGlobalLimit",
		rule: ruleGlobal,
		run: func(t *caseT, e *httpEnv) {
			const buckets, each, latency = 50, 20, 50 * time.Millisecond
			srv, c := e.start(&mockdiscord.Options{Guilds: 10, ChannelsPerGuild: 5, Latency: latency}, nil)
			chans := srv.Channels()
			var reqs []*protocols.Request
			for range each {
				for _, ch := range chans[:buckets] {
					reqs = append(reqs, getChannel(ch))
				}
			}
			errs, elapsed := runRequests(t, c, reqs, 64)
			reportErrs(t, errs, len(reqs))
			noViolations(t, srv)
			// 1000 requests at 50/s: the last can go 19 s after the first.
			best := time.Duration(len(reqs)/mockdiscord.DefaultGlobalLimit-1)*time.Second + latency
			t.Logf("%d requests over %d buckets took %v; theoretical minimum %v", len(reqs), buckets, elapsed, best)
			if want := best * 5 / 4; elapsed > want {
				t.Errorf("HTTPClient: %d requests over %d buckets took %v, want at most %v (the global limit allows %v, plus 25%%)", len(reqs), buckets, elapsed, want, best)
			}
		},
	},
	{
		name: "SameHashIndependentLimitsNoDeadlock",
		rule: ruleSameHashCounter,
		run: func(t *caseT, e *httpEnv) {
			srv, c := e.start(nil, nil)
			g := srv.Guilds()[0]
			const each = 25
			var reqs []*protocols.Request
			for range each {
				reqs = append(reqs,
					&protocols.Request{Route: mustRoute("GET", "/guilds/{guild_id}", g)},
					&protocols.Request{Route: mustRoute("GET", "/guilds/{guild_id}/channels", g)})
			}
			errs, elapsed := runRequests(t, c, reqs, 8)
			reportErrs(t, errs, len(reqs))
			t.Logf("%d requests took %v", len(reqs), elapsed)
			// Treated as one bucket of 5/s, the 50 requests need 10 windows.
			if want := 10*time.Second*5/4 + time.Second; elapsed > want {
				t.Errorf("HTTPClient: %d requests to two routes that share a hash but not a counter took %v, want at most %v (one shared 5/s bucket's time, plus 25%%)", len(reqs), elapsed, want)
			}
		},
	},
	{
		name: "ChangedHashIsFollowed",
		rule: ruleRehash,
		run: func(t *caseT, e *httpEnv) {
			srv, c := e.start(nil, nil)
			ch := srv.Channels()[0]
			var reqs []*protocols.Request
			for range 20 {
				reqs = append(reqs, getMessages(ch, nil))
			}
			errs, _ := runRequests(t, c, reqs, 4)
			reportErrs(t, errs, len(reqs))
			if err := srv.Inject(mockdiscord.Fault{Kind: mockdiscord.FaultChangeHash, Endpoint: "GET /channels/{channel_id}/messages", NewHash: "moved"}); err != nil {
				t.Fatalf("mockdiscord.Inject: %v", err)
			}
			errs, elapsed := runRequests(t, c, reqs, 4)
			reportErrs(t, errs, len(reqs))
			noViolations(t, srv)
			if want := 6 * time.Second; elapsed > want {
				t.Errorf("HTTPClient: 20 requests to a 5/s bucket after its hash changed took %v, want at most %v", elapsed, want)
			}
		},
	},
	{
		name: "ExemptRoutesSkipGlobal",
		rule: ruleGlobal,
		run: func(t *caseT, e *httpEnv) {
			srv, c := e.start(&mockdiscord.Options{Guilds: 10, ChannelsPerGuild: 6}, nil)
			var limited, exempt []*doAttempt
			for _, ch := range srv.Channels() {
				limited = append(limited, startDo(t, c, getChannel(ch)))
			}
			settle()
			for i := range 60 {
				req := &protocols.Request{
					Route:  mustRoute("POST", "/interactions/{interaction_id}/{interaction_token}/callback", strconv.Itoa(1000+i), "token"+strconv.Itoa(i)),
					Body:   jsonBody(map[string]any{"type": 1}),
					NoAuth: true,
				}
				exempt = append(exempt, startDo(t, c, req))
			}
			by := time.Now().Add(lateness)
			for i, a := range exempt {
				if !a.await(by) {
					t.Errorf("HTTPClient.Do: interaction callback %d still waiting at %s while %d other requests use up the global limit, want it sent at once", i+1, t.since(time.Now()), len(limited))
					break
				}
				if a.err != nil {
					t.Errorf("HTTPClient.Do: interaction callback %d: got error %v, want a response", i+1, a.err)
				}
			}
			for _, a := range limited {
				<-a.done
			}
			noViolations(t, srv)
		},
	},
}
