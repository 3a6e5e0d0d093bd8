package mockdiscord_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
)

// seqRange returns from..to.
func seqRange[T int | int64](from, to T) []T {
	var out []T
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func TestGatewayResumeReplaysExactlyOnce(t *testing.T) {
	bubble(t, &mockdiscord.Options{Guilds: 1, HeartbeatInterval: hour}, func(t *testing.T, e *env) {
		c := dialGateway(t, e.s, "/gateway?v=10&encoding=json")
		r := c.identify(e.s, 0, 1, mockdiscord.IntentGuilds)
		c.skipGuildCreates(1) // s = 2
		if n, err := e.s.Stream(0, 20, "TEST_EVENT"); err != nil || n != 1 {
			t.Fatalf("Stream: %d, %v", n, err)
		}
		ns, _ := c.streamNs("TEST_EVENT", 8)
		wantEqual(t, "first events", ns, seqRange(1, 8))
		last := c.seq     // 10
		c.closeWith(4000) // a resumable close; events 9..20 were sent but not read

		if _, err := e.s.Stream(0, 15, "MORE"); err != nil { // while disconnected
			t.Fatal(err)
		}
		ss := e.s.Sessions()
		wantEqual(t, "sessions", len(ss), 1)
		wantEqual(t, "connected", ss[0].Connected, false)
		wantEqual(t, "seq", ss[0].Seq, int64(2+20+15))

		c2 := dialGateway(t, e.s, "/gateway-resume?v=10&encoding=json")
		c2.resume(e.s, r.SessionID, last)
		ns, seqs := c2.streamNs("TEST_EVENT", 12)
		wantEqual(t, "replayed", ns, seqRange(9, 20))
		wantEqual(t, "replayed seqs", seqs, seqRange[int64](11, 22))
		ns, seqs = c2.streamNs("MORE", 15)
		wantEqual(t, "missed", ns, seqRange(1, 15))
		wantEqual(t, "missed seqs", seqs, seqRange[int64](23, 37))
		resumed := c2.dispatch("RESUMED")
		wantEqual(t, "RESUMED s", *resumed.S, int64(38))
		_, _ = e.s.Stream(0, 2, "AFTER")
		ns, seqs = c2.streamNs("AFTER", 2)
		wantEqual(t, "after", ns, []int{1, 2})
		wantEqual(t, "after seqs", seqs, []int64{39, 40})

		res := obsOf(e.s, mockdiscord.ObserveResume)
		wantEqual(t, "resumes", len(res), 1)
		wantEqual(t, "accepted", res[0].Accepted, true)
		wantEqual(t, "replayed", res[0].Replayed, 27)
		wantEqual(t, "resume seq", res[0].Seq, last)
		conns := obsOf(e.s, mockdiscord.ObserveConnect)
		wantEqual(t, "resume path", conns[1].Path, "/gateway-resume")
		wantEqual(t, "violations", e.s.GatewayViolations(), []string(nil))
	})
}

func TestGatewayDropMidStreamThenResume(t *testing.T) {
	bubble(t, &mockdiscord.Options{Guilds: 1, HeartbeatInterval: hour}, func(t *testing.T, e *env) {
		c := dialGateway(t, e.s, "/gateway?v=10&encoding=json&compress=zlib-stream")
		r := c.identify(e.s, 0, 1, mockdiscord.IntentGuilds)
		c.skipGuildCreates(1)
		n, err := e.s.InjectGateway(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultDrop, AfterDispatches: 7})
		if err != nil || n != 1 {
			t.Fatalf("InjectGateway: %d, %v", n, err)
		}
		_, _ = e.s.Stream(0, 30, "N")
		ns, _ := c.streamNs("N", 7)
		wantEqual(t, "before the drop", ns, seqRange(1, 7))
		c.expectEOF()
		last := c.seq

		c2 := dialGateway(t, e.s, "/gateway-resume?v=10&encoding=json&compress=zlib-stream")
		c2.resume(e.s, r.SessionID, last)
		ns, _ = c2.streamNs("N", 23)
		wantEqual(t, "after the drop", ns, seqRange(8, 30))
		c2.dispatch("RESUMED")
		closes := obsOf(e.s, mockdiscord.ObserveClose)
		wantEqual(t, "close by", closes[0].By, "server")
		wantEqual(t, "close code", closes[0].Code, 0)
	})
}

func TestGatewayClientCloseInvalidates(t *testing.T) {
	for _, tt := range []struct {
		name      string
		code      int
		resumable bool
	}{
		{name: "Normal1000", code: 1000},
		{name: "GoingAway1001", code: 1001},
		{name: "Private4000", code: 4000, resumable: true},
		{name: "Abnormal3000", code: 3000, resumable: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bubble(t, &mockdiscord.Options{Guilds: 1}, func(t *testing.T, e *env) {
				c := dialGateway(t, e.s, "/gateway?v=10")
				r := c.identify(e.s, 0, 1, mockdiscord.IntentGuilds)
				c.skipGuildCreates(1)
				c.closeWith(tt.code)
				wantEqual(t, "live sessions", len(e.s.Sessions()), map[bool]int{true: 1, false: 0}[tt.resumable])
				c2 := dialGateway(t, e.s, "/gateway-resume?v=10")
				c2.resume(e.s, r.SessionID, c.seq)
				if tt.resumable {
					c2.dispatch("RESUMED")
				} else {
					p := c2.expect(9)
					wantEqual(t, "op 9 d", string(p.D), "false")
					// The connection stays open: IDENTIFY works on it, once
					// the bucket's 5 s have passed.
					time.Sleep(5 * time.Second)
					c2.send(op(2, identifyData(e.s, 0, 1, mockdiscord.IntentGuilds)))
					c2.ready()
				}
				cl := obsOf(e.s, mockdiscord.ObserveClose)[0]
				wantEqual(t, "close by", cl.By, "client")
				wantEqual(t, "close code", cl.Code, tt.code)
			})
		})
	}
}

func TestGatewayResumeRejections(t *testing.T) {
	bubble(t, &mockdiscord.Options{Guilds: 1, ReplayBuffer: 5, HeartbeatInterval: hour}, func(t *testing.T, e *env) {
		c := dialGateway(t, e.s, "/gateway?v=10")
		r := c.identify(e.s, 0, 1, mockdiscord.IntentGuilds)
		c.skipGuildCreates(1)
		c.closeWith(4000)

		u := dialGateway(t, e.s, "/gateway?v=10")
		u.resume(e.s, "00000000000000000000000000000000", 1)
		wantEqual(t, "unknown session", string(u.expect(9).D), "false")

		w := dialGateway(t, e.s, "/gateway?v=10")
		w.expect(10)
		w.send(op(6, map[string]any{"token": "wrong", "session_id": r.SessionID, "seq": 2}))
		w.expectClose(4004)

		_, _ = e.s.Stream(0, 10, "X") // seqs 3..12; the buffer keeps 8..12
		old := dialGateway(t, e.s, "/gateway-resume?v=10")
		old.resume(e.s, r.SessionID, 2)
		old.expectClose(4007)
		res := obsOf(e.s, mockdiscord.ObserveResume)
		if !strings.Contains(res[len(res)-1].Reason, "older than the replay buffer") {
			t.Errorf("reason %q", res[len(res)-1].Reason)
		}
		// 4007 ends the session.
		again := dialGateway(t, e.s, "/gateway-resume?v=10")
		again.resume(e.s, r.SessionID, 12)
		wantEqual(t, "after 4007", string(again.expect(9).D), "false")
	})
}

func TestGatewaySessionTTL(t *testing.T) {
	bubble(t, &mockdiscord.Options{Guilds: 1, SessionTTL: time.Minute, HeartbeatInterval: hour}, func(t *testing.T, e *env) {
		c := dialGateway(t, e.s, "/gateway?v=10")
		r := c.identify(e.s, 0, 1, mockdiscord.IntentGuilds)
		c.skipGuildCreates(1)
		c.closeWith(4000)
		time.Sleep(59 * time.Second)
		c2 := dialGateway(t, e.s, "/gateway-resume?v=10")
		c2.resume(e.s, r.SessionID, c.seq)
		c2.dispatch("RESUMED")
		c2.closeWith(4000)
		time.Sleep(time.Minute)
		wantEqual(t, "sessions after the TTL", len(e.s.Sessions()), 0)
		c3 := dialGateway(t, e.s, "/gateway-resume?v=10")
		c3.resume(e.s, r.SessionID, c2.seq)
		wantEqual(t, "expired", string(c3.expect(9).D), "false")
		res := obsOf(e.s, mockdiscord.ObserveResume)
		if r := res[len(res)-1].Reason; !strings.Contains(r, "unknown session") && !strings.Contains(r, "expired") {
			t.Errorf("reason %q", r)
		}
	})
}

func TestGatewayHeartbeatTimeout(t *testing.T) {
	bubble(t, &mockdiscord.Options{Guilds: 1, HeartbeatInterval: time.Second}, func(t *testing.T, e *env) {
		c := dialGateway(t, e.s, "/gateway?v=10")
		wantEqual(t, "hello", string(c.expect(10).D), `{"heartbeat_interval":1000}`)
		c.send(op(2, identifyData(e.s, 0, 1, mockdiscord.IntentGuilds)))
		r := c.ready()
		c.skipGuildCreates(1)
		for range 5 {
			time.Sleep(time.Second)
			c.heartbeat()
			c.expect(11)
		}
		start := time.Now()
		ce := c.expectClose(4009)
		wantEqual(t, "waited", time.Since(start), 1500*time.Millisecond)
		wantEqual(t, "reason", ce.reason, "Session timed out.")
		v := e.s.GatewayViolations()
		if len(v) != 1 || !strings.Contains(v[0], "missed heartbeat") {
			t.Errorf("violations %q", v)
		}
		// The session stays resumable.
		c2 := dialGateway(t, e.s, "/gateway-resume?v=10")
		c2.resume(e.s, r.SessionID, c.seq)
		c2.dispatch("RESUMED")
	})
	t.Run("Drop", func(t *testing.T) {
		bubble(t, &mockdiscord.Options{HeartbeatInterval: time.Second, HeartbeatTolerance: -1, MissedHeartbeatCode: -1}, func(t *testing.T, e *env) {
			c := dialGateway(t, e.s, "/gateway?v=10")
			c.expect(10)
			start := time.Now()
			c.expectEOF()
			wantEqual(t, "waited", time.Since(start), time.Second)
		})
	})
	t.Run("BeforeIdentify", func(t *testing.T) {
		bubble(t, &mockdiscord.Options{HeartbeatInterval: 2 * time.Second, MissedHeartbeatCode: 4000}, func(t *testing.T, e *env) {
			c := dialGateway(t, e.s, "/gateway?v=10")
			c.expect(10)
			time.Sleep(2500 * time.Millisecond)
			c.heartbeat() // at 2.5 s, within 3 s
			c.expect(11)
			start := time.Now()
			c.expectClose(4000)
			wantEqual(t, "waited", time.Since(start), 3*time.Second)
		})
	})
}

func TestGatewayIdentifyConcurrency(t *testing.T) {
	opts := &mockdiscord.Options{Guilds: 16, Shards: 16, MaxConcurrency: 4, HeartbeatInterval: hour}
	bubble(t, opts, func(t *testing.T, e *env) {
		conns := make([]*gwc, 16)
		for i := range conns {
			conns[i] = dialGateway(t, e.s, "/gateway?v=10")
			conns[i].expect(10)
		}
		identify := func(i int) bool {
			c := conns[i]
			c.send(op(2, identifyData(e.s, i, 16, mockdiscord.IntentGuilds)))
			p := c.next()
			switch {
			case p.Op == 0 && p.name() == "READY":
				c.skipGuildCreates(1)
				return true
			case p.Op == 9 && string(p.D) == "false":
				return false
			}
			t.Fatalf("shard %d: got op %d %s %s", i, p.Op, p.name(), p.D)
			return false
		}
		// All 16 at once: one per bucket gets through.
		var ok []int
		for i := range 16 {
			if identify(i) {
				ok = append(ok, i)
			}
		}
		wantEqual(t, "first round", ok, []int{0, 1, 2, 3})
		wantEqual(t, "violations", len(e.s.GatewayViolations()), 12)
		// Bucket by bucket, every 5 s: shards 4-7, then 8-11, then 12-15.
		for round := 1; round < 4; round++ {
			time.Sleep(4999 * time.Millisecond)
			if identify(4 * round) {
				t.Fatalf("round %d: identify before 5 s admitted", round)
			}
			time.Sleep(time.Millisecond)
			ok = ok[:0]
			for i := 4 * round; i < 4*round+4; i++ {
				if identify(i) {
					ok = append(ok, i)
				}
			}
			wantEqual(t, "round", ok, seqRange(4*round, 4*round+3))
		}
		// Accepted identifies per bucket are 5 s apart.
		last := map[int]time.Time{}
		for _, o := range obsOf(e.s, mockdiscord.ObserveIdentify) {
			wantEqual(t, "bucket", o.Bucket, o.Shard%4)
			if !o.Accepted {
				continue
			}
			if prev, ok := last[o.Bucket]; ok && o.Time.Sub(prev) < 5*time.Second {
				t.Errorf("bucket %d: identifies %v apart", o.Bucket, o.Time.Sub(prev))
			}
			last[o.Bucket] = o.Time
		}
		wantEqual(t, "sessions", len(e.s.Sessions()), 16)
		for _, v := range e.s.GatewayViolations() {
			if !strings.Contains(v, "identify too fast") {
				t.Errorf("violation %q", v)
			}
		}
	})
}

func TestGatewaySessionStartLimit(t *testing.T) {
	opts := &mockdiscord.Options{SessionStartTotal: 2, IdentifyInterval: -1, InvalidSessionCloseCode: 4000}
	bubble(t, opts, func(t *testing.T, e *env) {
		for i := range 3 {
			c := dialGateway(t, e.s, "/gateway?v=10")
			c.expect(10)
			c.send(op(2, identifyData(e.s, 0, 1, mockdiscord.IntentGuilds)))
			p := c.next()
			if i < 2 {
				wantEqual(t, "READY", p.name(), "READY")
				continue
			}
			wantEqual(t, "op", p.Op, 9)
			wantEqual(t, "d", string(p.D), "false")
			c.expectClose(4000) // InvalidSessionCloseCode
		}
		var gb struct {
			SessionStartLimit struct{ Remaining int } `json:"session_start_limit"`
		}
		e.do("GET", "/gateway/bot", nil).decode(t, &gb)
		wantEqual(t, "remaining", gb.SessionStartLimit.Remaining, 0)
		v := e.s.GatewayViolations()
		if len(v) != 1 || !strings.Contains(v[0], "session start limit") {
			t.Errorf("violations %q", v)
		}
	})
}

func TestGatewayGuildPlacement(t *testing.T) {
	bubble(t, &mockdiscord.Options{Guilds: 8, IdentifyInterval: -1}, func(t *testing.T, e *env) {
		var all []string
		for shard := range 4 {
			c := dialGateway(t, e.s, "/gateway?v=10")
			r := c.identify(e.s, shard, 4, mockdiscord.IntentGuilds)
			var ids []string
			for _, g := range r.Guilds {
				ids = append(ids, g.ID)
				n, _ := parseUint(g.ID)
				wantEqual(t, "(id >> 22) % 4", int((n>>22)%4), shard)
			}
			wantEqual(t, "guilds on shard", len(ids), 2)
			for _, id := range ids {
				gc := c.dispatch("GUILD_CREATE")
				wantEqual(t, "GUILD_CREATE id", gc.obj(t)["id"], any(id))
			}
			all = append(all, ids...)
		}
		slices.Sort(all)
		want := e.s.Guilds()
		slices.Sort(want)
		wantEqual(t, "every guild once", all, want)
	})
	s := mockdiscord.New(&mockdiscord.Options{Guilds: 40})
	defer s.Close()
	for n := 1; n <= 20; n++ {
		for i, id := range s.Guilds() {
			if got := mockdiscord.ShardOf(id, n); got != i%n {
				t.Fatalf("guild %d with %d shards: shard %d, want %d", i, n, got, i%n)
			}
		}
	}
	wantEqual(t, "ShardOf no guild", mockdiscord.ShardOf("", 4), 0)
}
