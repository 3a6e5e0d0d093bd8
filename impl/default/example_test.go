package reference_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	reference "github.com/cordkit/cordkit/impl/default"
	"github.com/cordkit/cordkit/protocols"
)

func ExampleNewBucket() {
	b := reference.NewBucket()
	defer b.Close()

	p, err := b.Acquire(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	// ... send the request, then report what the response said:
	p.Complete(protocols.RateLimitInfo{Status: 200, HasLimit: true, Limit: 5, Remaining: 0, ResetAfter: time.Minute})

	// The bucket is exhausted for a minute; a caller that cannot wait that
	// long says so with its context.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err = b.Acquire(ctx)
	fmt.Println(errors.Is(err, context.DeadlineExceeded))
	// Output: true
}

func ExampleNewRateLimiter() {
	l, err := reference.NewRateLimiter(protocols.RateLimiterParams{GlobalLimit: reference.DefaultGlobalLimit})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()

	r, _ := protocols.NewRoute("POST", "/channels/{channel_id}/messages", "123")
	p, err := l.Acquire(context.Background(), r)
	if err != nil {
		fmt.Println(err)
		return
	}
	// Send the request here; then hand the parsed headers back, or call
	// p.Cancel() when no response came.
	h := http.Header{}
	h.Set("X-RateLimit-Bucket", "abcd1234")
	h.Set("X-RateLimit-Limit", "5")
	h.Set("X-RateLimit-Remaining", "4")
	h.Set("X-RateLimit-Reset-After", "1.5")
	info := protocols.ParseRateLimitInfo(200, h, nil, time.Now())
	p.Complete(info)
	fmt.Println(info.Bucket, info.Remaining, info.ResetAfter)
	// Output: abcd1234 4 1.5s
}

func ExampleRateLimiterOptions_New() {
	// A TypeSheet takes the method value as its NewRateLimiter field.
	newLimiter := reference.RateLimiterOptions{CloudflarePause: time.Hour, IdleTimeout: time.Hour}.New
	l, err := newLimiter(protocols.RateLimiterParams{GlobalLimit: 50})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(l.Close())
	// Output: <nil>
}

func ExampleNewHTTPClient() {
	// A stand-in for Discord; a real client leaves Doer nil or passes an
	// *http.Client.
	fake := protocols.HTTPDoerFunc(func(req *http.Request) (*http.Response, error) {
		return &http.Response{
			StatusCode: 200,
			Header:     http.Header{"Content-Type": {"application/json"}},
			Body:       io.NopCloser(strings.NewReader(`{"id":"42","username":"bot"}`)),
		}, nil
	})
	l, _ := reference.NewRateLimiter(protocols.RateLimiterParams{GlobalLimit: reference.DefaultGlobalLimit})
	defer l.Close()
	c, err := reference.NewHTTPClient(protocols.HTTPClientParams{
		Token:       protocols.BotToken("MTIzNDU2Nzg5MDEyMzQ1Njc4.GhJkLm.abcdefghijklmnop"),
		BaseURL:     "https://discord.com/api/v10",
		Doer:        fake,
		RateLimiter: l,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	r, _ := protocols.NewRoute("GET", "/users/@me")
	resp, err := c.Do(context.Background(), &protocols.Request{Route: r})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.Status, string(resp.Body))
	// Output: 200 {"id":"42","username":"bot"}
}

func ExampleHTTPClientOptions_New() {
	l, _ := reference.NewRateLimiter(protocols.RateLimiterParams{GlobalLimit: reference.DefaultGlobalLimit})
	defer l.Close()
	c, err := reference.HTTPClientOptions{BackoffBase: 250 * time.Millisecond, MaxRateLimitRetries: 3}.New(
		protocols.HTTPClientParams{
			Token:       protocols.BotToken("not a token"),
			BaseURL:     "https://discord.com/api/v10",
			RateLimiter: l,
		})
	if err != nil {
		fmt.Println(errors.Is(err, protocols.ErrInvalidToken))
		return
	}
	c.Close()
	// Output: true
}

func ExampleCodec_DecodeEnvelope() {
	var env protocols.Envelope
	err := reference.Codec{}.DecodeEnvelope([]byte(`{"op":0,"s":3,"t":"READY","d":{"v":10}}`), &env)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(env.Op, env.S, env.T, string(env.D))
	// Output: DISPATCH 3 READY {"v":10}
}
