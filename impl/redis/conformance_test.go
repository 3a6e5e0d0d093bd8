package redis_test

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cordkit/cordkit/conformance"
	"github.com/cordkit/cordkit/impl/redis"
	"github.com/cordkit/cordkit/internal/redistest"
	"github.com/cordkit/cordkit/protocols"
)

// TestRateLimiterConformance runs the RateLimiter suite against one
// redis-server, started outside the suite's synctest bubbles, with a fresh
// namespace per limiter.
//
// Inside a bubble the scripts take the fake clock (Options.Now), and the
// pub/sub wake-ups are off: a subscriber blocked reading the network would
// keep the fake clock from advancing. Each limiter is alone in its
// namespace, so its own releases wake its waiters through channels.
//
// Each client gets a pool larger than the suite's concurrency: go-redis
// keeps the timers of contended pool waits in a package-level sync.Pool,
// and a timer made in one bubble must not be used in another.
func TestRateLimiterConformance(t *testing.T) {
	s := redistest.Start(t)
	var ns atomic.Int64
	conformance.TestRateLimiter(t, func(t *testing.T, p protocols.RateLimiterParams) protocols.RateLimiter {
		client := goredis.NewClient(&goredis.Options{Addr: s.Addr, PoolSize: 512})
		t.Cleanup(func() { _ = client.Close() })
		opts := redis.Options{
			Client:      client,
			Namespace:   "conformance-" + strconv.FormatInt(ns.Add(1), 10),
			Now:         time.Now,
			Logger:      p.Logger,
			RateLimiter: &redis.RateLimiterOptions{DisablePubSub: true},
		}
		l, err := opts.NewRateLimiter(p)
		if err != nil {
			t.Fatal(err)
		}
		return l
	})
}
