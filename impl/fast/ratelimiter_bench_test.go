package fast_test

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	reference "github.com/cordkit/cordkit/impl/default"
	"github.com/cordkit/cordkit/impl/fast"
	"github.com/cordkit/cordkit/protocols"
)

// BenchmarkRateLimiterImpls measures one Acquire plus Complete per op, for
// the reference limiter, the fast one, and the fast one with InFlight, on
// the same workloads: 1 and 8 goroutines, over 64 routes (one per channel)
// or 1 route, whose bucket either always has room (Remaining far above
// zero, hash "bench") or is unlimited (2xx without rate-limit headers).
// The global limit is off (GlobalLimit -1), as in
// conformance.BenchmarkRateLimiter, so that the limiters' own overhead is
// measured rather than Discord's 50 requests per second.
//
//	go test ./impl/fast/ -run '^$' -bench RateLimiterImpls -count 6 | benchstat -col /impl -
func BenchmarkRateLimiterImpls(b *testing.B) {
	impls := []struct {
		name string
		new  func(protocols.RateLimiterParams) (protocols.RateLimiter, error)
	}{
		{"reference", reference.NewRateLimiter},
		{"fast", fast.NewRateLimiter},
		{"fast-inflight", fast.RateLimiterOptions{InFlight: true}.New},
	}
	roomy := protocols.RateLimitInfo{Status: 200, Bucket: "bench", HasLimit: true, Limit: 1 << 30, Remaining: 1 << 30, ResetAfter: time.Hour}
	unlimited := protocols.RateLimitInfo{Status: 200}
	workloads := []struct {
		name   string
		routes int
		info   protocols.RateLimitInfo
	}{
		{"routes=64/remaining", 64, roomy},
		{"routes=1/remaining", 1, roomy},
		{"routes=64/unlimited", 64, unlimited},
	}
	for _, w := range workloads {
		for _, g := range []int{1, 8} {
			for _, impl := range impls {
				b.Run(fmt.Sprintf("%s/goroutines=%d/impl=%s", w.name, g, impl.name), func(b *testing.B) {
					l, err := impl.new(protocols.RateLimiterParams{GlobalLimit: -1, Logger: slog.New(slog.DiscardHandler)})
					if err != nil {
						b.Fatal(err)
					}
					defer func() { _ = l.Close() }()
					routes := make([]protocols.Route, w.routes)
					for i := range routes {
						r, err := protocols.NewRoute("POST", "/channels/{channel_id}/messages", strconv.Itoa(1000+i))
						if err != nil {
							b.Fatal(err)
						}
						routes[i] = r
					}
					ctx := context.Background()
					op := func(r protocols.Route) {
						p, err := l.Acquire(ctx, r)
						if err != nil {
							b.Error(err)
							return
						}
						p.Complete(w.info)
					}
					for _, r := range routes { // teach every bucket
						op(r)
					}
					b.ReportAllocs()
					b.ResetTimer()
					var wg sync.WaitGroup
					for k := range g {
						n := b.N / g
						if k < b.N%g {
							n++
						}
						wg.Go(func() {
							for i := range n {
								op(routes[(k+i*g)%len(routes)])
							}
						})
					}
					wg.Wait()
				})
			}
		}
	}
}
