package redis_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cordkit/cordkit/impl/redis"
	"github.com/cordkit/cordkit/internal/redistest"
	"github.com/cordkit/cordkit/protocols"
)

// These tests run in real time against a real redis-server: several
// limiters, each with its own go-redis client, share one namespace the way
// the shards of one bot do in several processes.

func newClient(t *testing.T, addr string) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: addr, PoolSize: 64, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// newLimiter returns a limiter of namespace ns on its own client.
func newLimiter(t *testing.T, addr, ns string, global int, logger *slog.Logger, ro *redis.RateLimiterOptions) *redis.RateLimiter {
	t.Helper()
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	opts := redis.Options{Client: newClient(t, addr), Namespace: ns, Logger: logger, RateLimiter: ro}
	l, err := opts.NewRateLimiter(protocols.RateLimiterParams{GlobalLimit: global})
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	return l.(*redis.RateLimiter)
}

func route(t *testing.T, method, tmpl string, args ...string) protocols.Route {
	t.Helper()
	r, err := protocols.NewRoute(method, tmpl, args...)
	require.NoError(t, err)
	return r
}

func guild(t *testing.T, id int) protocols.Route {
	return route(t, "GET", "/guilds/{guild_id}", strconv.Itoa(id))
}

// discord counts what a simulated Discord receives, in real time, and
// records what it would have refused: more than global non-exempt
// requests in one second, or more than a bucket's limit in its window. A
// window starts at the first request after the previous one reset, and
// ResetAfter is computed when the request arrives.
type discord struct {
	global        int
	limit         int
	window        time.Duration
	bucketPattern string // endpoints with the limited bucket

	mu      sync.Mutex
	hits    []time.Time
	count   int
	resetAt time.Time
	bad     []string
	total   int
}

func (d *discord) hit(r protocols.Route) protocols.RateLimitInfo {
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.total++
	if !r.Exempt {
		d.hits = append(d.hits, now)
		if n := len(d.hits); n > d.global {
			if gap := now.Sub(d.hits[n-1-d.global]); gap < time.Second {
				d.bad = append(d.bad, fmt.Sprintf("%d requests within %v (global %d/s)", d.global+1, gap, d.global))
				return protocols.RateLimitInfo{Status: 429, Scope: protocols.ScopeGlobal, RetryAfter: time.Second - gap}
			}
		}
	}
	if r.Endpoint() != d.bucketPattern {
		return protocols.RateLimitInfo{Status: 200}
	}
	if !now.Before(d.resetAt) {
		d.count, d.resetAt = 0, now.Add(d.window)
	}
	info := protocols.RateLimitInfo{Status: 200, Bucket: "hot", HasLimit: true, Limit: d.limit, ResetAfter: d.resetAt.Sub(now)}
	if d.count >= d.limit {
		d.bad = append(d.bad, fmt.Sprintf("request %d in one window of %d per %v", d.count+1, d.limit, d.window))
		info.Status, info.Scope, info.RetryAfter = 429, protocols.ScopeUser, info.ResetAfter
		return info
	}
	d.count++
	info.Remaining = d.limit - d.count
	return info
}

func (d *discord) violations() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.bad...)
}

func (d *discord) requests() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.total
}

// hammer sends requests through every limiter from workers goroutines
// each until stop closes: route(i) picks the route of the i-th request.
// latency is how long each request takes. It returns how many requests
// were admitted.
func hammer(ctx context.Context, ls []*redis.RateLimiter, workers int, d *discord, latency time.Duration, pick func(i int) protocols.Route) int {
	var (
		wg       sync.WaitGroup
		admitted atomic.Int64
		seq      atomic.Int64
	)
	for _, l := range ls {
		for range workers {
			wg.Go(func() {
				for ctx.Err() == nil {
					r := pick(int(seq.Add(1)))
					p, err := l.Acquire(ctx, r)
					if err != nil {
						continue
					}
					admitted.Add(1)
					info := d.hit(r)
					time.Sleep(latency)
					p.Complete(info)
				}
			})
		}
	}
	wg.Wait()
	return int(admitted.Load())
}

func TestRateLimiterSharedLimits(t *testing.T) {
	s := redistest.Start(t)

	t.Run("Global", func(t *testing.T) {
		const global = 20
		var ls []*redis.RateLimiter
		for range 3 {
			ls = append(ls, newLimiter(t, s.Addr, "global", global, nil, nil))
		}
		d := &discord{global: global}
		ctx, cancel := context.WithTimeout(t.Context(), 2500*time.Millisecond)
		defer cancel()
		n := hammer(ctx, ls, 8, d, 5*time.Millisecond, func(i int) protocols.Route { return guild(t, i) })
		assert.Empty(t, d.violations(), "requests a shared global limit of %d/s should have held back", global)
		// 2.5s at 20/s: the windows start at 0, ~1 and ~2s.
		assert.GreaterOrEqual(t, n, 2*global, "admitted requests")
		t.Logf("3 limiters, 24 workers: %d requests in 2.5s with a global limit of %d/s", n, global)
	})

	t.Run("Bucket", func(t *testing.T) {
		var ls []*redis.RateLimiter
		for range 3 {
			ls = append(ls, newLimiter(t, s.Addr, "bucket", 50, nil, nil))
		}
		r := route(t, "POST", "/channels/{channel_id}/messages", "1")
		d := &discord{global: 50, limit: 3, window: 300 * time.Millisecond, bucketPattern: r.Endpoint()}
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		n := hammer(ctx, ls, 4, d, 5*time.Millisecond, func(int) protocols.Route { return r })
		assert.Empty(t, d.violations(), "requests the shared bucket should have held back")
		// 2s of 3 per 300ms windows, one request in flight at a time.
		assert.GreaterOrEqual(t, n, 10, "admitted requests")
		t.Logf("3 limiters, 12 workers, one bucket of 3 per 300ms: %d requests in 2s", n)
	})
}

func TestRateLimiterCancelWakesOtherProcess(t *testing.T) {
	s := redistest.Start(t)
	for _, pubsub := range []bool{true, false} {
		t.Run(fmt.Sprintf("PubSub=%v", pubsub), func(t *testing.T) {
			ro := &redis.RateLimiterOptions{DisablePubSub: !pubsub}
			ns := fmt.Sprintf("cancel-%v", pubsub)
			a := newLimiter(t, s.Addr, ns, 3, nil, ro)
			b := newLimiter(t, s.Addr, ns, 3, nil, ro)
			var held []protocols.Permit
			for i := range 3 {
				p, err := a.Acquire(t.Context(), guild(t, i))
				require.NoError(t, err)
				held = append(held, p)
			}
			got := make(chan error, 1)
			go func() {
				p, err := b.Acquire(t.Context(), guild(t, 100))
				if err == nil {
					p.Cancel()
				}
				got <- err
			}()
			select {
			case err := <-got:
				t.Fatalf("Acquire on the second limiter returned %v while the first held every global token, want it to wait", err)
			case <-time.After(200 * time.Millisecond):
			}
			start := time.Now()
			held[0].Cancel()
			require.NoError(t, <-got)
			took := time.Since(start)
			// With pub/sub the release wakes the waiter at once; without,
			// the waiter looks again within MaxWait (1s).
			want := 1200 * time.Millisecond
			if pubsub {
				want = 150 * time.Millisecond
			}
			assert.Less(t, took, want, "time from Cancel in one limiter to admission in the other")
			t.Logf("admitted %v after the other process's Cancel", took)
			for _, p := range held[1:] {
				p.Cancel()
			}
		})
	}
}

func TestRateLimiterContextAndClose(t *testing.T) {
	s := redistest.Start(t)
	a := newLimiter(t, s.Addr, "ctx", 1, nil, nil)
	b := newLimiter(t, s.Addr, "ctx", 1, nil, nil)
	p, err := a.Acquire(t.Context(), guild(t, 1))
	require.NoError(t, err)

	t.Run("Cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		_, err := b.Acquire(ctx, guild(t, 2))
		assert.ErrorIs(t, err, context.Canceled)
		assert.Less(t, time.Since(start), 300*time.Millisecond, "Acquire returned after the cancellation")
	})
	t.Run("Deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := b.Acquire(ctx, guild(t, 3))
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Less(t, time.Since(start), 300*time.Millisecond, "Acquire returned after the deadline")
	})
	t.Run("Close", func(t *testing.T) {
		got := make(chan error, 1)
		go func() {
			_, err := b.Acquire(t.Context(), guild(t, 4))
			got <- err
		}()
		time.Sleep(100 * time.Millisecond)
		require.NoError(t, b.Close())
		select {
		case err := <-got:
			assert.ErrorIs(t, err, protocols.ErrClosed)
		case <-time.After(300 * time.Millisecond):
			t.Fatal("Acquire still waiting 300ms after Close")
		}
		_, err := b.Acquire(t.Context(), guild(t, 5))
		assert.ErrorIs(t, err, protocols.ErrClosed)
		assert.NoError(t, b.Close(), "second Close")
	})
	p.Complete(protocols.RateLimitInfo{Status: 200})
}

func TestRateLimiterKeysHaveTTL(t *testing.T) {
	s := redistest.Start(t)
	l := newLimiter(t, s.Addr, "ttl", 50, nil, nil)
	const secret = "sEcReT-webhook-token"
	routes := []protocols.Route{
		route(t, "POST", "/channels/{channel_id}/messages", "1"),
		route(t, "POST", "/webhooks/{webhook_id}/{webhook_token}", "5", secret),
		route(t, "DELETE", "/channels/{channel_id}/messages/{message_id}", "1", "2"),
		route(t, "POST", "/interactions/{interaction_id}/{interaction_token}/callback", "7", secret),
		guild(t, 9),
	}
	infos := []protocols.RateLimitInfo{
		{Status: 200, Bucket: "create", HasLimit: true, Limit: 5, Remaining: 4, ResetAfter: 2 * time.Second},
		{Status: 200, Bucket: "webhook", HasLimit: true, Limit: 5, Remaining: 4, ResetAfter: 2 * time.Second},
		{Status: 429, Bucket: "delete", HasLimit: true, Limit: 5, Remaining: 0, ResetAfter: time.Second, Scope: protocols.ScopeUser, RetryAfter: time.Second},
		{Status: 204},
		{Status: 429, Scope: protocols.ScopeGlobal, RetryAfter: 10 * time.Millisecond},
	}
	for i, r := range routes {
		p, err := l.Acquire(t.Context(), r)
		require.NoError(t, err)
		p.Complete(infos[i])
	}
	// One permit left unfinished: its slot and token keys too.
	open, err := l.Acquire(t.Context(), guild(t, 10))
	require.NoError(t, err)
	defer open.Cancel()

	c := newClient(t, s.Addr)
	var keys []string
	iter := c.Scan(t.Context(), 0, "*", 100).Iterator()
	for iter.Next(t.Context()) {
		keys = append(keys, iter.Val())
	}
	require.NoError(t, iter.Err())
	require.NotEmpty(t, keys)
	for _, k := range keys {
		assert.True(t, strings.HasPrefix(k, "cordkit:{ttl}:rl:"), "key %q outside the namespace", k)
		assert.NotContains(t, k, secret, "a key holds a webhook or interaction token")
		ttl, err := c.PTTL(t.Context(), k).Result()
		require.NoError(t, err)
		assert.Greater(t, ttl, time.Duration(0), "key %q has no TTL (PTTL %v)", k, ttl)
	}
	t.Logf("%d keys, all with a TTL: %v", len(keys), keys)
}

// logCounter counts the records of each message.
type logCounter struct {
	mu   sync.Mutex
	msgs map[string]int
	next slog.Handler
}

func (h *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h *logCounter) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	h.msgs[r.Level.String()+" "+r.Message]++
	h.mu.Unlock()
	if r.Level >= slog.LevelInfo {
		return h.next.Handle(ctx, r)
	}
	return nil
}
func (h *logCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logCounter) WithGroup(string) slog.Handler      { return h }

// count returns how many records at level had a message containing sub.
func (h *logCounter) count(level slog.Level, sub string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for m, c := range h.msgs {
		if strings.HasPrefix(m, level.String()+" ") && strings.Contains(m, sub) {
			n += c
		}
	}
	return n
}

func TestRateLimiterRedisOutage(t *testing.T) {
	s := redistest.Start(t)
	logs := &logCounter{msgs: make(map[string]int), next: slog.NewTextHandler(t.Output(), nil)}
	const global = 20
	ro := &redis.RateLimiterOptions{FallbackShare: 4}
	var ls []*redis.RateLimiter
	for range 2 {
		opts := redis.Options{
			Client: newClient(t, s.Addr), Namespace: "outage", Logger: slog.New(logs),
			Timeout: 100 * time.Millisecond, RateLimiter: ro,
		}
		l, err := opts.NewRateLimiter(protocols.RateLimiterParams{GlobalLimit: global})
		require.NoError(t, err)
		t.Cleanup(func() { _ = l.Close() })
		ls = append(ls, l.(*redis.RateLimiter))
	}
	hot := route(t, "POST", "/channels/{channel_id}/messages", "1")
	d := &discord{global: global, limit: 4, window: 500 * time.Millisecond, bucketPattern: hot.Endpoint()}
	pick := func(i int) protocols.Route {
		if i%3 == 0 {
			return hot
		}
		return guild(t, i)
	}
	run := func(d time.Duration) func(*discord) int {
		return func(sim *discord) int {
			ctx, cancel := context.WithTimeout(t.Context(), d)
			defer cancel()
			return hammer(ctx, ls, 4, sim, 5*time.Millisecond, pick)
		}
	}

	shared := run(1200 * time.Millisecond)(d)
	for _, l := range ls {
		require.True(t, l.Status().Shared, "status before the outage")
	}

	s.Stop()
	outage := run(2 * time.Second)(d)
	for _, l := range ls {
		st := l.Status()
		assert.False(t, st.Shared, "status during the outage")
		assert.ErrorIs(t, st.Err, redis.ErrRateLimiterUnavailable)
		var re *redis.RateLimiterError
		assert.ErrorAs(t, st.Err, &re)
	}
	assert.Equal(t, 2, logs.count(slog.LevelWarn, "falling back"), "warnings: one per limiter")
	// Fallback: each limiter allows itself global/4 per second.
	assert.Positive(t, outage, "requests admitted during the outage")
	assert.LessOrEqual(t, outage, 2*(2*global/4+1)+2, "requests admitted in 2s of outage by two limiters at a quarter of %d/s", global)

	require.NoError(t, s.Restart())
	deadline := time.Now().Add(15 * time.Second)
	after := 0
	for {
		after += run(500 * time.Millisecond)(d)
		if ls[0].Status().Shared && ls[1].Status().Shared {
			break
		}
		require.True(t, time.Now().Before(deadline), "limiters not back to shared limits 15s after Redis restarted")
	}
	after += run(1500 * time.Millisecond)(d)
	assert.Equal(t, 2, logs.count(slog.LevelInfo, "redis is back"), "infos: one per limiter")
	assert.Equal(t, 2, logs.count(slog.LevelWarn, "falling back"), "warnings after the restart")
	assert.Equal(t, 1, logs.count(slog.LevelInfo, "had no state"), "quarantine notices")
	assert.Empty(t, d.violations(), "requests Discord would have refused, over the whole run")
	t.Logf("admitted %d before, %d during, %d after the outage; Discord saw %d", shared, outage, after, d.requests())
}

func TestRateLimiterOptionsErrors(t *testing.T) {
	_, err := redis.Options{Namespace: "x"}.NewRateLimiter(protocols.RateLimiterParams{})
	assert.True(t, errors.Is(err, redis.ErrNoClient), "got %v", err)
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	_, err = redis.Options{Client: c}.NewRateLimiter(protocols.RateLimiterParams{})
	assert.True(t, errors.Is(err, redis.ErrNoNamespace), "got %v", err)
}
