package conformance

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
	"github.com/cordkit/cordkit/protocols"
)

// unlimited is a response that leaves a bucket room for ever.
var unlimited = ok200("bench", 1<<30, 1<<30, time.Hour)

// runParallel calls op b.N times from goroutines goroutines, and fails b on
// the first error.
func runParallel(b *testing.B, goroutines int, op func() error) {
	b.Helper()
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		once sync.Once
		fail error
	)
	n := int64(b.N)
	b.ResetTimer()
	for range goroutines {
		wg.Go(func() {
			for next.Add(1) <= n {
				if err := op(); err != nil {
					once.Do(func() { fail = err })
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if fail != nil {
		b.Fatal(fail)
	}
}

// BenchmarkBucket measures Acquire plus Complete on one bucket that always
// has room, from 1 and from 64 goroutines. newBucket is called once per
// sub-benchmark; the bucket is closed at its end.
func BenchmarkBucket(b *testing.B, newBucket func(b *testing.B) protocols.Bucket) {
	for _, g := range []int{1, 64} {
		b.Run("goroutines="+strconv.Itoa(g), func(b *testing.B) {
			bk := newBucket(b)
			defer func() { _ = bk.Close() }()
			ctx := context.Background()
			op := func() error {
				p, err := bk.Acquire(ctx)
				if err != nil {
					return fmt.Errorf("Bucket.Acquire: %w", err)
				}
				p.Complete(unlimited)
				return nil
			}
			if err := op(); err != nil { // teach the bucket its limit
				b.Fatal(err)
			}
			b.ReportAllocs()
			runParallel(b, g, op)
		})
	}
}

// BenchmarkRateLimiter measures Acquire plus Complete under contention:
// from 1 and from 64 goroutines, over 1 and over 1000 buckets (one route
// in 1 or 1000 channels). Every bucket always has room and the global
// limit is disabled (GlobalLimit -1), so the benchmark measures the
// limiter's own overhead. newLimiter is called once per sub-benchmark
// with p.GlobalLimit -1 and a discarding p.Logger; the limiter is closed
// at its end.
func BenchmarkRateLimiter(b *testing.B, newLimiter func(b *testing.B, p protocols.RateLimiterParams) protocols.RateLimiter) {
	for _, g := range []int{1, 64} {
		for _, buckets := range []int{1, 1000} {
			b.Run(fmt.Sprintf("goroutines=%d/buckets=%d", g, buckets), func(b *testing.B) {
				l := newLimiter(b, protocols.RateLimiterParams{GlobalLimit: -1, Logger: slog.New(slog.DiscardHandler)})
				defer func() { _ = l.Close() }()
				routes := make([]protocols.Route, buckets)
				for i := range routes {
					routes[i] = createMessage(i + 1)
				}
				ctx := context.Background()
				var next atomic.Uint64
				op := func(r protocols.Route) error {
					p, err := l.Acquire(ctx, r)
					if err != nil {
						return fmt.Errorf("RateLimiter.Acquire(%v): %w", r, err)
					}
					p.Complete(unlimited)
					return nil
				}
				for _, r := range routes { // teach every bucket its limit
					if err := op(r); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportAllocs()
				runParallel(b, g, func() error { return op(routes[int(next.Add(1)%uint64(buckets))]) })
			})
		}
	}
}

// BenchmarkHTTPClient measures GET /users/@me, one request at a time,
// against [mockdiscord] over loopback TCP with every rate limit off, and
// reports requests per second. Its sibling sub-benchmark "net/http" sends
// the same request with a bare *http.Client in the same run, as the
// baseline the client's overhead is measured against.
//
// newClient is called once, with p.Doer an *http.Client over loopback and
// the other parameters as [TestHTTPClient] sets them. The factory builds
// its own RateLimiter: give it a negative GlobalLimit, or the benchmark
// measures Discord's 50 requests per second instead of the client.
func BenchmarkHTTPClient(b *testing.B, newClient func(b *testing.B, p protocols.HTTPClientParams) protocols.HTTPClient) {
	srv := mockdiscord.New(&mockdiscord.Options{DisableRateLimits: true, GlobalLimit: -1, InvalidRequestLimit: -1})
	if err := srv.Start("127.0.0.1:0"); err != nil {
		b.Fatalf("mockdiscord.Start: %v", err)
	}
	defer func() { _ = srv.Close() }()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	token := protocols.BotToken(mockdiscord.DefaultToken)

	b.Run("impl", func(b *testing.B) {
		c := newClient(b, protocols.HTTPClientParams{
			Token:                token,
			BaseURL:              srv.APIBase(),
			UserAgent:            suiteUserAgent,
			Doer:                 hc,
			MaxRetries:           suiteMaxRetries,
			InvalidRequestBudget: suiteBudget,
			Logger:               slog.New(slog.DiscardHandler),
		})
		defer func() { _ = c.Close() }()
		ctx := context.Background()
		req := getMe()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Do(ctx, req); err != nil {
				b.Fatalf("HTTPClient.Do: %v", err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	})
	b.Run("net/http", func(b *testing.B) {
		url := srv.APIBase() + "/users/@me"
		b.ReportAllocs()
		for b.Loop() {
			req, err := http.NewRequest(http.MethodGet, url, nil)
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("Authorization", token.Authorization())
			req.Header.Set("User-Agent", suiteUserAgent)
			resp, err := hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("GET /users/@me: status %d", resp.StatusCode)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	})
}
