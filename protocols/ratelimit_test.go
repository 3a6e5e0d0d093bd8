package protocols_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/cordkit/cordkit/protocols"
)

func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func TestParseRateLimitInfo(t *testing.T) {
	now := time.Unix(1470173020, 0)
	five := []string{"X-RateLimit-Limit", "5", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1470173023.123",
		"X-RateLimit-Reset-After", "64.57", "X-RateLimit-Bucket", "abcd1234"}
	tests := []struct {
		name   string
		status int
		h      http.Header
		body   string
		want   protocols.RateLimitInfo
	}{
		{"AllHeaders", 200, header(five...), "", protocols.RateLimitInfo{Status: 200, Bucket: "abcd1234", HasLimit: true, Limit: 5,
			ResetAfter: 64570 * time.Millisecond}},
		{"FractionalResetAfterKeepsMilliseconds", 200, header("X-RateLimit-Reset-After", "1.5"), "",
			protocols.RateLimitInfo{Status: 200, ResetAfter: 1500 * time.Millisecond}},
		{"ResetAfterRoundsUpToMillisecond", 200, header("X-RateLimit-Reset-After", "0.0001"), "",
			protocols.RateLimitInfo{Status: 200, ResetAfter: time.Millisecond}},
		{"ResetWithoutResetAfterUsesDate", 200, header("X-RateLimit-Reset", "1470173023.5", "Date", "Tue, 02 Aug 2016 21:23:41 GMT"), "",
			protocols.RateLimitInfo{Status: 200, ResetAfter: 2500 * time.Millisecond}},
		{"ResetWithoutDateUsesNow", 200, header("X-RateLimit-Reset", "1470173021"), "",
			protocols.RateLimitInfo{Status: 200, ResetAfter: time.Second}},
		{"NoHeaders", 200, header(), "", protocols.RateLimitInfo{Status: 200}},
		{"MalformedIgnored", 200, header("X-RateLimit-Limit", "x", "X-RateLimit-Remaining", "1", "X-RateLimit-Reset-After", "-1"), "",
			protocols.RateLimitInfo{Status: 200}},
		{"User429", 429, header(append(five, "X-RateLimit-Scope", "user", "Retry-After", "65")...),
			`{"message":"You are being rate limited.","retry_after":64.57,"global":false}`,
			protocols.RateLimitInfo{Status: 429, Bucket: "abcd1234", HasLimit: true, Limit: 5, ResetAfter: 64570 * time.Millisecond,
				Scope: protocols.ScopeUser, RetryAfter: 64570 * time.Millisecond}},
		{"Shared429", 429, header("X-RateLimit-Limit", "5", "X-RateLimit-Remaining", "3", "X-RateLimit-Scope", "shared", "Retry-After", "2"),
			`{"message":"The resource is being rate limited.","retry_after":1.25,"global":false}`,
			protocols.RateLimitInfo{Status: 429, HasLimit: true, Limit: 5, Remaining: 3, Scope: protocols.ScopeShared, RetryAfter: 1250 * time.Millisecond}},
		{"Global429", 429, header("X-RateLimit-Global", "true", "X-RateLimit-Scope", "global", "Retry-After", "1"),
			`{"message":"You are being rate limited.","retry_after":0.3,"global":true}`,
			protocols.RateLimitInfo{Status: 429, Scope: protocols.ScopeGlobal, RetryAfter: 300 * time.Millisecond}},
		{"GlobalFromBodyOnly", 429, header("Retry-After", "1"), `{"retry_after":0.5,"global":true}`,
			protocols.RateLimitInfo{Status: 429, Scope: protocols.ScopeGlobal, RetryAfter: 500 * time.Millisecond}},
		{"CloudflareHTML", 429, header("Retry-After", "3600"), "<html>error code: 1015</html>",
			protocols.RateLimitInfo{Status: 429, Scope: protocols.ScopeCloudflare, RetryAfter: time.Hour}},
		{"CloudflareJSONBan", 429, header("Retry-After", "60"), `{"code":0,"message":"You are being blocked from accessing our API temporarily"}`,
			protocols.RateLimitInfo{Status: 429, Scope: protocols.ScopeCloudflare, RetryAfter: time.Minute}},
		{"HeaderRetryAfterWhenBodyLacksIt", 429, header("X-RateLimit-Scope", "user", "Retry-After", "2"), `{"message":"x"}`,
			protocols.RateLimitInfo{Status: 429, Scope: protocols.ScopeUser, RetryAfter: 2 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := protocols.ParseRateLimitInfo(tt.status, tt.h, []byte(tt.body), now)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestRateLimitInfoInvalid(t *testing.T) {
	tests := []struct {
		info protocols.RateLimitInfo
		want bool
	}{
		{protocols.RateLimitInfo{Status: 401}, true},
		{protocols.RateLimitInfo{Status: 403}, true},
		{protocols.RateLimitInfo{Status: 429, Scope: protocols.ScopeUser}, true},
		{protocols.RateLimitInfo{Status: 429, Scope: protocols.ScopeGlobal}, true},
		{protocols.RateLimitInfo{Status: 429, Scope: protocols.ScopeCloudflare}, true},
		{protocols.RateLimitInfo{Status: 429, Scope: protocols.ScopeShared}, false},
		{protocols.RateLimitInfo{Status: 404}, false},
		{protocols.RateLimitInfo{Status: 500}, false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.info.Invalid(), "%d %s", tt.info.Status, tt.info.Scope)
	}
}

func FuzzParseRateLimitInfo(f *testing.F) {
	f.Add(429, "5", "0", "1.5", "user", "65", `{"retry_after":64.57,"global":false}`)
	f.Add(200, "x", "", "-1", "", "", "")
	f.Add(429, "", "", "1e308", "global", "NaN", `{"retry_after":1e400}`)
	f.Fuzz(func(t *testing.T, status int, limit, remaining, resetAfter, scope, retryAfter, body string) {
		h := header("X-RateLimit-Limit", limit, "X-RateLimit-Remaining", remaining, "X-RateLimit-Reset-After", resetAfter,
			"X-RateLimit-Scope", scope, "Retry-After", retryAfter)
		info := protocols.ParseRateLimitInfo(status, h, []byte(body), time.Unix(0, 0))
		if info.ResetAfter < 0 || info.RetryAfter < 0 || info.Limit < 0 || info.Remaining < 0 {
			t.Fatalf("negative durations or counts: %+v", info)
		}
		if status != 429 && info.Scope != "" {
			t.Fatalf("scope %q on a %d", info.Scope, status)
		}
	})
}

// ParseRateLimitInfo reads headers by their canonical keys directly; a
// key that is not canonical would never be found.
func TestParseRateLimitInfoKeysAreCanonical(t *testing.T) {
	h := http.Header{}
	for k, v := range map[string]string{
		"X-RateLimit-Bucket": "abc", "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "4",
		"X-RateLimit-Reset-After": "1.5", "X-RateLimit-Scope": "global", "X-RateLimit-Global": "true", "Retry-After": "2",
	} {
		h.Set(k, v)
	}
	info := protocols.ParseRateLimitInfo(429, h, []byte(`{"message":"You are being rate limited.","retry_after":2,"global":true}`), time.Now())
	if info.Bucket != "abc" || !info.HasLimit || info.Limit != 5 || info.Remaining != 4 || info.ResetAfter != 1500*time.Millisecond || info.Scope != protocols.ScopeGlobal || info.RetryAfter != 2*time.Second {
		t.Errorf("ParseRateLimitInfo = %+v", info)
	}
	if n := testing.AllocsPerRun(100, func() { protocols.ParseRateLimitInfo(200, h, nil, time.Now()) }); n > 0 {
		t.Errorf("ParseRateLimitInfo allocates %v times, want 0", n)
	}
}
