package reference_test

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cordkit/cordkit/protocols"
)

// secret is the bare test token; no error or log may contain it.
var secret = base64.RawURLEncoding.EncodeToString([]byte("123456789012345678")) + ".GhJkLm.s3cr3t-t0k3n_value"

// limits returns the info of a 2xx response with rate-limit headers.
func limits(hash string, limit, remaining int, resetAfter time.Duration) protocols.RateLimitInfo {
	return protocols.RateLimitInfo{Status: 200, Bucket: hash, HasLimit: true, Limit: limit,
		Remaining: remaining, ResetAfter: resetAfter}
}

// limited returns the info of a 429.
func limited(scope protocols.Scope, retryAfter time.Duration) protocols.RateLimitInfo {
	return protocols.RateLimitInfo{Status: 429, Scope: scope, RetryAfter: retryAfter}
}

// acquisition is an Acquire running in its own goroutine.
type acquisition struct {
	done   chan struct{}
	permit protocols.Permit
	err    error
	at     time.Time // when Acquire returned
}

type acquirer interface {
	Acquire(ctx context.Context) (protocols.Permit, error)
}

// goAcquire starts b.Acquire(ctx) in a goroutine.
func goAcquire(ctx context.Context, b acquirer) *acquisition {
	a := &acquisition{done: make(chan struct{})}
	go func() {
		defer close(a.done)
		a.permit, a.err = b.Acquire(ctx)
		a.at = time.Now()
	}()
	return a
}

// goAcquireRoute starts l.Acquire(ctx, r) in a goroutine.
func goAcquireRoute(ctx context.Context, l protocols.RateLimiter, r protocols.Route) *acquisition {
	return goAcquire(ctx, routeAcquirer{l, r})
}

type routeAcquirer struct {
	l protocols.RateLimiter
	r protocols.Route
}

func (ra routeAcquirer) Acquire(ctx context.Context) (protocols.Permit, error) {
	return ra.l.Acquire(ctx, ra.r)
}

// finished reports whether the Acquire has returned; call synctest.Wait
// first.
func (a *acquisition) finished() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

// wait waits for the Acquire to return and fails t on an error.
func (a *acquisition) wait(t *testing.T) protocols.Permit {
	t.Helper()
	<-a.done
	if a.err != nil {
		t.Fatalf("Acquire: %v", a.err)
	}
	return a.permit
}

// route builds a Route or fails t.
func route(t testing.TB, method, template string, args ...string) protocols.Route {
	t.Helper()
	r, err := protocols.NewRoute(method, template, args...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// response builds an *http.Response; header pairs are name, value.
func response(req *http.Request, status int, body string, header ...string) *http.Response {
	h := make(http.Header)
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	return &http.Response{
		StatusCode:    status,
		Status:        strconv.Itoa(status) + " " + http.StatusText(status),
		Header:        h,
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}
