package protocols_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/cordkit/cordkit/protocols"
)

// A Route is data: its Key separates top-level resources until Discord
// names the bucket, and String hides tokens in the path.
func ExampleNewRoute() {
	r, err := protocols.NewRoute("POST", "/channels/{channel_id}/messages", "123")
	if err != nil {
		panic(err)
	}
	fmt.Println(r.Path)
	fmt.Println(r.Key())
	w, _ := protocols.NewRoute("POST", "/webhooks/{webhook_id}/{webhook_token}", "9", "secret")
	fmt.Println(w)
	// Output:
	// /channels/123/messages
	// POST /channels/{channel_id}/messages channels/123
	// POST /webhooks/9/{webhook_token}
}

// ParseRateLimitInfo reads what a 429 says: its scope and how long to wait,
// to the millisecond.
func ExampleParseRateLimitInfo() {
	h := http.Header{}
	h.Set("X-RateLimit-Limit", "5")
	h.Set("X-RateLimit-Remaining", "0")
	h.Set("X-RateLimit-Reset-After", "1.337")
	h.Set("X-RateLimit-Bucket", "abcd1234")
	h.Set("X-RateLimit-Scope", "user")
	h.Set("Retry-After", "2")
	body := []byte(`{"message": "You are being rate limited.", "retry_after": 1.337, "global": false}`)
	info := protocols.ParseRateLimitInfo(http.StatusTooManyRequests, h, body, time.Now())
	fmt.Println(info.Scope, info.Bucket, info.RetryAfter, info.Invalid())
	// Output: user abcd1234 1.337s true
}

// Tokens never print themselves.
func ExampleBotToken() {
	t := protocols.BotToken("Bot MTExMTExMTExMTExMTExMTEx.R3ZhYg.secret")
	fmt.Println(t, t.Validate() == nil, t.ID())
	fmt.Printf("%+v\n", struct{ Token protocols.Token }{t})
	// Output:
	// Bot [REDACTED] true 111111111111111111
	// {Token:Bot [REDACTED]}
}
