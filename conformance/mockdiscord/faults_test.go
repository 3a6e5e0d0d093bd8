package mockdiscord_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
)

func TestFaults(t *testing.T) {
	const route = "GET /channels/{channel_id}"
	tests := []struct {
		name       string
		fault      mockdiscord.Fault
		wantStatus int
		wantHeader map[string]string // "" means absent
		wantBody   string
		wantScope  string
		invalid    bool
	}{
		{
			name:       "Shared429",
			fault:      mockdiscord.Fault{Kind: mockdiscord.FaultShared429, RetryAfter: 2500 * time.Millisecond},
			wantStatus: 429,
			wantHeader: map[string]string{
				"X-RateLimit-Scope": "shared", "Retry-After": "3", "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "4",
				"X-RateLimit-Reset-After": "0.900", "X-RateLimit-Bucket": "test-hash", "X-RateLimit-Global": "", "Via": "1.1 google",
				"Content-Type": "application/json",
			},
			wantBody:  `{"message":"The resource is being rate limited.","retry_after":2.500,"global":false}`,
			wantScope: "shared",
		},
		{
			name:       "ServerError",
			fault:      mockdiscord.Fault{Kind: mockdiscord.FaultServerError},
			wantStatus: 500,
			wantHeader: map[string]string{"Content-Type": "application/json", "X-RateLimit-Bucket": "", "Retry-After": ""},
			wantBody:   `{"message":"500: Internal Server Error","code":0}`,
		},
		{
			name:       "BadGateway",
			fault:      mockdiscord.Fault{Kind: mockdiscord.FaultServerError, Status: 502},
			wantStatus: 502,
			wantBody:   `{"message":"502: Bad Gateway","code":0}`,
		},
		{
			name:       "Cloudflare429",
			fault:      mockdiscord.Fault{Kind: mockdiscord.FaultCloudflare429, RetryAfter: 30 * time.Second},
			wantStatus: 429,
			wantHeader: map[string]string{
				"Retry-After": "30", "Content-Type": "text/html", "Via": "", "X-RateLimit-Scope": "",
				"X-RateLimit-Global": "", "X-RateLimit-Limit": "", "X-RateLimit-Bucket": "",
			},
			wantBody: "error code: 1015",
			invalid:  true,
		},
		{
			name:       "Global429",
			fault:      mockdiscord.Fault{Kind: mockdiscord.FaultGlobal429, RetryAfter: 412 * time.Millisecond},
			wantStatus: 429,
			wantHeader: map[string]string{
				"Retry-After": "1", "X-RateLimit-Global": "true", "X-RateLimit-Scope": "global",
				"X-RateLimit-Limit": "", "X-RateLimit-Remaining": "", "X-RateLimit-Reset": "", "X-RateLimit-Reset-After": "", "X-RateLimit-Bucket": "",
			},
			wantBody:  `{"message":"You are being rate limited.","retry_after":0.412,"global":true}`,
			wantScope: "global",
			invalid:   true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bubble(t, &mockdiscord.Options{Buckets: onlyBucket(route, 5, time.Second)}, func(t *testing.T, e *env) {
				ch := e.s.Channels()[0]
				wantStatus(t, e.do("GET", "/channels/"+ch, nil), 200)
				time.Sleep(100 * time.Millisecond)
				tt.fault.Endpoint = route
				tt.fault.Count = 2
				if err := e.s.Inject(tt.fault); err != nil {
					t.Fatal(err)
				}
				// Another route is not affected.
				wantStatus(t, e.do("GET", "/users/@me", nil), 200)
				for range 2 {
					r := e.do("GET", "/channels/"+ch, nil)
					wantStatus(t, r, tt.wantStatus)
					for k, v := range tt.wantHeader {
						wantHeader(t, r, k, v)
					}
					wantEqual(t, "body", string(r.body), tt.wantBody)
					o := e.last()
					wantEqual(t, "fault", o.Fault, string(tt.fault.Kind))
					wantEqual(t, "scope", o.Scope, tt.wantScope)
					wantEqual(t, "invalid", o.Invalid, tt.invalid)
				}
				// Count spent; faulted responses took no quota.
				r := e.do("GET", "/channels/"+ch, nil)
				wantStatus(t, r, 200)
				wantHeader(t, r, "X-RateLimit-Remaining", "3")
				if v := e.s.WindowViolations(); len(v) != 0 {
					t.Errorf("fault 429s reported as violations: %q", v)
				}
			})
		})
	}
}

func TestFaultAnyRouteAndUnlimitedCount(t *testing.T) {
	bubble(t, nil, func(t *testing.T, e *env) {
		if err := e.s.Inject(mockdiscord.Fault{Kind: mockdiscord.FaultServerError, Status: 503, Count: -1}); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"/users/@me", "/gateway/bot", "/channels/" + e.s.Channels()[0]} {
			wantStatus(t, e.do("GET", p, nil), 503)
		}
		// Faults apply after authentication.
		wantStatus(t, e.do("GET", "/users/@me", nil, noAuth), 401)
		e.s.Reset()
		wantStatus(t, e.do("GET", "/users/@me", nil), 200)
		wantEqual(t, "observations after Reset", len(e.s.Observations()), 1)
	})
}

func TestFaultSharedOnRouteWithoutBucket(t *testing.T) {
	bubble(t, &mockdiscord.Options{Buckets: []mockdiscord.BucketSpec{}}, func(t *testing.T, e *env) {
		if err := e.s.Inject(mockdiscord.Fault{Kind: mockdiscord.FaultShared429}); err != nil {
			t.Fatal(err)
		}
		r := e.do("GET", "/users/@me", nil)
		wantStatus(t, r, 429)
		wantHeader(t, r, "X-RateLimit-Scope", "shared")
		wantHeader(t, r, "Retry-After", "1")
		wantHeader(t, r, "X-RateLimit-Bucket", "")
	})
}

func TestSharedRateLimitCode(t *testing.T) {
	bubble(t, &mockdiscord.Options{SharedRateLimitCode: 40062}, func(t *testing.T, e *env) {
		if err := e.s.Inject(mockdiscord.Fault{Kind: mockdiscord.FaultShared429}); err != nil {
			t.Fatal(err)
		}
		r := e.do("GET", "/users/@me", nil)
		wantEqual(t, "code", r.code(t), 40062)
	})
}

func TestFaultChangeHash(t *testing.T) {
	const route = "POST /channels/{channel_id}/messages"
	bubble(t, &mockdiscord.Options{Buckets: onlyBucket(route, 2, 10*time.Second)}, func(t *testing.T, e *env) {
		ch := e.s.Channels()[0]
		e.post(ch, "a")
		r := e.do("POST", "/channels/"+ch+"/messages", `{"content":"b"}`)
		wantHeader(t, r, "X-RateLimit-Bucket", "test-hash")
		wantHeader(t, r, "X-RateLimit-Remaining", "0")
		wantStatus(t, e.do("POST", "/channels/"+ch+"/messages", `{"content":"c"}`), 429)

		if err := e.s.Inject(mockdiscord.Fault{Kind: mockdiscord.FaultChangeHash, Endpoint: route, NewHash: "new-hash"}); err != nil {
			t.Fatal(err)
		}
		r = e.do("POST", "/channels/"+ch+"/messages", `{"content":"d"}`)
		wantStatus(t, r, 200)
		wantHeader(t, r, "X-RateLimit-Bucket", "new-hash")
		wantHeader(t, r, "X-RateLimit-Remaining", "1")
		wantEqual(t, "group", e.last().Group, "new-hash channels/"+ch)

		e.s.Reset()
		r = e.do("POST", "/channels/"+ch+"/messages", `{"content":"e"}`)
		wantHeader(t, r, "X-RateLimit-Bucket", "test-hash")
	})
}

func TestFaultSlow(t *testing.T) {
	bubble(t, &mockdiscord.Options{Buckets: onlyBucket("GET /users/@me", 5, time.Second)}, func(t *testing.T, e *env) {
		if err := e.s.Inject(mockdiscord.Fault{Kind: mockdiscord.FaultSlow, Delay: 3 * time.Second}); err != nil {
			t.Fatal(err)
		}
		if err := e.s.Inject(mockdiscord.Fault{Kind: mockdiscord.FaultServerError}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		r := e.do("GET", "/users/@me", nil)
		wantEqual(t, "delay", time.Since(start), 3*time.Second)
		wantStatus(t, r, 500)
		wantEqual(t, "fault", e.last().Fault, "slow,server_error")

		// A slow request whose client gives up: no response, status 499.
		if err := e.s.Inject(mockdiscord.Fault{Kind: mockdiscord.FaultSlow, Delay: time.Hour}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		_, err := e.send("GET", "/users/@me", nil, withContext(ctx))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("slow request: got %v, want DeadlineExceeded", err)
		}
		synctest.Wait()
		o := e.last()
		wantEqual(t, "status", o.Status, mockdiscord.StatusClientGone)
		wantEqual(t, "fault", o.Fault, "slow")
		wantEqual(t, "no quota taken", o.Bucket, "")
		r = e.do("GET", "/users/@me", nil)
		wantHeader(t, r, "X-RateLimit-Remaining", "4")
	})
}

func TestInjectRejectsInvalidFaults(t *testing.T) {
	s := mockdiscord.New(nil)
	defer s.Close()
	for _, f := range []mockdiscord.Fault{
		{Kind: "explode"},
		{Kind: mockdiscord.FaultServerError, Status: 404},
		{Kind: mockdiscord.FaultShared429, Endpoint: "GET /nope"},
		{Kind: mockdiscord.FaultSlow},
		{Kind: mockdiscord.FaultShared429, RetryAfter: -time.Second},
		{Kind: mockdiscord.FaultChangeHash, NewHash: "x"},
		{Kind: mockdiscord.FaultChangeHash, Endpoint: "GET /users/@me"},
		{Kind: mockdiscord.FaultChangeHash, Endpoint: "GET /gateway", NewHash: "x"}, // no bucket
	} {
		if err := s.Inject(f); !errors.Is(err, mockdiscord.ErrInvalidFault) {
			t.Errorf("Inject(%+v): got %v, want ErrInvalidFault", f, err)
		}
	}
	if err := s.Inject(mockdiscord.Fault{Kind: mockdiscord.FaultShared429, Endpoint: "get /channels/{id}"}); err != nil {
		t.Errorf("Inject with another placeholder name: %v", err)
	}
}

func TestFaultOverControlAPI(t *testing.T) {
	bubble(t, nil, func(t *testing.T, e *env) {
		r := e.do("POST", e.s.URL()+"/_mock/faults", `{"kind":"shared429","endpoint":"GET /users/@me","retry_after_ms":1500,"count":1}`, noAuth)
		wantStatus(t, r, http.StatusNoContent)
		r = e.do("GET", "/users/@me", nil)
		wantStatus(t, r, 429)
		wantHeader(t, r, "Retry-After", "2")
		wantHeader(t, r, "X-RateLimit-Scope", "shared")
		r = e.do("POST", e.s.URL()+"/_mock/faults", `{"kind":"slow","delay_ms":250}`, noAuth)
		wantStatus(t, r, http.StatusNoContent)
		start := time.Now()
		e.do("GET", "/users/@me", nil)
		wantEqual(t, "slow over API", time.Since(start), 250*time.Millisecond)
		for _, bad := range []string{`{"kind":"nope"}`, `{"kind":"shared429","bogus":1}`, `not json`} {
			wantStatus(t, e.do("POST", e.s.URL()+"/_mock/faults", bad, noAuth), http.StatusBadRequest)
		}
	})
}
