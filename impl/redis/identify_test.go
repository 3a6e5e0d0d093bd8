package redis_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cordkit/cordkit/impl/redis"
	"github.com/cordkit/cordkit/internal/redistest"
	"github.com/cordkit/cordkit/protocols"
)

// slot is the spacing of grants in one bucket, with the limiter's
// smallest margin; in a bubble replies take no time, so it stays there.
const slot = redis.IdentifyInterval + 10*time.Millisecond

// startAgedRedis starts a redis-server and waits until it has been up for
// seven seconds: the limiter quarantines a new namespace on a Redis younger
// than one identify slot (uptime has a one-second resolution), since it
// cannot tell it from a restarted one.
func startAgedRedis(t *testing.T) *redistest.Server {
	t.Helper()
	s := redistest.Start(t)
	c := goredis.NewClient(&goredis.Options{Addr: s.Addr})
	defer c.Close()
	for {
		info, err := c.Info(t.Context(), "server").Result()
		require.NoError(t, err)
		up := 0
		for line := range strings.Lines(info) {
			if v, ok := strings.CutPrefix(line, "uptime_in_seconds:"); ok {
				up, err = strconv.Atoi(strings.TrimSpace(v))
				require.NoError(t, err)
			}
		}
		if up >= 7 {
			return s
		}
		time.Sleep(time.Duration(7-up) * time.Second)
	}
}

// processes returns n limiters on separate clients sharing namespace ns,
// as n processes would.
func processes(t *testing.T, addr, ns string, n int, p protocols.IdentifyLimiterParams) []protocols.IdentifyLimiter {
	t.Helper()
	ls := make([]protocols.IdentifyLimiter, n)
	for i := range ls {
		l, err := bubbleOptions(t, addr, ns).NewIdentifyLimiter(p)
		require.NoError(t, err)
		ls[i] = l
	}
	return ls
}

// grantLog records identifies: shard, bucket, process and time.
type grantLog struct {
	mu     sync.Mutex
	grants []grant
}

type grant struct {
	shard, bucket, process, order int
	at                            time.Time
}

func (g *grantLog) add(gr grant) {
	g.mu.Lock()
	g.grants = append(g.grants, gr)
	g.mu.Unlock()
}

// checkSpacing fails t when two identifies of one bucket are less than
// IdentifyInterval apart.
func (g *grantLog) checkSpacing(t *testing.T) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	last := map[int]grant{}
	sorted := slices.SortedStableFunc(slices.Values(g.grants), func(a, b grant) int { return a.at.Compare(b.at) })
	for _, gr := range sorted {
		if prev, ok := last[gr.bucket]; ok && gr.at.Sub(prev.at) < redis.IdentifyInterval {
			t.Errorf("bucket %d: shard %d (process %d) and shard %d (process %d) identified %v apart; want at least %v",
				gr.bucket, prev.shard, prev.process, gr.shard, gr.process, gr.at.Sub(prev.at), redis.IdentifyInterval)
		}
		last[gr.bucket] = gr
	}
}

// TestIdentifyLimiterAcrossProcesses runs limiters on separate clients,
// as separate processes would, against one Redis, inside synctest
// bubbles (Options.Now is the fake clock).
func TestIdentifyLimiterAcrossProcesses(t *testing.T) {
	s := startAgedRedis(t)

	t.Run("ConcurrentSafeRaceForBuckets", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			// 3 processes of 8 shards in 4 buckets each identify every
			// shard twice: 12 identifies per bucket, 11 slots apart.
			const procs, shardsPer, mc = 3, 8, 4
			ls := processes(t, s.Addr, "race", procs, protocols.IdentifyLimiterParams{MaxConcurrency: mc})
			var log grantLog
			var wg sync.WaitGroup
			begin := time.Now()
			for p := range procs {
				for i := range shardsPer {
					shard := p*shardsPer + i
					wg.Go(func() {
						for range 2 {
							if err := ls[p].Wait(t.Context(), shard); err != nil {
								t.Errorf("process %d: Wait(%d): %v", p, shard, err)
								return
							}
							log.add(grant{shard: shard, bucket: shard % mc, process: p, at: time.Now()})
						}
					})
				}
			}
			wg.Wait()
			log.checkSpacing(t)
			assert.Len(t, log.grants, 2*procs*shardsPer)
			if took, want := time.Since(begin), 11*slot; took > want+100*time.Millisecond {
				t.Errorf("48 identifies in 4 buckets took %v, want %v", took, want)
			}
		})
	})

	t.Run("ServeInArrivalOrder", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ls := processes(t, s.Addr, "fifo", 3, protocols.IdentifyLimiterParams{MaxConcurrency: 2})
			begin := time.Now()
			require.NoError(t, ls[0].Wait(t.Context(), 0))
			// Nine shards of bucket 0 arrive one after another, from
			// processes 1, 2, 0, 1, 2, 0...; each is queued (durably
			// asleep) before the next arrives.
			var log grantLog
			var wg sync.WaitGroup
			const waiters = 9
			for i := range waiters {
				p, shard := (i+1)%3, 2*(i+1)
				wg.Go(func() {
					if err := ls[p].Wait(t.Context(), shard); err != nil {
						t.Errorf("process %d: Wait(%d): %v", p, shard, err)
						return
					}
					log.add(grant{shard: shard, bucket: 0, process: p, order: i, at: time.Now()})
				})
				synctest.Wait()
			}
			// Bucket 1 is free meanwhile.
			at := time.Now()
			require.NoError(t, ls[2].Wait(t.Context(), 1))
			assert.Equal(t, at, time.Now(), "bucket 1 is free: shard 1 identifies at once")
			wg.Wait()
			log.checkSpacing(t)
			require.Len(t, log.grants, waiters)
			for i, gr := range log.grants {
				assert.Equal(t, i, gr.order, "grant %d went to arrival %d (shard %d, process %d), want arrival order", i, gr.order, gr.shard, gr.process)
				want := begin.Add(time.Duration(i+1) * slot)
				assert.WithinDuration(t, want, gr.at, 0, "arrival %d identified at +%v, want +%v", i, gr.at.Sub(begin), want.Sub(begin))
			}
		})
	})

	t.Run("CancelledWaiterOfAnotherProcess", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ls := processes(t, s.Addr, "cancel", 2, protocols.IdentifyLimiterParams{MaxConcurrency: 1})
			begin := time.Now()
			require.NoError(t, ls[0].Wait(t.Context(), 0))
			ctx, cancel := context.WithCancel(t.Context())
			gaveUp := make(chan error, 1)
			go func() { gaveUp <- ls[0].Wait(ctx, 1) }()
			synctest.Wait()
			next := make(chan time.Time, 1)
			go func() {
				if err := ls[1].Wait(t.Context(), 2); err != nil {
					t.Errorf("process 1: Wait(2): %v", err)
				}
				next <- time.Now()
			}()
			synctest.Wait()
			time.Sleep(time.Second)
			cancel()
			assert.ErrorIs(t, <-gaveUp, context.Canceled)
			assert.Equal(t, begin.Add(slot), <-next, "the waiter behind one that gave up, in another process, takes its turn")
		})
	})

	t.Run("CrashedProcessTicketExpires", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			o := bubbleOptions(t, s.Addr, "crash")
			l, err := o.NewIdentifyLimiter(protocols.IdentifyLimiterParams{MaxConcurrency: 1})
			require.NoError(t, err)
			begin := time.Now()
			require.NoError(t, l.Wait(t.Context(), 0))
			// A process queued a ticket and died: it is never renewed.
			now := time.Now().UnixMilli()
			queue, leases := "cordkit:{crash}:identify:bucket:0:queue", "cordkit:{crash}:identify:bucket:0:leases"
			require.NoError(t, o.Client.ZAdd(t.Context(), queue, goredis.Z{Score: 0, Member: "ghost"}).Err())
			require.NoError(t, o.Client.ZAdd(t.Context(), leases, goredis.Z{Score: float64(now + redis.TicketLease.Milliseconds()), Member: "ghost"}).Err())
			require.NoError(t, l.Wait(t.Context(), 1))
			assert.Equal(t, begin.Add(redis.TicketLease), time.Now(), "the dead ticket's lease ends the wait behind it")
		})
	})

	t.Run("SharedBudget", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			const resetAfter = time.Minute
			budget := func(remaining int) protocols.IdentifyLimiterParams {
				return protocols.IdentifyLimiterParams{MaxConcurrency: 4, SessionStartLimit: protocols.SessionStartLimit{
					Total: 1000, Remaining: remaining, ResetAfter: resetAfter.Milliseconds(), MaxConcurrency: 4}}
			}
			begin := time.Now()
			// The first process seeds 3; the others' (staler) 500 is ignored.
			first, err := bubbleOptions(t, s.Addr, "budget").NewIdentifyLimiter(budget(3))
			require.NoError(t, err)
			require.NoError(t, first.Wait(t.Context(), 0))
			ls := processes(t, s.Addr, "budget", 2, budget(500))
			require.NoError(t, ls[0].Wait(t.Context(), 1))
			require.NoError(t, ls[1].Wait(t.Context(), 2))
			assert.Equal(t, begin, time.Now(), "three identifies in three buckets at once")

			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			err = ls[1].Wait(ctx, 3)
			assert.ErrorIs(t, err, protocols.ErrSessionStartLimit, "budget spent by other processes until +1m, deadline +10s")
			assert.Equal(t, begin, time.Now(), "the error comes at once")

			require.NoError(t, ls[0].Wait(t.Context(), 3))
			assert.Equal(t, begin.Add(resetAfter), time.Now(), "the fourth identify waits for the reset")
		})
	})

	t.Run("KeysHaveTTL", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			o := bubbleOptions(t, s.Addr, "ttl")
			l, err := o.NewIdentifyLimiter(protocols.IdentifyLimiterParams{MaxConcurrency: 2, SessionStartLimit: protocols.SessionStartLimit{
				Total: 1000, Remaining: 10, ResetAfter: time.Hour.Milliseconds(), MaxConcurrency: 2}})
			require.NoError(t, err)
			require.NoError(t, l.Wait(t.Context(), 0))
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{})
			go func() { _ = l.Wait(ctx, 2); close(done) }() // queued
			synctest.Wait()
			keys := scanTTLs(t, o.Client, "cordkit:{ttl}:*")
			for _, part := range []string{"epoch", "budget", "seq", "bucket:0:queue", "bucket:0:leases", "bucket:0:next", "ticket:"} {
				assert.True(t, slices.ContainsFunc(keys, func(k string) bool { return strings.Contains(k, ":identify:"+part) }),
					"no key with %q among %v", part, keys)
			}
			cancel()
			<-done
			scanTTLs(t, o.Client, "cordkit:{ttl}:*")
		})
	})
}

// scanTTLs returns the keys matching pattern and fails t for each without
// a TTL.
func scanTTLs(t *testing.T, c goredis.UniversalClient, pattern string) []string {
	t.Helper()
	var keys []string
	iter := c.Scan(t.Context(), 0, pattern, 100).Iterator()
	for iter.Next(t.Context()) {
		k := iter.Val()
		keys = append(keys, k)
		ttl, err := c.PTTL(t.Context(), k).Result()
		require.NoError(t, err)
		if ttl <= 0 {
			t.Errorf("key %s has no TTL (PTTL %v)", k, ttl)
		}
	}
	require.NoError(t, iter.Err())
	require.NotEmpty(t, keys)
	return keys
}

// TestIdentifyLimiterRedisRestart kills Redis mid-run and restarts it
// empty. The kill and the restart happen outside the bubble, on request:
// the bubble's clock stands still meanwhile.
func TestIdentifyLimiterRedisRestart(t *testing.T) {
	s := redistest.Start(t)
	requests, replies := make(chan string), make(chan error)
	go func() {
		for r := range requests {
			switch r {
			case "stop":
				s.Stop()
				replies <- nil
			case "restart":
				replies <- s.Restart()
			}
		}
	}()
	defer close(requests)
	do := func(r string) error { requests <- r; return <-replies }

	synctest.Test(t, func(t *testing.T) {
		p := protocols.IdentifyLimiterParams{MaxConcurrency: 2}
		ls := processes(t, s.Addr, "restart", 2, p)
		begin := time.Now()
		// Redis started a moment ago: grants made just before its start
		// would be forgotten, so even a new namespace waits a slot.
		require.NoError(t, ls[0].Wait(t.Context(), 0))
		assert.Equal(t, begin.Add(slot), time.Now(), "first grant on a Redis younger than a slot")
		granted := time.Now()

		require.NoError(t, do("stop"))
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		err := ls[1].Wait(ctx, 1) // a free bucket, but Redis is away
		require.Error(t, err, "Wait granted while Redis was down")
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.NotErrorIs(t, err, context.Canceled)
		var unavailable *redis.UnavailableError
		if assert.ErrorAs(t, err, &unavailable) {
			assert.Error(t, unavailable.Cause)
			t.Logf("while Redis was down: %v", err)
		}
		assert.Equal(t, granted.Add(2*time.Second), time.Now(), "Wait returned at its deadline, without trying to leave")

		// A waiter still retrying when Redis comes back empty.
		waiting := make(chan time.Time, 1)
		go func() {
			if err := ls[1].Wait(t.Context(), 3); err != nil {
				t.Errorf("Wait(3) across the restart: %v", err)
			}
			waiting <- time.Now()
		}()
		time.Sleep(time.Second)
		synctest.Wait()
		require.NoError(t, do("restart"))
		restarted := time.Now()

		// Process 0 knew the old epoch: every bucket is quarantined for a
		// full slot, though bucket 0's spacing key is gone.
		require.NoError(t, ls[0].Wait(t.Context(), 2))
		at := time.Now()
		assert.GreaterOrEqual(t, at.Sub(restarted), redis.IdentifyInterval, "bucket 0 granted %v after the restart", at.Sub(restarted))
		assert.GreaterOrEqual(t, at.Sub(granted), redis.IdentifyInterval)
		w := <-waiting
		assert.GreaterOrEqual(t, w.Sub(restarted), redis.IdentifyInterval, "bucket 1 granted %v after the restart", w.Sub(restarted))

		// A new process shares the spacing.
		fresh := processes(t, s.Addr, "restart", 1, p)[0]
		require.NoError(t, fresh.Wait(t.Context(), 1))
		assert.GreaterOrEqual(t, time.Since(w), redis.IdentifyInterval)
	})
}

// ExampleOptions_NewIdentifyLimiter shares Discord's identify limits
// between processes through one Redis.
func ExampleOptions_NewIdentifyLimiter() {
	client := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close()
	o := redis.Options{Client: client, Namespace: "123456789012345678"} // the application id
	limiter, err := o.NewIdentifyLimiter(protocols.IdentifyLimiterParams{
		MaxConcurrency: 16, // from /gateway/bot
		SessionStartLimit: protocols.SessionStartLimit{
			Total: 1000, Remaining: 997, ResetAfter: 52163871, MaxConcurrency: 16,
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := limiter.Wait(ctx, 3); err != nil {
		var unavailable *redis.UnavailableError
		switch {
		case errors.Is(err, protocols.ErrSessionStartLimit):
			fmt.Println("the daily budget is spent")
		case errors.As(err, &unavailable):
			fmt.Println("Redis is unavailable:", unavailable.Cause)
		}
		return
	}
	// Send IDENTIFY for shard 3.
}
