package redis_test

import (
	"log/slog"
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

// TestIdentifyLimiterConformance runs the IdentifyLimiter suite against
// one redis-server, started outside the suite's synctest bubbles, with a
// fresh namespace and client per limiter, made inside the bubble.
//
// The scripts take the bubble's fake clock (Options.Now). The limiter
// waits on timers only, so the fake clock advances through its waits; the
// short Timeout keeps the spacing margin (IdentifyInterval + Timeout)
// within the suite's lateness, and never fires: the fake clock stands
// still while a call is on the network. The server is older than one
// identify slot, so that a new namespace is not taken for a restarted
// Redis and quarantined.
func TestIdentifyLimiterConformance(t *testing.T) {
	s := startAgedRedis(t)
	var ns atomic.Int64
	conformance.TestIdentifyLimiter(t, func(t *testing.T, p protocols.IdentifyLimiterParams) protocols.IdentifyLimiter {
		o := bubbleOptions(t, s.Addr, "identify-conformance-"+strconv.FormatInt(ns.Add(1), 10))
		l, err := o.NewIdentifyLimiter(p)
		if err != nil {
			t.Fatal(err)
		}
		return l
	})
}

// TestSessionStoreConformance runs the SessionStore suite the same way.
func TestSessionStoreConformance(t *testing.T) {
	s := redistest.Start(t)
	var ns atomic.Int64
	conformance.TestSessionStore(t, func(t *testing.T) protocols.SessionStore {
		o := bubbleOptions(t, s.Addr, "session-conformance-"+strconv.FormatInt(ns.Add(1), 10))
		store, err := o.NewSessionStore()
		if err != nil {
			t.Fatal(err)
		}
		return store
	})
}

// bubbleOptions returns Options for use inside a synctest bubble: a new
// client, closed when the test ends, whose pool is larger than any
// suite's concurrency (go-redis keeps the timers of contended pool waits
// in a package-level sync.Pool, and a timer made in one bubble must not
// be used in another), the fake clock, and logs to the test's output.
func bubbleOptions(t *testing.T, addr, namespace string) redis.Options {
	client := goredis.NewClient(&goredis.Options{Addr: addr, PoolSize: 512})
	t.Cleanup(func() { _ = client.Close() })
	return redis.Options{
		Client:    client,
		Namespace: namespace,
		Now:       time.Now,
		Timeout:   20 * time.Millisecond,
		Logger:    slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}
