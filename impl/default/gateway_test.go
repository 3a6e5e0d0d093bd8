package reference_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
	reference "github.com/cordkit/cordkit/impl/default"
	"github.com/cordkit/cordkit/protocols"
)

// gatewayParams returns gateway parameters that reach the mock in memory
// and ask it /gateway/bot for what is not set.
func (e *gwEnv) gatewayParams() protocols.GatewayParams {
	e.t.Helper()
	l, err := reference.NewRateLimiter(protocols.RateLimiterParams{})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = l.Close() })
	c, err := reference.NewHTTPClient(protocols.HTTPClientParams{
		Token: protocols.BotToken(mockdiscord.DefaultToken), BaseURL: e.srv.APIBase(), Doer: e.srv.Client(), RateLimiter: l,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = c.Close() })
	sp := e.params(0, 1)
	sp.URL, sp.KeepAlive, sp.SendLimiter, sp.IdentifyLimiter = "", nil, nil, nil
	return protocols.GatewayParams{Shard: sp, HTTPClient: c}
}

// newGateway builds a gateway or fails the test; Close is a cleanup.
func (e *gwEnv) newGateway(p protocols.GatewayParams, o reference.GatewayOptions) protocols.Gateway {
	e.t.Helper()
	g, err := o.New(p)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = g.Close() })
	return g
}

// guildCreates counts the GUILD_CREATE events per guild ID.
func guildCreates(t *testing.T, r *recorder) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, ev := range r.all() {
		if ev.Name != "GUILD_CREATE" {
			continue
		}
		var g struct{ ID string }
		if err := json.Unmarshal(ev.Data, &g); err != nil {
			t.Fatal(err)
		}
		out[g.ID]++
	}
	return out
}

// eachGuildOnce checks that every guild of the mock arrived want times.
func eachGuildOnce(t *testing.T, srv *mockdiscord.Server, got map[string]int, want int) {
	t.Helper()
	guilds := srv.Guilds()
	if len(got) != len(guilds) {
		t.Errorf("GUILD_CREATE for %d guilds, want %d", len(got), len(guilds))
	}
	for _, id := range guilds {
		if got[id] != want {
			t.Errorf("guild %s: %d GUILD_CREATE, want %d", id, got[id], want)
		}
	}
}

// TestGatewayConnectIdentifySpacing: 16 shards with max_concurrency 4
// from /gateway/bot identify four at a time (one per bucket), each bucket
// once per 5 s, and Connect returns when all are ready.
func TestGatewayConnectIdentifySpacing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		e := newGwEnv(t, &mockdiscord.Options{Shards: 16, MaxConcurrency: 4, Guilds: 20})
		evs := record(t, e.events, "GUILD_CREATE")
		g := e.newGateway(e.gatewayParams(), reference.GatewayOptions{})
		if err := g.Connect(t.Context()); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 15*time.Second {
			t.Errorf("Connect took %v, want 15s (4 rounds of 4 buckets)", d)
		}
		ids := observations(e.srv, mockdiscord.ObserveIdentify)
		if len(ids) != 16 {
			t.Fatalf("%d identifies, want 16", len(ids))
		}
		last := map[int]time.Time{}
		atStart := 0
		for _, o := range ids {
			if !o.Accepted || o.ShardCount != 16 {
				t.Errorf("identify %+v, want accepted with 16 shards", o)
			}
			if prev, ok := last[o.Bucket]; ok && o.Time.Sub(prev) < reference.IdentifyInterval {
				t.Errorf("bucket %d identified %v after the previous one", o.Bucket, o.Time.Sub(prev))
			}
			last[o.Bucket] = o.Time
			if o.Time.Equal(start) {
				atStart++
			}
		}
		if atStart != 4 {
			t.Errorf("%d identifies at once, want 4 (one per bucket)", atStart)
		}
		for id := range 16 {
			sh := g.Shard(id)
			if sh == nil {
				t.Fatalf("Shard(%d) = nil", id)
			}
			if st := sh.Status(); !st.Ready || st.ID != id || st.Count != 16 {
				t.Errorf("Shard(%d).Status() = %+v", id, st)
			}
		}
		if g.Shard(16) != nil {
			t.Errorf("Shard(16) is not nil")
		}
		synctest.Wait()
		eachGuildOnce(t, e.srv, guildCreates(t, evs), 1)

		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
		if err := g.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if n := len(e.srv.Sessions()); n != 0 {
			t.Errorf("%d sessions alive after Close, want 0 (closed with 1000)", n)
		}
		if err := g.Connect(t.Context()); !errors.Is(err, protocols.ErrClosed) {
			t.Errorf("Connect after Close: %v, want ErrClosed", err)
		}
		noViolations(t, e.srv)
	})
}

// shardingViolationsOnly fails t for mock violations other than 4011.
func shardingViolationsOnly(t *testing.T, srv *mockdiscord.Server) {
	t.Helper()
	for _, v := range srv.GatewayViolations() {
		if !strings.Contains(v, "(close 4011)") {
			t.Errorf("mock violation: %s", v)
		}
	}
}

// TestGatewayShardingRequired: a 4011 with an automatic shard count
// rescales (twice the count when /gateway/bot recommends no more) until
// every guild is covered exactly once, without reconnecting the refused
// shards; with a configured count Connect returns the typed error.
func TestGatewayShardingRequired(t *testing.T) {
	t.Run("Automatic", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newGwEnv(t, &mockdiscord.Options{Guilds: 5, MaxGuildsPerShard: 2, Shards: 1})
			evs := record(t, e.events, "GUILD_CREATE")
			g := e.newGateway(e.gatewayParams(), reference.GatewayOptions{})
			if err := g.Connect(t.Context()); err != nil {
				t.Fatal(err)
			}
			if st := g.Shard(0).Status(); st.Count != 4 {
				t.Errorf("shard count %d, want 4 (1, then 2, then 4)", st.Count)
			}
			synctest.Wait()
			// With 2 shards, shard 0 (3 guilds) is refused before shard 1
			// identifies, so each guild arrives once, from the set of 4.
			eachGuildOnce(t, e.srv, guildCreates(t, evs), 1)
			sessions := e.srv.Sessions()
			for _, id := range e.srv.Guilds() {
				n := 0
				for _, s := range sessions {
					if s.ShardCount == 4 && mockdiscord.ShardOf(id, 4) == s.Shard {
						n++
					}
				}
				if n != 1 {
					t.Errorf("guild %s is covered by %d live sessions, want 1", id, n)
				}
			}
			// 1 + 1 + 4 identifies: nothing refused was retried, and the
			// second set stopped at its first shard, before shard 1
			// identified (its connection may already be open: shards wait
			// for their identify turn after HELLO).
			if n := len(observations(e.srv, mockdiscord.ObserveIdentify)); n != 6 {
				t.Errorf("%d identifies, want 6", n)
			}
			shardingViolationsOnly(t, e.srv)
		})
	})
	t.Run("AfterConnect", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newGwEnv(t, &mockdiscord.Options{Guilds: 4, MaxGuildsPerShard: 2, Shards: 2})
			evs := record(t, e.events, "GUILD_CREATE")
			g := e.newGateway(e.gatewayParams(), reference.GatewayOptions{})
			if err := g.Connect(t.Context()); err != nil {
				t.Fatal(err)
			}
			// Connect returns at READY; let the first set's GUILD_CREATEs,
			// sent after READY, arrive before shard 1 is closed.
			synctest.Wait()
			inject(t, e.srv, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultClose, Shard: 1, Code: 4011})
			for i := 0; i < 60 && (g.Shard(3) == nil || !g.Shard(3).Status().Ready); i++ {
				time.Sleep(time.Second)
			}
			if sh := g.Shard(3); sh == nil || !sh.Status().Ready || sh.Status().Count != 4 {
				t.Fatalf("no ready shard 3 of 4 after the 4011")
			}
			synctest.Wait()
			// Each guild once from the first set, once from the second.
			eachGuildOnce(t, e.srv, guildCreates(t, evs), 2)
			if n := len(e.srv.Sessions()); n != 4 {
				t.Errorf("%d live sessions, want the 4 new ones", n)
			}
		})
	})
	t.Run("Pinned", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newGwEnv(t, &mockdiscord.Options{Guilds: 5, MaxGuildsPerShard: 2})
			p := e.gatewayParams()
			p.ShardCount = 2
			g := e.newGateway(p, reference.GatewayOptions{})
			err := g.Connect(t.Context())
			if !errors.Is(err, protocols.ErrShardingRequired) || protocols.CloseStatus(err) != protocols.CloseShardingRequired {
				t.Fatalf("Connect: %v, want ErrShardingRequired", err)
			}
			time.Sleep(time.Minute)
			if n := len(observations(e.srv, mockdiscord.ObserveConnect)); n > 2 {
				t.Errorf("%d connections, want at most one per shard", n)
			}
			if g.Shard(0) != nil {
				t.Errorf("Shard(0) after a failed Connect is not nil")
			}
		})
	})
}

// TestGatewayRescale brings a new set up, then closes the old one with
// 1000; events reach the dispatchers from both sets while they overlap.
func TestGatewayRescale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newGwEnv(t, &mockdiscord.Options{Guilds: 4})
		evs := record(t, e.events, protocols.AnyEvent)
		p := e.gatewayParams()
		p.ShardCount = 2
		g := e.newGateway(p, reference.GatewayOptions{})
		if err := g.Connect(t.Context()); err != nil {
			t.Fatal(err)
		}
		guild := e.srv.Guilds()[0]
		rescaled := make(chan error, 1)
		go func() { rescaled <- g.Rescale(t.Context(), 4, nil) }()
		// The old shards identified at 0 and 5 s; the new shard 0 does at
		// 10 s, and shards 1-3 wait their turn.
		time.Sleep(6 * time.Second)
		if _, err := e.srv.Dispatch(guild, "TEST_EVENT", map[string]int{"n": 1}); err != nil {
			t.Fatal(err)
		}
		if err := <-rescaled; err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if n := len(evs.all()) - len(slices.DeleteFunc(evs.all(), func(ev protocols.Event) bool { return ev.Name == "TEST_EVENT" })); n != 2 {
			t.Errorf("TEST_EVENT delivered %d times during the overlap, want 2 (once per set, as documented)", n)
		}
		for id := range 4 {
			if sh := g.Shard(id); sh == nil || sh.Status().Count != 4 || !sh.Status().Ready {
				t.Errorf("Shard(%d) is not a ready shard of 4", id)
			}
		}
		closes := clientCloses(e.srv)
		if len(closes) != 2 || closes[0].Code != 1000 || closes[1].Code != 1000 {
			t.Errorf("client closes %+v, want the 2 old shards with 1000", closes)
		}
		time.Sleep(time.Minute)
		if n := len(observations(e.srv, mockdiscord.ObserveConnect)); n != 6 {
			t.Errorf("%d connections, want 6: the old shards must not reconnect", n)
		}
		for id := range 4 {
			s, err := e.sessions.Load(t.Context(), id, 4)
			if err != nil || s.ID != g.Shard(id).Status().Session.ID {
				t.Errorf("stored session of %d/4: %+v, %v", id, s, err)
			}
		}
		for id := range 2 {
			if _, err := e.sessions.Load(t.Context(), id, 2); !errors.Is(err, protocols.ErrNoSession) {
				t.Errorf("stored session of old shard %d/2: %v, want none", id, err)
			}
		}
		noViolations(t, e.srv)
	})
}

// TestGatewayRescaleSameCount starts new sessions (it does not resume the
// old ones), and the old shards' close does not delete the new sessions
// stored under the same (ID, count).
func TestGatewayRescaleSameCount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newGwEnv(t, &mockdiscord.Options{})
		p := e.gatewayParams()
		p.ShardCount = 2
		g := e.newGateway(p, reference.GatewayOptions{})
		if err := g.Connect(t.Context()); err != nil {
			t.Fatal(err)
		}
		old := g.Shard(1).Status().Session.ID
		if err := g.Rescale(t.Context(), 2, nil); err != nil {
			t.Fatal(err)
		}
		if n := len(observations(e.srv, mockdiscord.ObserveResume)); n != 0 {
			t.Errorf("%d resumes, want new sessions", n)
		}
		s, err := e.sessions.Load(t.Context(), 1, 2)
		if err != nil || s.ID == old || s.ID != g.Shard(1).Status().Session.ID {
			t.Errorf("stored session of 1/2: %+v, %v; want the new one", s, err)
		}
		noViolations(t, e.srv)
	})
}

// TestGatewayConnectFatal: a fatal close during Connect closes the other
// shards and returns the typed error, with no reconnect.
func TestGatewayConnectFatal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newGwEnv(t, &mockdiscord.Options{AllowedPrivilegedIntents: mockdiscord.NoPrivilegedIntents})
		p := e.gatewayParams()
		p.ShardCount, p.MaxConcurrency, p.Shard.URL = 4, 1, e.srv.GatewayURL()
		p.HTTPClient = nil // everything is configured
		p.Shard.Intents |= protocols.IntentGuildPresences
		g := e.newGateway(p, reference.GatewayOptions{})
		err := g.Connect(t.Context())
		if !errors.Is(err, protocols.ErrDisallowedIntents) {
			t.Fatalf("Connect: %v, want ErrDisallowedIntents", err)
		}
		time.Sleep(time.Minute)
		if n := len(observations(e.srv, mockdiscord.ObserveIdentify)); n != 1 {
			t.Errorf("%d identifies, want 1: the first refusal stops the rest", n)
		}
	})
}

// TestGatewayConnectCanceled: when Connect's ctx ends before the shards
// are ready, it closes them without ending their sessions and returns the
// ctx error; a later Connect resumes the sessions instead of identifying
// again.
func TestGatewayConnectCanceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newGwEnv(t, &mockdiscord.Options{Shards: 4})
		g := e.newGateway(e.gatewayParams(), reference.GatewayOptions{})
		ctx, cancel := context.WithTimeout(t.Context(), 7*time.Second)
		defer cancel()
		if err := g.Connect(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Connect: %v, want DeadlineExceeded", err)
		}
		// 4 shards, one identify bucket: two identified within 7 s.
		if n := len(e.srv.Sessions()); n != 2 {
			t.Errorf("%d sessions alive, want the 2 that identified, kept resumable", n)
		}
		if g.Shard(0) != nil {
			t.Errorf("Shard(0) is not nil")
		}
		identifies := len(observations(e.srv, mockdiscord.ObserveIdentify))
		// A later Connect works and resumes those two.
		if err := g.Connect(t.Context()); err != nil {
			t.Fatal(err)
		}
		if n := len(observations(e.srv, mockdiscord.ObserveIdentify)) - identifies; n != 2 {
			t.Errorf("the second Connect identified %d shards, want 2 (the other 2 resume)", n)
		}
		if n := len(observations(e.srv, mockdiscord.ObserveResume)); n != 2 {
			t.Errorf("%d resumes, want 2", n)
		}
		noViolations(t, e.srv) // the identify spacing held across both Connects
	})
}

// TestGatewayOnShardExit reports a shard that stops by itself after
// Connect.
func TestGatewayOnShardExit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newGwEnv(t, &mockdiscord.Options{Shards: 2})
		var (
			mu     sync.Mutex
			exited = map[int]error{}
		)
		g := e.newGateway(e.gatewayParams(), reference.GatewayOptions{OnShardExit: func(id int, err error) {
			mu.Lock()
			exited[id] = err
			mu.Unlock()
		}})
		if err := g.Connect(t.Context()); err != nil {
			t.Fatal(err)
		}
		inject(t, e.srv, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultClose, Shard: 1, Code: 4004})
		time.Sleep(time.Second)
		mu.Lock()
		defer mu.Unlock()
		if len(exited) != 1 || !errors.Is(exited[1], protocols.ErrInvalidToken) {
			t.Errorf("exits %v, want shard 1 with ErrInvalidToken", exited)
		}
		if !g.Shard(0).Status().Ready {
			t.Errorf("shard 0 is not ready")
		}
	})
}

// TestGatewayRestartResumes: a gateway closed with a resumable code leaves
// its sessions in the file; the next process's gateway resumes every
// shard, without identifying.
func TestGatewayRestartResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "sessions.json")
		e := newGwEnv(t, &mockdiscord.Options{Shards: 3, Guilds: 3})
		start := func() protocols.Gateway {
			store, err := reference.NewFileSessionStore(path)
			if err != nil {
				t.Fatal(err)
			}
			p := e.gatewayParams()
			p.Shard.Sessions = store
			g := e.newGateway(p, reference.GatewayOptions{CloseCode: reference.ReconnectCloseCode})
			if err := g.Connect(t.Context()); err != nil {
				t.Fatal(err)
			}
			return g
		}
		g := start()
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
		identifies := len(observations(e.srv, mockdiscord.ObserveIdentify))
		begin := time.Now()
		start()
		if d := time.Since(begin); d > time.Second {
			t.Errorf("resuming 3 shards took %v; resumes do not wait for the identify limiter", d)
		}
		if n := len(observations(e.srv, mockdiscord.ObserveIdentify)); n != identifies {
			t.Errorf("%d identifies after the restart, want none", n-identifies)
		}
		resumes := observations(e.srv, mockdiscord.ObserveResume)
		if len(resumes) != 3 {
			t.Errorf("%d resumes, want 3", len(resumes))
		}
		for _, r := range resumes {
			if !r.Accepted {
				t.Errorf("resume %+v refused", r)
			}
		}
		noViolations(t, e.srv)
	})
}

// TestGatewayRescaleFailureKeepsRunningSet: when the new set does not come
// up (here Rescale's ctx ends first), it is closed and the running set,
// and its stored sessions, are untouched, even with the same shard count.
func TestGatewayRescaleFailureKeepsRunningSet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newGwEnv(t, &mockdiscord.Options{})
		p := e.gatewayParams()
		p.ShardCount = 2
		g := e.newGateway(p, reference.GatewayOptions{})
		if err := g.Connect(t.Context()); err != nil {
			t.Fatal(err)
		}
		before := []string{g.Shard(0).Status().Session.ID, g.Shard(1).Status().Session.ID}
		// The new shard 0 identifies at 10 s, shard 1 would at 15 s.
		ctx, cancel := context.WithTimeout(t.Context(), 7*time.Second)
		defer cancel()
		if err := g.Rescale(ctx, 2, nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Rescale: %v, want DeadlineExceeded", err)
		}
		for id := range 2 {
			st := g.Shard(id).Status()
			if !st.Ready || st.Session.ID != before[id] {
				t.Errorf("shard %d: %+v, want the running session %s", id, st, before[id])
			}
			s, err := e.sessions.Load(t.Context(), id, 2)
			if err != nil || s.ID != before[id] {
				t.Errorf("stored session of %d/2: %+v, %v; want %s", id, s, err, before[id])
			}
		}
		if n := len(e.srv.Sessions()); n != 2 {
			t.Errorf("%d live sessions, want the 2 running ones", n)
		}
		noViolations(t, e.srv)
	})
}
