package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
	"github.com/cordkit/cordkit/protocols"
)

// Rule sentences of the Gateway suite, quoted from package protocols.
const (
	ruleGwConnect      = "Connect starts every shard and returns once all are ready, or with the first fatal error."
	ruleGwShardCount   = "ShardCount is the total shard count; 0 asks /gateway/bot."
	ruleGwShardIDs     = "ShardIDs is the subset of shards to run; nil runs all."
	ruleGwRescale      = "Rescale brings up count shards (ids, or all of 0..count-1 when nil) and closes the old ones once the new ones are ready."
	ruleGwClose        = "Close closes every shard and ends every goroutine."
	ruleGwCancellation = "Cancellation always satisfies errors.Is with the context's error."

	// Pending in package protocols (see pendingRules).
	ruleGwRescale4011 = "When a shard is closed with 4011 and ShardCount is 0, the gateway rescales to a count that covers every guild, without reconnecting the refused shard."
	ruleGwPinned4011  = "With ShardCount set, a 4011 is the fatal error Connect returns."
)

// connectTimeout bounds, in bubble time, a Connect the suite expects to
// succeed.
const connectTimeout = 5 * time.Minute

// TestGateway tests a [protocols.Gateway] implementation (a shard
// manager) against [mockdiscord], a strict mock of Discord's gateway and
// of GET /gateway/bot, served in memory.
//
// newGateway is called once or more per subtest, inside the subtest's
// synctest bubble, and must return a new Gateway for p. The suite fills
// p.Shard as [TestShard] does (with p.Shard.ID and Count zero and, unless
// a subtest configures them, p.Shard.URL empty), p.ShardCount,
// p.ShardIDs and p.MaxConcurrency as each subtest needs (zero: ask
// /gateway/bot), and p.HTTPClient, a minimal client that reaches the
// mock's REST API in memory. p.NewShard, p.NewKeepAlive, p.NewSendLimiter
// and p.NewIdentifyLimiter are nil, and so are p.Shard.Codec,
// p.Shard.NewInflater, p.Shard.KeepAlive, p.Shard.SendLimiter and
// p.Shard.IdentifyLimiter: the factory fills the parts it wants, as
// [TestShard]'s does:
//
//	func(t *testing.T, p protocols.GatewayParams) protocols.Gateway {
//		p.NewShard = myshard.New
//		p.NewKeepAlive, p.NewSendLimiter = mykeepalive.New, mysendlimit.New
//		p.NewIdentifyLimiter = myidentify.New
//		p.Shard.Codec, p.Shard.NewInflater = myCodec{}, myinflate.New
//		g, err := mygateway.New(p)
//		if err != nil {
//			t.Fatal(err)
//		}
//		return g
//	}
//
// The mock's /gateway/bot reports the subtest's shard count and
// max_concurrency. The suite closes the gateway, then the mock, when the
// subtest ends; CloseEndsEveryGoroutine checks, by counting the bubble's
// goroutines, that Close leaves none of the gateway's behind.
//
// During a Rescale both sets of shards run until the new one is ready, and
// both deliver the events of their guilds to the shared dispatchers: an
// event may arrive twice then. RescaleWithoutLosingEvents checks that
// every event arrives at least once during the overlap, and exactly once
// after it.
func TestGateway(t *testing.T, newGateway func(t *testing.T, p protocols.GatewayParams) protocols.Gateway) {
	t.Helper()
	Options{}.TestGateway(t, newGateway)
}

// TestGateway is [TestGateway] with options.
func (o Options) TestGateway(t *testing.T, newGateway func(t *testing.T, p protocols.GatewayParams) protocols.Gateway) {
	t.Helper()
	runRules(t, o, "TestGateway", gatewayManagerRules, func(*testing.T) *gatewayHarness {
		return &gatewayHarness{newGateway: newGateway}
	})
}

// gatewayHarness builds gateways with the implementation's factory.
type gatewayHarness struct {
	newGateway func(t *testing.T, p protocols.GatewayParams) protocols.Gateway
}

// gateway builds a gateway for p; the rig closes it.
func (h *gatewayHarness) gateway(t *caseT, r *gwRig, p protocols.GatewayParams) protocols.Gateway {
	t.Helper()
	g := h.newGateway(t.T, p)
	if g == nil {
		t.Fatal("conformance: newGateway returned nil")
	}
	r.mu.Lock()
	r.gateways = append(r.gateways, g)
	r.mu.Unlock()
	return g
}

// connect calls g.Connect(ctx) and waits for it at most d.
func connect(t *caseT, ctx context.Context, g protocols.Gateway, d time.Duration) error {
	t.Helper()
	a := startCtx(t, ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, g.Connect(ctx) })
	if !a.await(time.Now().Add(d)) {
		t.Fatalf("Gateway.Connect did not return within %v", d)
	}
	return a.err
}

// mustConnect connects g or fails the case.
func mustConnect(t *caseT, g protocols.Gateway) {
	t.Helper()
	if err := connect(t, t.ctx, g, connectTimeout); err != nil {
		t.Fatalf("Gateway.Connect: got error %v, want nil", err)
	}
}

// shardsReady fails the case unless ids are the ready shards of count.
func shardsReady(t *caseT, what string, g protocols.Gateway, count int, ids []int) {
	t.Helper()
	for id := range count + 1 {
		sh := g.Shard(id)
		if !slices.Contains(ids, id) {
			if sh != nil {
				t.Errorf("%s: Shard(%d) is not nil, want nil: it is not one of the shards %v of %d", what, id, ids, count)
			}
			continue
		}
		if sh == nil {
			t.Errorf("%s: Shard(%d) is nil, want a shard", what, id)
			continue
		}
		if st := sh.Status(); !st.Ready || st.ID != id || st.Count != count {
			t.Errorf("%s: Shard(%d).Status() = %+v, want ready, shard [%d, %d]", what, id, st, id, count)
		}
	}
}

// allIDs returns 0..n-1.
func allIDs(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// identifiesBy counts the IDENTIFYs per [shard, count].
func identifiesBy(obs []mockdiscord.GatewayObservation) map[[2]int]int {
	out := map[[2]int]int{}
	for _, o := range obs {
		out[[2]int{o.Shard, o.ShardCount}]++
	}
	return out
}

// checkBuckets fails the case when two IDENTIFYs of one bucket are less
// than 5 s apart.
func checkBuckets(t *caseT, what string, ids []mockdiscord.GatewayObservation) {
	t.Helper()
	last := map[int]time.Time{}
	for _, o := range ids {
		if prev, ok := last[o.Bucket]; ok && o.Time.Sub(prev) < identifySpacing {
			t.Errorf("%s: bucket %d identified at %s and at %s (shard %d), %v apart; want at least %v",
				what, o.Bucket, t.since(prev), t.since(o.Time), o.Shard, o.Time.Sub(prev), identifySpacing)
		}
		last[o.Bucket] = o.Time
	}
}

// bubbleGoroutines returns the stacks of the goroutines of the calling
// goroutine's synctest bubble, the caller excluded.
func bubbleGoroutines() []string {
	self := make([]byte, 256)
	self = self[:runtime.Stack(self, false)]
	m := regexp.MustCompile(`^goroutine (\d+) \[[^\]]*synctest bubble (\d+)`).FindSubmatch(self)
	if m == nil {
		return nil
	}
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.HasPrefix(g, []byte("goroutine "+string(m[1])+" ")) || !bytes.Contains(g, []byte("synctest bubble "+string(m[2])+"]")) {
			continue
		}
		out = append(out, string(g))
	}
	return out
}

var gatewayManagerRules = []rule[*gatewayHarness]{
	{
		name: "ConnectReadiesEveryShard",
		rule: ruleGwConnect,
		run: func(t *caseT, h *gatewayHarness) {
			r := newRig(t, &mockdiscord.Options{Shards: 4, Guilds: 8})
			g := h.gateway(t, r, r.gatewayParams())
			mustConnect(t, g)
			shardsReady(t, "after Connect", g, 4, allIDs(4))
			settle()
			creates := r.events.guildCreates()
			for _, id := range r.srv.Guilds() {
				if creates[id] != 1 {
					t.Errorf("guild %s: %d GUILD_CREATE, want 1", id, creates[id])
				}
			}
			for _, ev := range r.events.all("GUILD_CREATE") {
				if want := mockdiscord.ShardOf(jsonID(ev.Data), 4); ev.Shard != want {
					t.Errorf("GUILD_CREATE of guild %s came with Event.Shard %d, want %d", jsonID(ev.Data), ev.Shard, want)
				}
			}
			ids := accepted(r.obs(mockdiscord.ObserveIdentify))
			if got := identifiesBy(ids); len(ids) != 4 || len(got) != 4 || got[[2]int{0, 4}] != 1 || got[[2]int{3, 4}] != 1 {
				t.Errorf("accepted IDENTIFYs by [shard, count] %v, want one for each of the 4 shards", got)
			}
			r.noViolations()
		},
	},
	{
		name: "ShardCountFromGatewayBot",
		rule: ruleGwShardCount,
		run: func(t *caseT, h *gatewayHarness) {
			r := newRig(t, &mockdiscord.Options{Shards: 3})
			g := h.gateway(t, r, r.gatewayParams())
			mustConnect(t, g)
			asked := 0
			for _, o := range r.srv.Observations() {
				if o.Method == "GET" && strings.HasSuffix(o.Path, "/gateway/bot") && o.Status == 200 {
					asked++
				}
			}
			if asked == 0 {
				t.Errorf("the gateway never asked GET /gateway/bot (through GatewayParams.HTTPClient)")
			}
			shardsReady(t, "after Connect", g, 3, allIDs(3))
			for _, c := range r.obs(mockdiscord.ObserveConnect) {
				if strings.TrimSuffix(c.Path, "/") != "/gateway" {
					t.Errorf("connection %d went to %s, want the URL /gateway/bot gave", c.Conn, c.Path)
				}
			}
			r.noViolations()
		},
	},
	{
		name: "IdentifySpacingPerBucket",
		rule: ruleIdentifySpacing,
		run: func(t *caseT, h *gatewayHarness) {
			r := newRig(t, &mockdiscord.Options{Shards: 16, MaxConcurrency: 4, Guilds: 20})
			g := h.gateway(t, r, r.gatewayParams())
			mustConnect(t, g)
			took := time.Since(t.start)
			ids := r.obs(mockdiscord.ObserveIdentify)
			if len(ids) != 16 {
				t.Errorf("%d IDENTIFYs, want 16", len(ids))
			}
			checkBuckets(t, "16 shards, max_concurrency 4", ids)
			// 4 rounds of 4 buckets at once: 15 s, and 25% for scheduling.
			if limit := 15 * time.Second * 5 / 4; took > limit {
				t.Errorf("Connect took %v, want about 15s (4 identifies per 5 s), at most %v", took, limit)
			}
			shardsReady(t, "after Connect", g, 16, allIDs(16))
			r.noViolations()
		},
	},
	{
		name: "ReconnectIdentifiesRespectBuckets",
		rule: ruleShIdentifyLimiter,
		run: func(t *caseT, h *gatewayHarness) {
			// disgo#467: every shard loses its session at once.
			r := newRig(t, &mockdiscord.Options{Shards: 16, MaxConcurrency: 4, Guilds: 20})
			g := h.gateway(t, r, r.gatewayParams())
			mustConnect(t, g)
			time.Sleep(10 * time.Second)
			r.inject(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultInvalidSession, Shard: mockdiscord.AllShards})
			if !poll(connectTimeout, func() bool { return len(accepted(r.obs(mockdiscord.ObserveIdentify))) >= 32 }) {
				t.Errorf("%d sessions started %v after op 9 d=false on every shard, want 16 new ones", len(accepted(r.obs(mockdiscord.ObserveIdentify)))-16, connectTimeout)
			}
			checkBuckets(t, "identifying again after op 9 d=false on every shard", r.obs(mockdiscord.ObserveIdentify))
			poll(readyTimeout, func() bool {
				for id := range 16 {
					if sh := g.Shard(id); sh == nil || !sh.Status().Ready {
						return false
					}
				}
				return true
			})
			shardsReady(t, "after identifying again", g, 16, allIDs(16))
			r.noViolations()
		},
	},
	{
		name: "ShardIDsSubset",
		rule: ruleGwShardIDs,
		run: func(t *caseT, h *gatewayHarness) {
			r := newRig(t, &mockdiscord.Options{Guilds: 8})
			p := r.gatewayParams()
			p.ShardCount, p.ShardIDs = 4, []int{1, 3}
			g := h.gateway(t, r, p)
			mustConnect(t, g)
			shardsReady(t, "shards [1 3] of 4", g, 4, []int{1, 3})
			got := identifiesBy(r.obs(mockdiscord.ObserveIdentify))
			if want := map[[2]int]int{{1, 4}: 1, {3, 4}: 1}; !maps.Equal(got, want) {
				t.Errorf("IDENTIFYs by [shard, count] %v, want %v", got, want)
			}
			settle()
			creates := r.events.guildCreates()
			for _, id := range r.srv.Guilds() {
				want := 0
				if s := mockdiscord.ShardOf(id, 4); s == 1 || s == 3 {
					want = 1
				}
				if creates[id] != want {
					t.Errorf("guild %s (shard %d of 4): %d GUILD_CREATE, want %d", id, mockdiscord.ShardOf(id, 4), creates[id], want)
				}
			}
			r.noViolations()
		},
	},
	{
		name: "ShardingRequiredRescalesWhenAutomatic",
		rule: ruleGwRescale4011,
		run: func(t *caseT, h *gatewayHarness) {
			// disgo 1e7b4dd: 4011 taken for a reason to reconnect, 36,000
			// connections in 20 s.
			r := newRig(t, &mockdiscord.Options{Guilds: 5, MaxGuildsPerShard: 2, Shards: 1})
			g := h.gateway(t, r, r.gatewayParams())
			mustConnect(t, g)
			time.Sleep(time.Minute)
			live := r.srv.Sessions()
			if len(live) == 0 {
				t.Fatalf("no live session after Connect")
			}
			count := live[0].ShardCount
			for _, s := range live {
				if s.ShardCount != count {
					t.Errorf("live sessions of counts %d and %d, want one set", count, s.ShardCount)
				}
			}
			for _, id := range r.srv.Guilds() {
				n := 0
				for _, s := range live {
					if mockdiscord.ShardOf(id, s.ShardCount) == s.Shard {
						n++
					}
				}
				if n != 1 {
					t.Errorf("guild %s is covered by %d live sessions, want 1", id, n)
				}
			}
			shardsReady(t, fmt.Sprintf("after rescaling to %d", count), g, count, allIDs(count))
			refused := map[[2]int]bool{}
			for _, o := range r.obs(mockdiscord.ObserveIdentify) {
				if !o.Accepted {
					refused[[2]int{o.Shard, o.ShardCount}] = true
				}
			}
			if len(refused) == 0 {
				t.Errorf("no IDENTIFY was refused with 4011, want the first set's")
			}
			by := identifiesBy(r.obs(mockdiscord.ObserveIdentify))
			for k := range refused {
				if by[k] != 1 {
					t.Errorf("shard %d of %d identified %d times, want once: a shard refused with 4011 must not reconnect", k[0], k[1], by[k])
				}
			}
			settle()
			creates := r.events.guildCreates()
			for _, id := range r.srv.Guilds() {
				if creates[id] == 0 {
					t.Errorf("guild %s: no GUILD_CREATE", id)
				}
			}
			r.noViolations("(close 4011)")
		},
	},
	{
		name: "ShardingRequiredFatalWhenPinned",
		rule: ruleGwPinned4011,
		run: func(t *caseT, h *gatewayHarness) {
			r := newRig(t, &mockdiscord.Options{Guilds: 5, MaxGuildsPerShard: 2})
			p := r.gatewayParams()
			p.ShardCount = 2
			g := h.gateway(t, r, p)
			err := connect(t, t.ctx, g, connectTimeout)
			if !errors.Is(err, protocols.ErrShardingRequired) || protocols.CloseStatus(err) != protocols.CloseShardingRequired {
				t.Errorf("Connect with ShardCount 2 and 3 guilds on shard 0: got %v, want the *CloseError 4011 matching ErrShardingRequired", err)
			}
			time.Sleep(time.Minute)
			for k, n := range identifiesBy(r.obs(mockdiscord.ObserveIdentify)) {
				if n > 1 {
					t.Errorf("shard %d of %d identified %d times, want at most once", k[0], k[1], n)
				}
			}
			r.noViolations("(close 4011)")
		},
	},
	{
		name: "RescaleWithoutLosingEvents",
		rule: ruleGwRescale,
		run: func(t *caseT, h *gatewayHarness) {
			r := newRig(t, &mockdiscord.Options{Guilds: 4})
			p := r.gatewayParams()
			p.ShardCount = 2
			g := h.gateway(t, r, p)
			mustConnect(t, g)
			guilds := r.srv.Guilds()
			n := 0
			dispatch := func() {
				for _, id := range guilds {
					n++
					if _, err := r.srv.Dispatch(id, "TEST_EVENT", map[string]int{"n": n}); err != nil {
						t.Fatalf("conformance: Dispatch: %v", err)
					}
				}
			}
			rescale := start(t, func(ctx context.Context) (struct{}, error) { return struct{}{}, g.Rescale(ctx, 4, nil) })
			for !rescale.finished() && time.Since(t.start) < connectTimeout {
				dispatch()
				time.Sleep(time.Second)
				settle()
			}
			if !rescale.finished() {
				t.Fatalf("Rescale(4) did not return within %v", connectTimeout)
			}
			if rescale.err != nil {
				t.Fatalf("Rescale(4): got error %v, want nil", rescale.err)
			}
			during := n
			time.Sleep(10 * time.Second)
			dispatch()
			settle()
			seen := map[int]int{}
			for _, v := range r.events.numbered("TEST_EVENT") {
				seen[v]++
			}
			for v := 1; v <= during; v++ {
				if seen[v] == 0 {
					t.Errorf("event n=%d, dispatched during the Rescale, was lost", v)
				}
			}
			for v := during + 1; v <= n; v++ {
				if seen[v] != 1 {
					t.Errorf("event n=%d, dispatched after the Rescale, was delivered %d times, want once", v, seen[v])
				}
			}
			shardsReady(t, "after Rescale(4)", g, 4, allIDs(4))
			for _, s := range r.srv.Sessions() {
				if s.Connected && s.ShardCount != 4 {
					t.Errorf("shard %d of %d is still connected after the Rescale, want the old set closed", s.Shard, s.ShardCount)
				}
			}
			time.Sleep(time.Minute)
			if connected := r.connCount(); connected != 6 {
				t.Errorf("%d connections, want 6: the old shards must not reconnect", connected)
			}
			r.noViolations()
		},
	},
	{
		name: "FatalErrorFromConnect",
		rule: ruleGwConnect,
		run: func(t *caseT, h *gatewayHarness) {
			r := newRig(t, &mockdiscord.Options{AllowedPrivilegedIntents: mockdiscord.NoPrivilegedIntents})
			p := r.gatewayParams()
			p.ShardCount, p.MaxConcurrency, p.Shard.URL = 4, 1, r.srv.GatewayURL()
			p.Shard.Intents |= protocols.IntentGuildPresences
			g := h.gateway(t, r, p)
			err := connect(t, t.ctx, g, connectTimeout)
			if !errors.Is(err, protocols.ErrDisallowedIntents) || protocols.CloseStatus(err) != protocols.CloseDisallowedIntents {
				t.Errorf("Connect with a privileged intent the application lacks: got %v, want the *CloseError 4014 matching ErrDisallowedIntents", err)
			}
			time.Sleep(time.Minute)
			for k, n := range identifiesBy(r.obs(mockdiscord.ObserveIdentify)) {
				if n > 1 {
					t.Errorf("shard %d of %d identified %d times, want at most once: 4014 is fatal", k[0], k[1], n)
				}
			}
			if n := r.connCount(); n > 4 {
				t.Errorf("%d connections, want at most one per shard", n)
			}
			r.noViolations("(close 4014)")
		},
	},
	{
		name: "ConnectHonorsContext",
		rule: ruleGwCancellation,
		run: func(t *caseT, h *gatewayHarness) {
			// 4 shards, one identify per 5 s: 15 s to connect them all.
			r := newRig(t, &mockdiscord.Options{Shards: 4})
			g := h.gateway(t, r, r.gatewayParams())
			ctx, cancel := context.WithTimeout(t.ctx, 7*time.Second)
			defer cancel()
			err := connect(t, ctx, g, connectTimeout)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Connect with a 7 s deadline for 15 s of identifies: got %v, want an error wrapping context.DeadlineExceeded", err)
			}
			if took := time.Since(t.start); took > 7*time.Second+time.Second {
				t.Errorf("Connect returned %v after it started, want at its deadline, 7s", took)
			}
		},
	},
	{
		name: "CloseEndsEveryGoroutine",
		rule: ruleGwClose,
		run: func(t *caseT, h *gatewayHarness) {
			r := newRig(t, &mockdiscord.Options{Shards: 2})
			// Start the mock's in-memory server, then count.
			if _, err := r.http.Do(t.ctx, &protocols.Request{Route: mustRoute("GET", "/gateway/bot")}); err != nil {
				t.Fatalf("conformance: GET /gateway/bot: %v", err)
			}
			settle()
			before := len(bubbleGoroutines())
			g := h.gateway(t, r, r.gatewayParams())
			mustConnect(t, g)
			closed := start(t, func(context.Context) (struct{}, error) { return struct{}{}, g.Close() })
			if !closed.await(time.Now().Add(time.Minute)) {
				t.Fatalf("Gateway.Close did not return within a minute")
			}
			if closed.err != nil {
				t.Errorf("Gateway.Close: got %v, want nil", closed.err)
			}
			if err := g.Close(); err != nil {
				t.Errorf("a second Gateway.Close: got %v, want nil", err)
			}
			time.Sleep(5 * time.Second) // the mock ends closed connections within a second
			settle()
			if open := len(r.obs(mockdiscord.ObserveConnect)) - len(r.obs(mockdiscord.ObserveClose)); open != 0 {
				t.Errorf("%d connections still open after Close", open)
			}
			if after := bubbleGoroutines(); len(after) > before {
				t.Errorf("%d goroutines after Close, %d before the gateway was built; the extra ones:\n%s",
					len(after), before, strings.Join(after, "\n\n"))
			}
		},
	},
	{
		name: "MethodsAfterCloseFail",
		rule: ruleErrClosed,
		run: func(t *caseT, h *gatewayHarness) {
			r := newRig(t, &mockdiscord.Options{Shards: 2})
			g := h.gateway(t, r, r.gatewayParams())
			mustConnect(t, g)
			if err := g.Close(); err != nil {
				t.Errorf("Gateway.Close: got %v, want nil", err)
			}
			if err := connect(t, t.ctx, g, time.Minute); !errors.Is(err, protocols.ErrClosed) {
				t.Errorf("Connect after Close: got %v, want an error wrapping protocols.ErrClosed", err)
			}
			rescale := start(t, func(ctx context.Context) (struct{}, error) { return struct{}{}, g.Rescale(ctx, 4, nil) })
			if !rescale.await(time.Now().Add(time.Minute)) {
				t.Fatalf("Rescale after Close did not return within a minute")
			}
			if !errors.Is(rescale.err, protocols.ErrClosed) {
				t.Errorf("Rescale after Close: got %v, want an error wrapping protocols.ErrClosed", rescale.err)
			}
			time.Sleep(time.Minute)
			if n := r.connCount(); n != 2 {
				t.Errorf("%d connections, want the 2 of Connect only", n)
			}
		},
	},
}

// jsonID returns the "id" of a JSON object.
func jsonID(data []byte) string {
	var v struct{ ID string }
	_ = json.Unmarshal(data, &v)
	return v.ID
}
