package mockdiscord_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"reflect"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const userAgent = "DiscordBot (https://github.com/cordkit/cordkit, 0.1.0)"

// env is one mock server and a client for it.
type env struct {
	t    *testing.T
	s    *mockdiscord.Server
	c    *http.Client
	base string
}

// bubble runs f inside a synctest bubble, against a Server built there and
// reached through Client().
func bubble(t *testing.T, opts *mockdiscord.Options, f func(t *testing.T, e *env)) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		s := mockdiscord.New(opts)
		defer func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}()
		f(t, &env{t: t, s: s, c: s.Client(), base: s.APIBase()})
	})
}

// tcp runs f against a Server listening on loopback TCP.
func tcp(t *testing.T, opts *mockdiscord.Options, f func(t *testing.T, e *env)) {
	t.Helper()
	s := mockdiscord.New(opts)
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer s.Close()
	f(t, &env{t: t, s: s, c: &http.Client{Timeout: 10 * time.Second}, base: s.APIBase()})
}

// reply is a response read in full.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
}

// obj decodes the body as a JSON object.
func (r reply) obj(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	r.decode(t, &m)
	return m
}

// code returns the JSON error code of the body.
func (r reply) code(t *testing.T) int {
	t.Helper()
	var e struct {
		Code *int `json:"code"`
	}
	r.decode(t, &e)
	if e.Code == nil {
		t.Fatalf("body %s has no code", r.body)
	}
	return *e.Code
}

// opt changes a request before it is sent.
type opt func(*http.Request)

func header(k, v string) opt { return func(r *http.Request) { r.Header.Set(k, v) } }

func noHeader(k string) opt { return func(r *http.Request) { r.Header.Del(k) } }

var noAuth = noHeader("Authorization")

func withContext(ctx context.Context) opt {
	return func(r *http.Request) { *r = *r.WithContext(ctx) }
}

// form is a multipart body.
type form struct {
	payload string // payload_json; "" for none
	fields  map[string]string
	files   []file
}

type file struct{ field, name, contentType, data string }

func (f form) encode() ([]byte, string) {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	if f.payload != "" {
		_ = w.WriteField("payload_json", f.payload)
	}
	for k, v := range f.fields {
		_ = w.WriteField(k, v)
	}
	for _, fl := range f.files {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, fl.field, fl.name))
		if fl.contentType != "" {
			h.Set("Content-Type", fl.contentType)
		}
		p, _ := w.CreatePart(h)
		_, _ = io.WriteString(p, fl.data)
	}
	_ = w.Close()
	return b.Bytes(), w.FormDataContentType()
}

// do sends a request to path below the API base (or to an absolute URL)
// with the bot's Authorization and a DiscordBot User-Agent. body may be
// nil, a string (sent as application/json) or a form. It fails the test on
// a transport error.
func (e *env) do(method, path string, body any, opts ...opt) reply {
	e.t.Helper()
	r, err := e.send(method, path, body, opts...)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// send is do without failing the test; it is safe from any goroutine.
func (e *env) send(method, path string, body any, opts ...opt) (reply, error) {
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd, ct = strings.NewReader(b), "application/json"
	case form:
		data, typ := b.encode()
		rd, ct = bytes.NewReader(data), typ
	default:
		return reply{}, fmt.Errorf("unsupported body %T", body)
	}
	url := path
	if !strings.HasPrefix(path, "http") {
		url = e.base + path
	}
	ctx, cancel := context.WithTimeout(e.t.Context(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Authorization", "Bot "+e.s.Token())
	req.Header.Set("User-Agent", userAgent)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for _, o := range opts {
		o(req)
	}
	res, err := e.c.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return reply{}, fmt.Errorf("read body: %w", err)
	}
	return reply{status: res.StatusCode, header: res.Header, body: data}, nil
}

// last returns the most recent observation.
func (e *env) last() mockdiscord.Observation {
	e.t.Helper()
	obs := e.s.Observations()
	if len(obs) == 0 {
		e.t.Fatal("no observations")
	}
	return obs[len(obs)-1]
}

// post creates a message in channel ch and returns its ID.
func (e *env) post(ch, content string) string {
	e.t.Helper()
	r := e.do("POST", "/channels/"+ch+"/messages", fmt.Sprintf(`{"content":%q}`, content))
	if r.status != http.StatusOK {
		e.t.Fatalf("create message: got %d %s, want 200", r.status, r.body)
	}
	return r.obj(e.t)["id"].(string)
}

func wantStatus(t *testing.T, r reply, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status: got %d (body %s), want %d", r.status, r.body, want)
	}
}

func wantHeader(t *testing.T, r reply, name, want string) {
	t.Helper()
	if got := r.header.Get(name); got != want {
		t.Errorf("header %s: got %q, want %q", name, got, want)
	}
}

func wantEqual[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: got %#v, want %#v", what, got, want)
	}
}

// rateLimitHeaders lists the five per-route headers.
var rateLimitHeaders = []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Reset-After", "X-RateLimit-Bucket"}

// onlyBucket is a single per-route limit for tests.
func onlyBucket(endpoint string, limit int, window time.Duration) []mockdiscord.BucketSpec {
	return []mockdiscord.BucketSpec{{Endpoint: endpoint, Hash: "test-hash", Limit: limit, Window: window, PerResource: true}}
}
