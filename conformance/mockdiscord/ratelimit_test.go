package mockdiscord_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
)

// synctest's clock starts at 2000-01-01T00:00:00Z = Unix 946684800.

func TestPerRouteWindowResetsExactly(t *testing.T) {
	bubble(t, &mockdiscord.Options{Buckets: onlyBucket("GET /channels/{channel_id}", 2, 1500*time.Millisecond)}, func(t *testing.T, e *env) {
		ch, other := e.s.Channels()[0], e.s.Channels()[1]
		get := func(c string) reply { return e.do("GET", "/channels/"+c, nil) }

		r := get(ch)
		wantStatus(t, r, 200)
		wantHeader(t, r, "X-RateLimit-Limit", "2")
		wantHeader(t, r, "X-RateLimit-Remaining", "1")
		wantHeader(t, r, "X-RateLimit-Reset", "946684801.500")
		wantHeader(t, r, "X-RateLimit-Reset-After", "1.500")
		wantHeader(t, r, "X-RateLimit-Bucket", "test-hash")
		for _, h := range []string{"X-RateLimit-Scope", "X-RateLimit-Global", "Retry-After"} {
			wantHeader(t, r, h, "")
		}

		time.Sleep(500 * time.Millisecond)
		r = get(ch)
		wantHeader(t, r, "X-RateLimit-Remaining", "0")
		wantHeader(t, r, "X-RateLimit-Reset-After", "1.000")

		r = get(ch)
		wantStatus(t, r, 429)
		wantHeader(t, r, "X-RateLimit-Scope", "user")
		wantHeader(t, r, "Retry-After", "1")
		wantHeader(t, r, "Via", "1.1 google")
		wantHeader(t, r, "X-RateLimit-Remaining", "0")
		wantHeader(t, r, "X-RateLimit-Reset-After", "1.000")
		wantHeader(t, r, "X-RateLimit-Global", "")
		wantEqual(t, "429 body", string(r.body), `{"message":"You are being rate limited.","retry_after":1.000,"global":false}`)

		// Another channel has its own window.
		wantStatus(t, get(other), 200)

		time.Sleep(999 * time.Millisecond)
		r = get(ch)
		wantStatus(t, r, 429)
		wantHeader(t, r, "Retry-After", "1")
		wantEqual(t, "retry_after", r.obj(t)["retry_after"], any(0.001))

		time.Sleep(time.Millisecond)
		r = get(ch)
		wantStatus(t, r, 200)
		wantHeader(t, r, "X-RateLimit-Remaining", "1")
		wantHeader(t, r, "X-RateLimit-Reset-After", "1.500")

		o := e.last()
		wantEqual(t, "bucket", o.Bucket, "test-hash")
		wantEqual(t, "group", o.Group, "test-hash channels/"+ch)
		wantEqual(t, "429s", e.s.Count(429), 2)
		wantEqual(t, "violations", len(e.s.WindowViolations()), 2)
	})
}

func TestRetryAfterRounding(t *testing.T) {
	tests := []struct {
		name       string
		window     time.Duration
		fractional bool
		want       string
		wantBody   float64
	}{
		{name: "Whole", window: time.Second, want: "1", wantBody: 1},
		{name: "UpFromHalf", window: 1500 * time.Millisecond, want: "2", wantBody: 1.5},
		{name: "UpFromQuarter", window: 250 * time.Millisecond, want: "1", wantBody: 0.25},
		{name: "UpFromJustOver", window: 2001 * time.Millisecond, want: "3", wantBody: 2.001},
		{name: "UpFromSubMillisecond", window: 1500*time.Millisecond + 1, want: "2", wantBody: 1.501},
		{name: "Fractional", window: 1500 * time.Millisecond, fractional: true, want: "1.500", wantBody: 1.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := &mockdiscord.Options{Buckets: onlyBucket("GET /users/@me", 1, tt.window), FractionalRetryAfter: tt.fractional}
			bubble(t, opts, func(t *testing.T, e *env) {
				wantStatus(t, e.do("GET", "/users/@me", nil), 200)
				r := e.do("GET", "/users/@me", nil)
				wantStatus(t, r, 429)
				wantHeader(t, r, "Retry-After", tt.want)
				wantEqual(t, "retry_after", r.obj(t)["retry_after"], any(tt.wantBody))
			})
		})
	}
}

func TestDefaultBucketsSharing(t *testing.T) {
	bubble(t, nil, func(t *testing.T, e *env) {
		ch, other := e.s.Channels()[0], e.s.Channels()[1]
		id := e.post(ch, "m")
		oid := e.post(other, "m")
		react := func(c, m, method, suffix string) reply {
			return e.do(method, "/channels/"+c+"/messages/"+m+"/reactions/%F0%9F%91%8D"+suffix, nil)
		}
		first := react(ch, id, "PUT", "/@me")
		wantStatus(t, first, 204)
		hash := first.header.Get("X-RateLimit-Bucket")
		// Four reaction routes share one hash and one counter per channel.
		for _, rq := range [][2]string{{"GET", ""}, {"DELETE", "/@me"}, {"DELETE", "/" + e.s.UserID()}} {
			r := react(ch, id, rq[0], rq[1])
			wantStatus(t, r, 429)
			wantHeader(t, r, "X-RateLimit-Bucket", hash)
		}
		wantStatus(t, react(other, oid, "GET", ""), 200)
		time.Sleep(250 * time.Millisecond)
		wantStatus(t, react(ch, id, "GET", ""), 200)

		// Two guild routes share a hash but count independently.
		g := e.s.Guilds()[0]
		for range 5 {
			wantStatus(t, e.do("GET", "/guilds/"+g, nil), 200)
		}
		wantStatus(t, e.do("GET", "/guilds/"+g, nil), 429)
		r := e.do("GET", "/guilds/"+g+"/channels", nil)
		wantStatus(t, r, 200)
		wantHeader(t, r, "X-RateLimit-Remaining", "4")
		obs := e.s.Observations()
		a, b := obs[len(obs)-2], obs[len(obs)-1]
		wantEqual(t, "same advertised hash", a.Bucket, b.Bucket)
		if a.Group == b.Group {
			t.Errorf("groups: both %q, want different", a.Group)
		}
		if v := e.s.WindowViolations(); len(v) != 4 {
			t.Errorf("WindowViolations: got %d lines %q, want 4", len(v), v)
		}
	})
}

func TestGroupSharedAcrossResources(t *testing.T) {
	// PerResource false: one counter for every channel.
	bubble(t, &mockdiscord.Options{Buckets: []mockdiscord.BucketSpec{{Endpoint: "GET /channels/{channel_id}", Hash: "h", Limit: 1, Window: time.Second}}}, func(t *testing.T, e *env) {
		wantStatus(t, e.do("GET", "/channels/"+e.s.Channels()[0], nil), 200)
		r := e.do("GET", "/channels/"+e.s.Channels()[1], nil)
		wantStatus(t, r, 429)
		wantEqual(t, "group", e.last().Group, "h")
	})
}

func TestGlobalLimit(t *testing.T) {
	opts := &mockdiscord.Options{GlobalLimit: 3, Buckets: []mockdiscord.BucketSpec{}}
	bubble(t, opts, func(t *testing.T, e *env) {
		me := func() reply { return e.do("GET", "/users/@me", nil) }
		for range 3 {
			wantStatus(t, me(), 200)
		}
		r := me()
		wantStatus(t, r, 429)
		wantHeader(t, r, "Retry-After", "1")
		wantHeader(t, r, "X-RateLimit-Global", "true")
		wantHeader(t, r, "X-RateLimit-Scope", "global")
		for _, h := range rateLimitHeaders {
			wantHeader(t, r, h, "")
		}
		wantEqual(t, "body", string(r.body), `{"message":"You are being rate limited.","retry_after":1.000,"global":true}`)
		wantEqual(t, "scope", e.last().Scope, "global")
		wantEqual(t, "rejected is not counted", e.last().Global, false)

		// Exempt and unauthenticated requests pass while the bot is limited.
		wantStatus(t, e.do("POST", "/interactions/1/t/callback", `{"type":1}`), 204)
		wantStatus(t, e.do("GET", "/gateway", nil, noAuth), 200)

		time.Sleep(600 * time.Millisecond)
		r = me()
		wantStatus(t, r, 429)
		wantEqual(t, "retry_after", r.obj(t)["retry_after"], any(0.4))
		time.Sleep(400 * time.Millisecond)
		wantStatus(t, me(), 200) // t=1.0: the three at t=0 left the window

		// Sliding: one at 1.0, two at 1.5; at 2.0 the one from 1.0 leaves.
		time.Sleep(500 * time.Millisecond)
		wantStatus(t, me(), 200)
		wantStatus(t, me(), 200)
		wantStatus(t, me(), 429)
		time.Sleep(500 * time.Millisecond)
		wantStatus(t, me(), 200)
		r = me()
		wantStatus(t, r, 429)
		wantEqual(t, "retry_after", r.obj(t)["retry_after"], any(0.5))
		if v := e.s.WindowViolations(); len(v) != 4 || !strings.Contains(v[0], "429 global") {
			t.Errorf("WindowViolations: %q", v)
		}
	})
}

func TestGlobalCountsRejected(t *testing.T) {
	opts := &mockdiscord.Options{GlobalLimit: 2, GlobalCountsRejected: true, Buckets: onlyBucket("GET /users/@me", 1, time.Minute)}
	bubble(t, opts, func(t *testing.T, e *env) {
		wantStatus(t, e.do("GET", "/users/@me", nil), 200)
		wantStatus(t, e.do("GET", "/users/@me", nil), 429) // per-route, but takes a global slot
		r := e.do("GET", "/channels/"+e.s.Channels()[0], nil)
		wantStatus(t, r, 429)
		wantHeader(t, r, "X-RateLimit-Scope", "global")
	})
}

func TestDisableRateLimits(t *testing.T) {
	bubble(t, &mockdiscord.Options{DisableRateLimits: true, GlobalLimit: 1}, func(t *testing.T, e *env) {
		ch := e.s.Channels()[0]
		for range 20 {
			r := e.do("POST", "/channels/"+ch+"/messages", `{"content":"x"}`)
			wantStatus(t, r, 200)
			wantHeader(t, r, "X-RateLimit-Limit", "1000000")
			wantHeader(t, r, "X-RateLimit-Remaining", "999999")
			wantHeader(t, r, "X-RateLimit-Reset-After", "5.000")
		}
	})
}

func TestInvalidRequestBan(t *testing.T) {
	tests := []struct {
		name      string
		style     mockdiscord.BanStyle
		wantType  string
		wantBody  string
		wantVia   string
		wantLimit bool
	}{
		{name: "JSON", wantType: "application/json", wantVia: "1.1 google",
			wantBody: `{"message":"You are being blocked from accessing our API temporarily due to exceeding our rate limits frequently. Please read our docs at https://discord.com/developers/docs/topics/rate-limits to prevent this moving forward.","code":0}`},
		{name: "Cloudflare", style: mockdiscord.BanCloudflare, wantType: "text/html", wantBody: "error code: 1015"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := &mockdiscord.Options{InvalidRequestLimit: 3, InvalidRequestWindow: time.Minute, BanDuration: 90 * time.Second, BanStyle: tt.style}
			bubble(t, opts, func(t *testing.T, e *env) {
				for range 3 {
					wantStatus(t, e.do("GET", "/users/@me", nil, noAuth), 401)
				}
				wantStatus(t, e.do("GET", "/users/@me", nil), 200) // at the limit, not past it
				wantStatus(t, e.do("GET", "/users/@me", nil, header("User-Agent", "x")), 403)
				time.Sleep(time.Second)
				for _, auth := range []opt{noHeader("X-Nothing"), noAuth} {
					r := e.do("GET", "/users/@me", nil, auth)
					wantStatus(t, r, 429)
					wantHeader(t, r, "Retry-After", "89")
					wantHeader(t, r, "Content-Type", tt.wantType)
					wantHeader(t, r, "Via", tt.wantVia)
					wantEqual(t, "body", string(r.body), tt.wantBody)
					for _, h := range append(rateLimitHeaders, "X-RateLimit-Scope", "X-RateLimit-Global") {
						wantHeader(t, r, h, "")
					}
					o := e.last()
					wantEqual(t, "banned", o.Banned, true)
					wantEqual(t, "ban is not invalid", o.Invalid, false)
				}
				time.Sleep(89 * time.Second)
				wantStatus(t, e.do("GET", "/users/@me", nil), 200)
				// The count started over with the ban.
				for range 3 {
					wantStatus(t, e.do("GET", "/users/@me", nil, noAuth), 401)
				}
				wantStatus(t, e.do("GET", "/users/@me", nil), 200)
				v := e.s.WindowViolations()
				if len(v) != 2 || !strings.Contains(v[0], "banned") {
					t.Errorf("WindowViolations: %q", v)
				}
			})
		})
	}
}

func TestInvalidRequestWindowSlides(t *testing.T) {
	opts := &mockdiscord.Options{InvalidRequestLimit: 2, InvalidRequestWindow: 10 * time.Second}
	bubble(t, opts, func(t *testing.T, e *env) {
		wantStatus(t, e.do("GET", "/users/@me", nil, noAuth), 401)
		time.Sleep(5 * time.Second)
		wantStatus(t, e.do("GET", "/users/@me", nil, noAuth), 401)
		time.Sleep(5 * time.Second) // the first one leaves the window
		wantStatus(t, e.do("GET", "/users/@me", nil, noAuth), 401)
		wantStatus(t, e.do("GET", "/users/@me", nil), 200)
		// Shared 429s do not count.
		if err := e.s.Inject(mockdiscord.Fault{Kind: mockdiscord.FaultShared429, Count: 5}); err != nil {
			t.Fatal(err)
		}
		for range 5 {
			wantStatus(t, e.do("GET", "/users/@me", nil), 429)
		}
		wantStatus(t, e.do("GET", "/users/@me", nil), 200)
		wantStatus(t, e.do("GET", "/users/@me", nil, noAuth), 401) // the third in the window
		r := e.do("GET", "/users/@me", nil)
		wantStatus(t, r, 429)
		wantEqual(t, "banned", e.last().Banned, true)
	})
}

func TestLatency(t *testing.T) {
	bubble(t, &mockdiscord.Options{Latency: 120 * time.Millisecond, Buckets: onlyBucket("GET /users/@me", 1, time.Second)}, func(t *testing.T, e *env) {
		start := time.Now()
		r := e.do("GET", "/users/@me", nil)
		wantEqual(t, "elapsed", time.Since(start), 120*time.Millisecond)
		// The window opened when the request was processed, after the latency.
		wantHeader(t, r, "X-RateLimit-Reset", "946684801.120")
		wantHeader(t, r, "X-RateLimit-Reset-After", "1.000")
	})
}

func TestConcurrentSafeRequests(t *testing.T) {
	for _, mode := range []string{"Pipe", "TCP"} {
		t.Run(mode, func(t *testing.T) {
			run := func(t *testing.T, e *env) {
				ch := e.s.Channels()[0]
				done := make(chan struct{})
				for g := range 8 {
					go func() {
						defer func() { done <- struct{}{} }()
						for range 10 {
							var r reply
							var err error
							if g%2 == 0 {
								r, err = e.send("POST", "/channels/"+ch+"/messages", `{"content":"x"}`)
							} else {
								r, err = e.send("GET", "/channels/"+ch+"/messages?limit=5", nil)
							}
							if err != nil || r.status != http.StatusOK {
								t.Errorf("request: %v, status %d %s", err, r.status, r.body)
							}
							_ = e.s.Observations()
						}
					}()
				}
				for range 8 {
					<-done
				}
				wantEqual(t, "observations", len(e.s.Observations()), 80)
				wantEqual(t, "messages", len(e.s.Messages(ch)), 40)
				obs := e.s.Observations()
				for i := 1; i < len(obs); i++ {
					if obs[i].Time.Before(obs[i-1].Time) {
						t.Fatalf("observations out of order at %d", i)
					}
				}
			}
			opts := &mockdiscord.Options{DisableRateLimits: true}
			if mode == "TCP" {
				tcp(t, opts, run)
				return
			}
			s := mockdiscord.New(opts)
			defer s.Close()
			run(t, &env{t: t, s: s, c: s.Client(), base: s.APIBase()})
		})
	}
}

func TestStatusCodesOnTCP(t *testing.T) {
	tcp(t, &mockdiscord.Options{Buckets: onlyBucket("GET /users/@me", 1, time.Minute)}, func(t *testing.T, e *env) {
		if !strings.HasPrefix(e.s.URL(), "http://127.0.0.1:") {
			t.Fatalf("URL: got %q", e.s.URL())
		}
		r := e.do("GET", "/users/@me", nil)
		wantStatus(t, r, 200)
		wantHeader(t, r, "Via", "1.1 google")
		r = e.do("GET", "/users/@me", nil)
		wantStatus(t, r, 429)
		wantHeader(t, r, "X-RateLimit-Scope", "user")
		wantHeader(t, r, "Retry-After", "60")
		wantStatus(t, e.do("GET", "/users/@me", nil, noAuth), 401)
		gw := e.do("GET", "/gateway", nil, noAuth).obj(t)
		wantEqual(t, "gateway url", gw["url"], any("ws://"+strings.TrimPrefix(e.s.URL(), "http://")+"/gateway"))
		wantEqual(t, "Count(429)", e.s.Count(http.StatusTooManyRequests), 1)
	})
}
