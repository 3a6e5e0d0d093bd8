package redis_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	reference "github.com/cordkit/cordkit/impl/default"
	"github.com/cordkit/cordkit/impl/redis"
	"github.com/cordkit/cordkit/internal/redistest"
	"github.com/cordkit/cordkit/protocols"
)

// The benchmarks measure the limiter's own cost, not Discord's limits:
// the global limit is off and the route's responses carry no rate-limit
// headers, so its bucket is unlimited and nothing ever waits. Each run has
// the Redis limiter and the in-memory reference side by side.

func benchLimiters(b *testing.B) map[string]func(b *testing.B) protocols.RateLimiter {
	s := redistest.Start(b)
	p := protocols.RateLimiterParams{GlobalLimit: -1, Logger: slog.New(slog.DiscardHandler)}
	return map[string]func(b *testing.B) protocols.RateLimiter{
		"Redis": func(b *testing.B) protocols.RateLimiter {
			c := goredis.NewClient(&goredis.Options{Addr: s.Addr})
			b.Cleanup(func() { _ = c.Close() })
			l, err := redis.Options{Client: c, Namespace: "bench-" + b.Name()}.NewRateLimiter(p)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = l.Close() })
			return l
		},
		"Memory": func(b *testing.B) protocols.RateLimiter {
			l, err := reference.NewRateLimiter(p)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = l.Close() })
			return l
		},
	}
}

var benchRoute = protocols.Route{Method: "GET", Path: "/guilds/1", Template: "/guilds/{guild_id}", Resource: "guilds/1"}

// BenchmarkRateLimiterAcquireComplete is one Acquire and one Complete per
// op: two script calls for Redis.
func BenchmarkRateLimiterAcquireComplete(b *testing.B) {
	limiters := benchLimiters(b)
	for _, name := range []string{"Redis", "Memory"} {
		newLimiter := limiters[name]
		b.Run(name, func(b *testing.B) {
			l := newLimiter(b)
			ctx := context.Background()
			info := protocols.RateLimitInfo{Status: 200}
			b.ReportAllocs()
			for b.Loop() {
				p, err := l.Acquire(ctx, benchRoute)
				if err != nil {
					b.Fatal(err)
				}
				p.Complete(info)
			}
		})
	}
}

// BenchmarkRateLimiterAcquireLatency reports the p50 and p99 latency of
// one Acquire (its permit is completed outside the measured time).
func BenchmarkRateLimiterAcquireLatency(b *testing.B) {
	limiters := benchLimiters(b)
	for _, name := range []string{"Redis", "Memory"} {
		newLimiter := limiters[name]
		b.Run(name, func(b *testing.B) {
			l := newLimiter(b)
			ctx := context.Background()
			info := protocols.RateLimitInfo{Status: 200}
			var lat []time.Duration
			for b.Loop() {
				start := time.Now()
				p, err := l.Acquire(ctx, benchRoute)
				lat = append(lat, time.Since(start))
				if err != nil {
					b.Fatal(err)
				}
				p.Complete(info)
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
		})
	}
}
