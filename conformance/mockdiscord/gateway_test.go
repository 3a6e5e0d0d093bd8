package mockdiscord_test

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gobwas/ws"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
)

func TestGatewayHelloIdentifyReady(t *testing.T) {
	bubble(t, nil, func(t *testing.T, e *env) {
		c := dialGateway(t, e.s, "/gateway?v=10&encoding=json")
		hello := c.expect(10)
		wantEqual(t, "hello", string(hello.D), `{"heartbeat_interval":41250}`)
		if hello.binary || hello.S != nil || hello.T != nil {
			t.Errorf("HELLO: binary %v, s %v, t %v; want text, null, null", hello.binary, hello.S, hello.T)
		}
		c.send(op(2, identifyData(e.s, 0, 1, mockdiscord.IntentGuilds|mockdiscord.IntentGuildMessages)))
		p := c.dispatch("READY")
		wantEqual(t, "READY s", *p.S, int64(1))
		var r readyD
		p.decodeInto(t, &r)
		wantEqual(t, "v", r.V, 10)
		wantEqual(t, "user", r.User.ID, e.s.UserID())
		wantEqual(t, "bot", r.User.Bot, true)
		wantEqual(t, "resume URL", r.ResumeGatewayURL, "ws://mockdiscord.test/gateway-resume")
		wantEqual(t, "resume URL method", e.s.ResumeGatewayURL(), "ws://mockdiscord.test/gateway-resume")
		wantEqual(t, "shard", r.Shard, []int{0, 1})
		wantEqual(t, "application id", r.Application.ID, e.s.UserID())
		wantEqual(t, "application flags", r.Application.Flags, 1<<13|1<<15|1<<19)
		if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(r.SessionID) {
			t.Errorf("session_id %q", r.SessionID)
		}
		wantEqual(t, "guilds", len(r.Guilds), 3)
		for i, g := range r.Guilds {
			wantEqual(t, "guild id", g.ID, e.s.Guilds()[i])
			wantEqual(t, "unavailable", g.Unavailable, true)
		}
		for i := range 3 {
			gc := c.dispatch("GUILD_CREATE")
			wantEqual(t, "GUILD_CREATE s", *gc.S, int64(2+i))
			m := gc.obj(t)
			wantEqual(t, "guild id", m["id"], any(e.s.Guilds()[i]))
			wantEqual(t, "members", len(m["members"].([]any)), 11)
			wantEqual(t, "member_count", m["member_count"], any(float64(11)))
			wantEqual(t, "channels", len(m["channels"].([]any)), 2)
			wantEqual(t, "unavailable", m["unavailable"], any(false))
		}
		c.heartbeat()
		ack := c.expect(11)
		wantEqual(t, "ack", string(ack.raw), `{"t":null,"s":null,"op":11,"d":null}`)

		ss := e.s.Sessions()
		wantEqual(t, "sessions", len(ss), 1)
		wantEqual(t, "session", ss[0].ID, r.SessionID)
		wantEqual(t, "seq", ss[0].Seq, int64(4))
		wantEqual(t, "connected", ss[0].Connected, true)
		hb := obsOf(e.s, mockdiscord.ObserveHeartbeat)
		wantEqual(t, "heartbeats", len(hb), 1)
		wantEqual(t, "heartbeat seq", hb[0].Seq, int64(4))
		wantEqual(t, "acked", hb[0].Acked, true)
		id := obsOf(e.s, mockdiscord.ObserveIdentify)
		wantEqual(t, "identifies", len(id), 1)
		wantEqual(t, "accepted", id[0].Accepted, true)
		wantEqual(t, "intents", id[0].Intents, mockdiscord.IntentGuilds|mockdiscord.IntentGuildMessages)
		conn := obsOf(e.s, mockdiscord.ObserveConnect)
		wantEqual(t, "connect path", conn[0].Path, "/gateway")
		wantEqual(t, "connect query", conn[0].Query, "v=10&encoding=json")
		wantEqual(t, "violations", e.s.GatewayViolations(), []string(nil))
	})
}

func (p gwPayload) decodeInto(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(p.D, v); err != nil {
		t.Fatalf("decode %s: %v", p.D, err)
	}
}

func TestGatewayPathsAndQuery(t *testing.T) {
	tests := []struct {
		name    string
		path    string
		status  int // dial error status, 0 for none
		code    int // close code instead of HELLO, 0 for none
		version int
	}{
		{name: "Plain", path: "/gateway", version: 10},
		{name: "TrailingSlashV9", path: "/gateway/?v=9&encoding=json", version: 9},
		{name: "ResumePath", path: "/gateway-resume?v=10&encoding=json", version: 10},
		{name: "ResumePathSlash", path: "/gateway-resume/?v=10", version: 10},
		{name: "ZlibStream", path: "/gateway?v=10&encoding=json&compress=zlib-stream", version: 10},
		{name: "BadVersion", path: "/gateway?v=8&encoding=json", code: 4012},
		{name: "UnknownEncoding", path: "/gateway?v=10&encoding=xml", code: 4002},
		{name: "UnknownCompress", path: "/gateway?v=10&compress=gzip", code: 4002},
		{name: "ETFRefused", path: "/gateway?v=10&encoding=etf", status: 400},
		{name: "ZstdStream", path: "/gateway?v=10&encoding=json&compress=zstd-stream", version: 10},
		{name: "OtherPath", path: "/gateway/x?v=10", status: 403}, // the REST API answers (its User-Agent check first)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bubble(t, nil, func(t *testing.T, e *env) {
				c, err := tryDialGateway(t, e.s, tt.path)
				if tt.status != 0 {
					if err == nil || err.Error() != "unexpected HTTP response status: "+strconv.Itoa(tt.status) {
						t.Fatalf("dial: got %v, want status %d", err, tt.status)
					}
					if tt.status == 400 {
						wantEqual(t, "refused", len(obsOf(e.s, mockdiscord.ObserveRefused)), 1)
					}
					return
				}
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				if tt.code != 0 {
					c.expectClose(tt.code)
					wantEqual(t, "violations", len(e.s.GatewayViolations()), 1)
					return
				}
				c.expect(10)
				d := identifyData(e.s, 0, 1, mockdiscord.IntentGuilds)
				d["token"] = "Bot " + e.s.Token() // the prefix is accepted too
				c.send(op(2, d))
				r := c.ready()
				wantEqual(t, "v", r.V, tt.version)
				o := obsOf(e.s, mockdiscord.ObserveConnect)[0]
				wantEqual(t, "version", o.Version, tt.version)
			})
		})
	}
}

func TestGatewayURLs(t *testing.T) {
	bubble(t, nil, func(t *testing.T, e *env) {
		wantEqual(t, "GatewayURL", e.s.GatewayURL(), "ws://mockdiscord.test/gateway")
		var g struct{ URL string }
		e.do("GET", "/gateway", nil).decode(t, &g)
		wantEqual(t, "GET /gateway", g.URL, e.s.GatewayURL())
	})
	tcp(t, nil, func(t *testing.T, e *env) {
		want := "ws" + e.s.URL()[len("http"):] + "/gateway"
		wantEqual(t, "GatewayURL", e.s.GatewayURL(), want)
		var g struct{ URL string }
		e.do("GET", "/gateway", nil).decode(t, &g)
		wantEqual(t, "GET /gateway", g.URL, want)
	})
	s := mockdiscord.New(&mockdiscord.Options{GatewayURL: "wss://gw.example/", ResumeGatewayURL: "wss://resume.example/"})
	defer s.Close()
	wantEqual(t, "custom GatewayURL", s.GatewayURL(), "wss://gw.example/")
	wantEqual(t, "custom ResumeGatewayURL", s.ResumeGatewayURL(), "wss://resume.example/")
}

// TestGatewayCloseCodes drives every close the mock sends for a bad
// payload. Each step list runs on a fresh connection after HELLO.
func TestGatewayCloseCodes(t *testing.T) {
	ident := func(mod func(d map[string]any)) func(t *testing.T, e *env, c *gwc) {
		return func(t *testing.T, e *env, c *gwc) {
			d := identifyData(e.s, 0, 1, mockdiscord.IntentGuilds)
			mod(d)
			c.send(op(2, d))
		}
	}
	raw := func(s string) func(t *testing.T, e *env, c *gwc) {
		return func(t *testing.T, e *env, c *gwc) { c.sendRaw(s) }
	}
	identified := func(then func(t *testing.T, e *env, c *gwc)) func(t *testing.T, e *env, c *gwc) {
		return func(t *testing.T, e *env, c *gwc) {
			c.send(op(2, identifyData(e.s, 0, 1, mockdiscord.IntentGuilds)))
			c.ready()
			c.skipGuildCreates(len(e.s.Guilds()))
			then(t, e, c)
		}
	}
	tests := []struct {
		name  string
		opts  *mockdiscord.Options
		steps func(t *testing.T, e *env, c *gwc)
		code  int
	}{
		{name: "UnknownOpcode", steps: raw(`{"op":5,"d":null}`), code: 4001},
		{name: "LargeUnknownOpcode", steps: raw(`{"op":99,"d":{}}`), code: 4001},
		{name: "ServerOpcode", steps: raw(`{"op":10,"d":{"heartbeat_interval":1}}`), code: 4001},
		{name: "InvalidJSON", steps: raw(`{"op":1,`), code: 4002},
		{name: "NotAnObject", steps: raw(`[1,2]`), code: 4002},
		{name: "NoOp", steps: raw(`{"d":1}`), code: 4002},
		{name: "FloatOp", steps: raw(`{"op":1.5,"d":null}`), code: 4002},
		{name: "TooLarge", steps: raw(`{"op":1,"d":null,"x":"` + string(make([]byte, 0)) + strings4097() + `"}`), code: 4002},
		{name: "PresenceBeforeIdentify", steps: raw(`{"op":3,"d":{"since":null,"activities":[],"status":"online","afk":false}}`), code: 4003},
		{name: "RequestMembersBeforeIdentify", steps: raw(`{"op":8,"d":{"guild_id":"1","query":"","limit":0}}`), code: 4003},
		{name: "WrongToken", steps: ident(func(d map[string]any) { d["token"] = "nope" }), code: 4004},
		{name: "NoToken", steps: ident(func(d map[string]any) { delete(d, "token") }), code: 4004},
		{name: "SecondIdentify", steps: identified(func(t *testing.T, e *env, c *gwc) {
			c.send(op(2, identifyData(e.s, 0, 1, mockdiscord.IntentGuilds)))
		}), code: 4005},
		{name: "ResumeAfterIdentify", steps: identified(func(t *testing.T, e *env, c *gwc) {
			c.send(op(6, map[string]any{"token": e.s.Token(), "session_id": "x", "seq": 1}))
		}), code: 4005},
		{name: "ResumeSeqAhead", steps: func(t *testing.T, e *env, c *gwc) {
			other := dialGateway(t, e.s, "/gateway?v=10")
			r := other.identify(e.s, 0, 1, mockdiscord.IntentGuilds)
			c.send(op(6, map[string]any{"token": e.s.Token(), "session_id": r.SessionID, "seq": 99}))
		}, code: 4007},
		{name: "SendLimit", opts: &mockdiscord.Options{SendLimit: 5}, steps: func(t *testing.T, e *env, c *gwc) {
			for range 6 {
				c.send(op(1, nil))
			}
		}, code: 4008},
		{name: "ShardIDTooBig", steps: ident(func(d map[string]any) { d["shard"] = []int{2, 2} }), code: 4010},
		{name: "ShardCountZero", steps: ident(func(d map[string]any) { d["shard"] = []int{0, 0} }), code: 4010},
		{name: "ShardNegative", steps: ident(func(d map[string]any) { d["shard"] = []int{-1, 2} }), code: 4010},
		{name: "ShardMalformed", steps: ident(func(d map[string]any) { d["shard"] = []int{0} }), code: 4010},
		{name: "ShardingRequired", opts: &mockdiscord.Options{Guilds: 5, MaxGuildsPerShard: 2}, steps: ident(func(d map[string]any) {}), code: 4011},
		{name: "UndefinedIntent", steps: ident(func(d map[string]any) { d["intents"] = 1 << 17 }), code: 4013},
		{name: "PrivilegedIntentNotAllowed", opts: &mockdiscord.Options{AllowedPrivilegedIntents: mockdiscord.NoPrivilegedIntents},
			steps: ident(func(d map[string]any) { d["intents"] = mockdiscord.IntentMessageContent }), code: 4014},
		{name: "OtherPrivilegedIntentNotAllowed", opts: &mockdiscord.Options{AllowedPrivilegedIntents: mockdiscord.IntentGuildMembers},
			steps: ident(func(d map[string]any) {
				d["intents"] = mockdiscord.IntentGuildMembers | mockdiscord.IntentGuildPresences
			}), code: 4014},
		{name: "NoIntents", steps: ident(func(d map[string]any) { delete(d, "intents") }), code: 4001},
		{name: "StringIntents", steps: ident(func(d map[string]any) { d["intents"] = "513" }), code: 4001},
		{name: "NoProperties", steps: ident(func(d map[string]any) { delete(d, "properties") }), code: 4001},
		{name: "LargeThreshold", steps: ident(func(d map[string]any) { d["large_threshold"] = 251 }), code: 4001},
		{name: "CompressNotBool", steps: ident(func(d map[string]any) { d["compress"] = "yes" }), code: 4001},
		{name: "BadPresence", steps: ident(func(d map[string]any) { d["presence"] = "online" }), code: 4001},
		{name: "BadHeartbeat", steps: raw(`{"op":1,"d":"x"}`), code: 4001},
		{name: "BadPresenceUpdate", steps: identified(func(t *testing.T, e *env, c *gwc) {
			c.send(op(3, map[string]any{"since": nil, "activities": []any{map[string]any{"name": "x", "type": 9}}, "status": "online", "afk": false}))
		}), code: 4001},
		{name: "BadVoiceState", steps: identified(func(t *testing.T, e *env, c *gwc) {
			c.send(op(4, map[string]any{"guild_id": e.s.Guilds()[0], "self_mute": false, "self_deaf": false}))
		}), code: 4001},
		{name: "UnmaskedFrame", steps: func(t *testing.T, e *env, c *gwc) {
			if err := wsWriteUnmasked(c, `{"op":1,"d":null}`); err != nil {
				t.Fatal(err)
			}
		}, code: 1002},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bubble(t, tt.opts, func(t *testing.T, e *env) {
				c := dialGateway(t, e.s, "/gateway?v=10&encoding=json")
				c.expect(10)
				tt.steps(t, e, c)
				ce := c.expectClose(tt.code)
				if tt.code >= 4000 && ce.reason == "" {
					t.Errorf("close %d has no reason", tt.code)
				}
				var closes []mockdiscord.GatewayObservation
				for _, o := range obsOf(e.s, mockdiscord.ObserveClose) {
					if o.By == "server" && o.Code == tt.code {
						closes = append(closes, o)
					}
				}
				wantEqual(t, "server closes", len(closes), 1)
				v := e.s.GatewayViolations()
				if len(v) == 0 || !strings.Contains(v[len(v)-1], "(close "+strconv.Itoa(tt.code)+")") {
					t.Errorf("violations: got %q, want one ending in close %d", v, tt.code)
				}
			})
		})
	}
}

// strings4097 returns 4097 bytes of text.
func strings4097() string { return strings.Repeat("a", 4097) }

// wsWriteUnmasked writes a text frame without a mask, which a client must
// never do.
func wsWriteUnmasked(c *gwc, s string) error {
	return ws.WriteFrame(c.conn, ws.NewTextFrame([]byte(s)))
}

// TestGatewayPeerShapedIdentify sends IDENTIFYs shaped like those of
// widely used libraries, which Discord accepts.
func TestGatewayPeerShapedIdentify(t *testing.T) {
	bubble(t, &mockdiscord.Options{Guilds: 1, IdentifyInterval: -1}, func(t *testing.T, e *env) {
		for _, d := range []string{
			// discordgo: $-prefixed properties, a legacy presence, compress.
			`{"token":"Bot ` + e.s.Token() + `","properties":{"$os":"linux","$browser":"DiscordGo v0.29.0","$device":"","$referer":"","$referring_domain":""},` +
				`"compress":true,"large_threshold":250,"shard":[0,1],"presence":{"since":0,"game":{"name":"","type":0},"status":"","afk":false},"intents":3276799}`,
			// disgo-like: no shard, no presence.
			`{"token":"` + e.s.Token() + `","properties":{"os":"linux","browser":"disgo","device":"disgo"},"compress":false,"large_threshold":50,"intents":513}`,
			// arikawa-like: presence null.
			`{"token":"Bot ` + e.s.Token() + `","properties":{"os":"linux","browser":"Arikawa","device":"Arikawa"},"large_threshold":50,"presence":null,"intents":1}`,
		} {
			c := dialGateway(t, e.s, "/gateway/?v=9&encoding=json")
			c.expect(10)
			c.sendRaw(`{"op":2,"d":` + d + `}`)
			c.ready()
		}
		c := dialGateway(t, e.s, "/gateway?v=10")
		c.identify(e.s, 0, 1, mockdiscord.IntentGuilds)
		c.skipGuildCreates(1)
		// discordgo's status update with no game: activities null.
		c.sendRaw(`{"op":3,"d":{"since":null,"activities":null,"afk":false,"status":"online"}}`)
		marker(t, e, c, 0)
		wantEqual(t, "violations", e.s.GatewayViolations(), []string(nil))
	})
}

func TestGatewayPingLargeGuildAndOptions(t *testing.T) {
	opts := &mockdiscord.Options{Guilds: 1, MembersPerGuild: 60, ResumeGatewayURL: "ws://elsewhere.test/resume", ReplayBuffer: -1, HeartbeatInterval: hour}
	bubble(t, opts, func(t *testing.T, e *env) {
		c := dialGateway(t, e.s, "/gateway?v=10")
		c.expect(10)
		if err := ws.WriteFrame(c.conn, ws.MaskFrame(ws.NewPingFrame([]byte("hi")))); err != nil {
			t.Fatal(err)
		}
		f, err := readFrame(c.r)
		if err != nil || f.Header.OpCode != ws.OpPong || string(f.Payload) != "hi" {
			t.Fatalf("got %+v %q, %v; want pong hi", f.Header, f.Payload, err)
		}
		d := identifyData(e.s, 0, 1, mockdiscord.IntentGuilds)
		d["large_threshold"] = 50
		c.send(op(2, d))
		r := c.ready()
		wantEqual(t, "resume URL", r.ResumeGatewayURL, "ws://elsewhere.test/resume")
		gc := c.dispatch("GUILD_CREATE").obj(t)
		wantEqual(t, "large", gc["large"], any(true))
		wantEqual(t, "members above large_threshold", len(gc["members"].([]any)), 1)
		wantEqual(t, "member_count", gc["member_count"], any(float64(61)))
		// No replay buffer: a RESUME that missed nothing works, one that
		// missed something gets 4007.
		c.closeWith(4000)
		c2 := dialGateway(t, e.s, "/gateway-resume?v=10")
		c2.resume(e.s, r.SessionID, c.seq)
		c2.dispatch("RESUMED")
		_, _ = e.s.Stream(0, 1, "N")
		c2.dispatch("N")
		c2.closeWith(4000)
		_, _ = e.s.Stream(0, 1, "N")
		c3 := dialGateway(t, e.s, "/gateway-resume?v=10")
		c3.resume(e.s, r.SessionID, c2.seq)
		c3.expectClose(4007)
		wantEqual(t, "Members of an unknown guild", len(e.s.Members("1")), 0)
	})
}

func TestGatewayClientCloseWithoutCode(t *testing.T) {
	bubble(t, &mockdiscord.Options{Guilds: 1}, func(t *testing.T, e *env) {
		c, _ := identified(t, e, "/gateway?v=10")
		if err := ws.WriteFrame(c.conn, ws.MaskFrame(ws.NewCloseFrame(nil))); err != nil {
			t.Fatal(err)
		}
		f, err := readFrame(c.r)
		if err != nil || f.Header.OpCode != ws.OpClose || len(f.Payload) != 0 {
			t.Fatalf("got %+v %q, %v; want an empty close", f.Header, f.Payload, err)
		}
		cl := obsOf(e.s, mockdiscord.ObserveClose)
		wantEqual(t, "code", cl[0].Code, 1005)
		wantEqual(t, "resumable", len(e.s.Sessions()), 1)
	})
}
