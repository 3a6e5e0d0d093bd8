package reference_test

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
	reference "github.com/cordkit/cordkit/impl/default"
	"github.com/cordkit/cordkit/protocols"
)

// TestShardIdentifyReadyGuildCreates: HELLO, IDENTIFY with the documented
// fields, READY, then one GUILD_CREATE per guild, in order.
func TestShardIdentifyReadyGuildCreates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newGwEnv(t, &mockdiscord.Options{Guilds: 3})
		raw := record(t, e.raw, protocols.AnyEvent)
		evs := record(t, e.events, protocols.AnyEvent)
		sh := e.newShard(e.params(0, 1), reference.ShardOptions{})
		r := run(t.Context(), sh)
		r.waitReady(t, time.Minute)
		synctest.Wait()

		if got := evs.count("GUILD_CREATE"); got != 3 {
			t.Errorf("GUILD_CREATE events: got %d, want 3", got)
		}
		names := raw.names()
		if len(names) < 2 || names[0] != "HELLO" || names[1] != "READY" {
			t.Errorf("raw events start %v, want HELLO, READY", names)
		}
		st := sh.Status()
		if !st.Ready || st.Session.ID == "" || st.Session.ResumeURL != e.srv.ResumeGatewayURL() || st.Session.Seq != 4 {
			t.Errorf("Status() = %+v; want ready, a session, resume URL %s, seq 4", st, e.srv.ResumeGatewayURL())
		}
		ids := observations(e.srv, mockdiscord.ObserveIdentify)
		if len(ids) != 1 || !ids[0].Accepted || ids[0].Shard != 0 || ids[0].ShardCount != 1 {
			t.Errorf("identifies %+v, want one accepted for [0, 1]", ids)
		}
		conns := observations(e.srv, mockdiscord.ObserveConnect)
		if len(conns) != 1 || !strings.Contains(conns[0].Query, "v=10") || !strings.Contains(conns[0].Query, "encoding=json") {
			t.Errorf("connects %+v, want one with v=10&encoding=json", conns)
		}
		if err := r.stop(t, protocols.CloseNormal); err != nil {
			t.Errorf("Run after Close: %v", err)
		}
		noViolations(t, e.srv)
	})
}

// TestShardIdentifyPayload checks IDENTIFY's fields on the wire: the bare
// token, the properties, shard, intents, large_threshold, presence and
// compress.
func TestShardIdentifyPayload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newGwEnv(t, &mockdiscord.Options{Guilds: 4})
		p := e.params(2, 4)
		p.LargeThreshold = 100
		p.Presence = reference.Presence{Status: "idle", Activities: []reference.Activity{{Name: "tests", Type: 0}}}
		w := recordWire(&p)
		r := run(t.Context(), e.newShard(p, reference.ShardOptions{}))
		r.waitReady(t, time.Minute)

		ids := w.payloads(protocols.OpIdentify)
		if len(ids) != 1 {
			t.Fatalf("%d IDENTIFY payloads, want 1", len(ids))
		}
		d := ids[0]
		want := map[string]string{
			"token":           `"` + mockdiscord.DefaultToken + `"`,
			"properties":      `{"os":"` + runtime.GOOS + `","browser":"cordkit","device":"cordkit"}`,
			"shard":           `[2,4]`,
			"intents":         strconv.Itoa(int(protocols.IntentGuilds | protocols.IntentGuildMessages)),
			"large_threshold": `100`,
			"presence":        `{"since":null,"activities":[{"name":"tests","type":0}],"status":"idle","afk":false}`,
		}
		for k, v := range want {
			if got := string(d[k]); got != v {
				t.Errorf("IDENTIFY %s: got %s, want %s", k, got, v)
			}
		}
		if _, ok := d["compress"]; ok {
			t.Errorf("IDENTIFY has compress %s without payload compression", d["compress"])
		}
		if dialed := w.dialed(); len(dialed) != 1 || dialed[0] != e.srv.GatewayURL()+"?v=10&encoding=json" {
			t.Errorf("dialed %q, want %s?v=10&encoding=json", dialed, e.srv.GatewayURL())
		}
		r.stop(t, protocols.CloseNormal)
		noViolations(t, e.srv)
	})
}

// TestShardHeartbeatSchedule: the first heartbeat comes after interval ×
// jitter, then one every interval, each carrying the last sequence
// number; a server op 1 is answered at once without moving the schedule.
func TestShardHeartbeatSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		e := newGwEnv(t, &mockdiscord.Options{HeartbeatInterval: 10 * time.Second, Guilds: 3})
		p := e.params(0, 1)
		p.KeepAlive = reference.KeepAliveOptions{Jitter: func() float64 { return 0.25 }}.New()
		sh := e.newShard(p, reference.ShardOptions{})
		r := run(t.Context(), sh)
		r.waitReady(t, time.Minute)

		time.Sleep(15*time.Second - time.Since(start))
		inject(t, e.srv, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultRequestHeartbeat, Shard: 0})
		time.Sleep(30*time.Second - time.Since(start))
		synctest.Wait()

		beats := observations(e.srv, mockdiscord.ObserveHeartbeat)
		got := since(start, beats)
		want := []time.Duration{2500 * time.Millisecond, 12500 * time.Millisecond, 15 * time.Second, 22500 * time.Millisecond}
		if !slices.Equal(got, want) {
			t.Errorf("heartbeats at %v, want %v", got, want)
		}
		for _, b := range beats {
			if b.Seq != 4 || !b.Acked {
				t.Errorf("heartbeat %+v: want seq 4 (READY + 3 GUILD_CREATE), acknowledged", b)
			}
		}
		if st := sh.Status(); st.Latency < 0 || st.Latency > time.Second {
			t.Errorf("latency %v, want a small round trip", st.Latency)
		}
		r.stop(t, protocols.CloseNormal)
		noViolations(t, e.srv)
	})
}

// slowIdentify delays the first non-heartbeat payload, so that a
// heartbeat asked for before HELLO goes out before IDENTIFY.
type slowIdentify struct {
	protocols.SendLimiter
	once sync.Once
}

func (s *slowIdentify) Wait(ctx context.Context, heartbeat bool) error {
	if !heartbeat {
		s.once.Do(func() { time.Sleep(time.Second) })
	}
	return s.SendLimiter.Wait(ctx, heartbeat)
}

// TestShardHeartbeatNullBeforeDispatch: a server op 1 before any dispatch
// is answered with {"op":1,"d":null}, not a panic or a 0.
func TestShardHeartbeatNullBeforeDispatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newGwEnv(t, &mockdiscord.Options{HeartbeatInterval: 40 * time.Second})
		inject(t, e.srv, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultRequestHeartbeat, BeforeHello: true})
		p := e.params(0, 1)
		p.KeepAlive = reference.KeepAliveOptions{Jitter: func() float64 { return 0.9 }}.New()
		p.SendLimiter = &slowIdentify{SendLimiter: reference.NewSendLimiter()}
		w := recordWire(&p)
		r := run(t.Context(), e.newShard(p, reference.ShardOptions{}))
		r.waitReady(t, time.Minute)

		beats := observations(e.srv, mockdiscord.ObserveHeartbeat)
		if len(beats) != 1 || beats[0].Seq != -1 {
			t.Errorf("heartbeats %+v, want one with a null seq", beats)
		}
		if hb := w.payloads(protocols.OpHeartbeat); len(hb) != 1 || string(hb[0][""]) != "null" {
			t.Errorf("heartbeat payloads %v, want d null", hb)
		}
		r.stop(t, protocols.CloseNormal)
		noViolations(t, e.srv)
	})
}

// TestShardZombieResumes: when ACKs stop, the shard closes with a code
// other than 1000/1001 at the next heartbeat and resumes on the resume
// URL.
func TestShardZombieResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		e := newGwEnv(t, &mockdiscord.Options{HeartbeatInterval: 10 * time.Second})
		p := e.params(0, 1)
		p.KeepAlive = reference.KeepAliveOptions{Jitter: func() float64 { return 0 }}.New()
		w := recordWire(&p)
		r := run(t.Context(), e.newShard(p, reference.ShardOptions{}))
		r.waitReady(t, time.Minute)
		time.Sleep(time.Second)
		inject(t, e.srv, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultStopAck, Shard: 0})
		r.waitReady(t, time.Minute)

		closes := clientCloses(e.srv)
		if len(closes) != 1 || closes[0].Code != int(reference.ReconnectCloseCode) || closes[0].Time.Sub(start) != 20*time.Second {
			t.Errorf("client closes %+v, want one with %d at 20s (the second unacknowledged beat)", closes, reference.ReconnectCloseCode)
		}
		assertResumedOn(t, e.srv, 2, "/gateway-resume")
		if ids := observations(e.srv, mockdiscord.ObserveIdentify); len(ids) != 1 {
			t.Errorf("%d identifies, want 1", len(ids))
		}
		if d := w.dialed(); len(d) != 2 || !strings.HasPrefix(d[1], e.srv.ResumeGatewayURL()+"?v=10&encoding=json") {
			t.Errorf("dialed %q, want the resume URL with the same query second", d)
		}
		r.stop(t, protocols.CloseNormal)
		noViolations(t, e.srv)
	})
}

// assertResumedOn checks that connection conn went to path and resumed.
func assertResumedOn(t *testing.T, srv *mockdiscord.Server, conn int, path string) {
	t.Helper()
	connects := observations(srv, mockdiscord.ObserveConnect)
	if len(connects) < conn || connects[conn-1].Path != path {
		t.Errorf("connects %+v: want connection %d on %s", connects, conn, path)
	}
	resumes := byConn(observations(srv, mockdiscord.ObserveResume), conn)
	if len(resumes) != 1 || !resumes[0].Accepted {
		t.Errorf("resumes on connection %d: %+v, want one accepted", conn, resumes)
	}
}

// TestShardReconnectOpcode: op 7 makes the shard close with a resumable
// code and resume on the resume URL; op 7 before HELLO makes it
// reconnect at once.
func TestShardReconnectOpcode(t *testing.T) {
	t.Run("AfterReady", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newGwEnv(t, &mockdiscord.Options{})
			evs := record(t, e.events, "RESUMED")
			r := run(t.Context(), e.newShard(e.params(0, 1), reference.ShardOptions{}))
			r.waitReady(t, time.Minute)
			start := time.Now()
			inject(t, e.srv, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultReconnect, Shard: 0})
			r.waitReady(t, time.Minute)
			if d := time.Since(start); d > 0 {
				t.Errorf("resumed %v after op 7, want at once (no backoff after a healthy connection)", d)
			}
			if c := clientCloses(e.srv); len(c) != 1 || c[0].Code != int(reference.ReconnectCloseCode) {
				t.Errorf("client closes %+v, want one with %d", c, reference.ReconnectCloseCode)
			}
			assertResumedOn(t, e.srv, 2, "/gateway-resume")
			synctest.Wait()
			if n := len(evs.all()); n != 1 {
				t.Errorf("%d RESUMED events, want 1", n)
			}
			r.stop(t, protocols.CloseNormal)
			noViolations(t, e.srv)
		})
	})
	t.Run("BeforeHello", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newGwEnv(t, &mockdiscord.Options{})
			inject(t, e.srv, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultReconnect, BeforeHello: true})
			r := run(t.Context(), e.newShard(e.params(0, 1), reference.ShardOptions{}))
			r.waitReady(t, time.Minute)
			if n := len(observations(e.srv, mockdiscord.ObserveConnect)); n != 2 {
				t.Errorf("%d connections, want 2", n)
			}
			if ids := observations(e.srv, mockdiscord.ObserveIdentify); len(ids) != 1 || ids[0].Conn != 2 {
				t.Errorf("identifies %+v, want one, on connection 2", ids)
			}
			r.stop(t, protocols.CloseNormal)
			noViolations(t, e.srv)
		})
	})
}

// TestShardInvalidSession: op 9 d=true resumes; d=false waits 1-5 s and
// identifies afresh, through the identify limiter.
func TestShardInvalidSession(t *testing.T) {
	t.Run("Resumable", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newGwEnv(t, &mockdiscord.Options{})
			r := run(t.Context(), e.newShard(e.params(0, 1), reference.ShardOptions{}))
			r.waitReady(t, time.Minute)
			inject(t, e.srv, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultInvalidSession, Shard: 0, Resumable: true})
			r.waitReady(t, time.Minute)
			assertResumedOn(t, e.srv, 2, "/gateway-resume")
			if n := len(observations(e.srv, mockdiscord.ObserveIdentify)); n != 1 {
				t.Errorf("%d identifies, want 1", n)
			}
			r.stop(t, protocols.CloseNormal)
			noViolations(t, e.srv)
		})
	})
	t.Run("NotResumable", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newGwEnv(t, &mockdiscord.Options{})
			sh := e.newShard(e.params(0, 1), reference.ShardOptions{})
			r := run(t.Context(), sh)
			r.waitReady(t, time.Minute)
			first := sh.Status().Session.ID
			time.Sleep(10 * time.Second)
			at := time.Now()
			inject(t, e.srv, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultInvalidSession, Shard: 0})
			r.waitReady(t, time.Minute)

			ids := observations(e.srv, mockdiscord.ObserveIdentify)
			if len(ids) != 2 {
				t.Fatalf("%d identifies, want 2", len(ids))
			}
			if d := ids[1].Time.Sub(at); d < time.Second || d > 5*time.Second {
				t.Errorf("identified %v after op 9, want 1-5 s", d)
			}
			connects := observations(e.srv, mockdiscord.ObserveConnect)
			if last := connects[len(connects)-1]; last.Path != "/gateway" {
				t.Errorf("new session on %s, want the main URL /gateway", last.Path)
			}
			if c := clientCloses(e.srv); len(c) != 1 || c[0].Code == 1000 || c[0].Code == 1001 {
				t.Errorf("client closes %+v, want one, not 1000/1001", c)
			}
			if id := sh.Status().Session.ID; id == first || id == "" {
				t.Errorf("session %q after op 9, want a new one (was %q)", id, first)
			}
			r.stop(t, protocols.CloseNormal)
			noViolations(t, e.srv)
		})
	})
	t.Run("NoIdentifyStorm", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			e := newGwEnv(t, &mockdiscord.Options{})
			for range 50 {
				inject(t, e.srv, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultInvalidSession, Shard: 0, Next: true})
			}
			r := run(t.Context(), e.newShard(e.params(0, 1), reference.ShardOptions{}))
			time.Sleep(15 * time.Second)
			ids := observations(e.srv, mockdiscord.ObserveIdentify)
			// One identify per 5 s at most: t = 0, 5, 10, 15.
			if len(ids) < 2 || len(ids) > 4 {
				t.Errorf("%d identifies in 15 s at %v, want 2-4", len(ids), since(start, ids))
			}
			for i := 1; i < len(ids); i++ {
				if d := ids[i].Time.Sub(ids[i-1].Time); d < reference.IdentifyInterval {
					t.Errorf("identifies %d and %d %v apart, want at least %v", i-1, i, d, reference.IdentifyInterval)
				}
			}
			r.stop(t, protocols.CloseNormal)
			noViolations(t, e.srv)
		})
	})
}

// TestShardCloseCodes: a close by Discord with each code of the close code
// table leads to a resume, a new session, or the end of Run with the
// typed error and no second connection.
func TestShardCloseCodes(t *testing.T) {
	tests := []struct {
		code     int
		action   protocols.CloseAction
		sentinel error
	}{
		{1000, protocols.ActionResume, nil},
		{1001, protocols.ActionResume, nil},
		{4000, protocols.ActionResume, nil},
		{4001, protocols.ActionResume, nil},
		{4002, protocols.ActionResume, nil},
		{4003, protocols.ActionIdentify, nil},
		{4004, protocols.ActionStop, protocols.ErrInvalidToken},
		{4005, protocols.ActionResume, nil},
		{4007, protocols.ActionIdentify, nil},
		{4008, protocols.ActionResume, nil},
		{4009, protocols.ActionIdentify, nil},
		{4010, protocols.ActionStop, protocols.ErrInvalidShard},
		{4011, protocols.ActionStop, protocols.ErrShardingRequired},
		{4012, protocols.ActionStop, protocols.ErrInvalidAPIVersion},
		{4013, protocols.ActionStop, protocols.ErrInvalidIntents},
		{4014, protocols.ActionStop, protocols.ErrDisallowedIntents},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.code), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newGwEnv(t, &mockdiscord.Options{})
				sh := e.newShard(e.params(0, 1), reference.ShardOptions{})
				r := run(t.Context(), sh)
				r.waitReady(t, time.Minute)
				inject(t, e.srv, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultClose, Shard: 0, Code: tt.code})

				if tt.action == protocols.ActionStop {
					<-r.done
					var ce *protocols.CloseError
					if !errors.As(r.err, &ce) || int(ce.Code) != tt.code || !errors.Is(r.err, tt.sentinel) {
						t.Errorf("Run: %v; want a *CloseError %d matching %v", r.err, tt.code, tt.sentinel)
					}
					time.Sleep(time.Minute) // nothing reconnects
					if n := len(observations(e.srv, mockdiscord.ObserveConnect)); n != 1 {
						t.Errorf("%d connections, want exactly 1", n)
					}
					if _, err := e.sessions.Load(t.Context(), 0, 1); !errors.Is(err, protocols.ErrNoSession) {
						t.Errorf("stored session after a fatal close: %v, want none", err)
					}
					return
				}
				r.waitReady(t, time.Minute)
				ids := observations(e.srv, mockdiscord.ObserveIdentify)
				switch tt.action {
				case protocols.ActionResume:
					assertResumedOn(t, e.srv, 2, "/gateway-resume")
					if len(ids) != 1 {
						t.Errorf("%d identifies, want 1", len(ids))
					}
				case protocols.ActionIdentify:
					if len(ids) != 2 || ids[1].Conn != 2 || !ids[1].Accepted {
						t.Errorf("identifies %+v, want a second one on connection 2", ids)
					}
					if c := observations(e.srv, mockdiscord.ObserveConnect); c[1].Path != "/gateway" {
						t.Errorf("new session on %s, want /gateway", c[1].Path)
					}
					if n := len(observations(e.srv, mockdiscord.ObserveResume)); n != 0 {
						t.Errorf("%d resumes, want none", n)
					}
				}
				r.stop(t, protocols.CloseNormal)
				noViolations(t, e.srv)
			})
		})
	}
}

// TestShardFatalAtIdentify: settings Discord refuses end Run with the
// typed error after exactly one connection.
func TestShardFatalAtIdentify(t *testing.T) {
	tests := []struct {
		name     string
		opts     mockdiscord.Options
		edit     func(*protocols.ShardParams)
		sentinel error
	}{
		{"InvalidToken", mockdiscord.Options{}, func(p *protocols.ShardParams) {
			p.Token = protocols.BotToken("MTExMTExMTExMTExMTExMTEx.R3ZhYg.s3cr3t-Xyz")
		}, protocols.ErrInvalidToken},
		{"DisallowedIntents", mockdiscord.Options{AllowedPrivilegedIntents: mockdiscord.NoPrivilegedIntents}, func(p *protocols.ShardParams) {
			p.Intents |= protocols.IntentMessageContent
		}, protocols.ErrDisallowedIntents},
		{"InvalidAPIVersion", mockdiscord.Options{}, func(p *protocols.ShardParams) { p.Version = 8 }, protocols.ErrInvalidAPIVersion},
		{"ShardingRequired", mockdiscord.Options{Guilds: 3, MaxGuildsPerShard: 2}, func(*protocols.ShardParams) {}, protocols.ErrShardingRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newGwEnv(t, &tt.opts)
				p := e.params(0, 1)
				tt.edit(&p)
				r := run(t.Context(), e.newShard(p, reference.ShardOptions{}))
				<-r.done
				if !errors.Is(r.err, tt.sentinel) {
					t.Errorf("Run: %v, want %v", r.err, tt.sentinel)
				}
				time.Sleep(time.Minute)
				if n := len(observations(e.srv, mockdiscord.ObserveConnect)); n != 1 {
					t.Errorf("%d connections, want exactly 1", n)
				}
				for _, secret := range []string{"s3cr3t-Xyz", "mock-token_for-tests"} {
					if strings.Contains(r.err.Error(), secret) || strings.Contains(e.logs.String(), secret) {
						t.Errorf("the token leaked into the error or the logs")
					}
				}
			})
		})
	}
}

// TestShardCompression: zlib-stream (one context per connection, a
// payload split over several messages) and payload compression.
func TestShardCompression(t *testing.T) {
	tests := []struct {
		name      string
		mode      protocols.Compression
		transport string
		compress  bool
	}{
		{"ZlibStream", protocols.CompressZlibStream, "zlib-stream", false},
		{"ZlibPayload", protocols.CompressZlibPayload, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newGwEnv(t, &mockdiscord.Options{Guilds: 3, PayloadCompressThreshold: 200})
				evs := record(t, e.events, "TEST_EVENT")
				p := e.params(0, 1)
				p.Compression = tt.mode
				w := recordWire(&p)
				r := run(t.Context(), e.newShard(p, reference.ShardOptions{}))
				r.waitReady(t, time.Minute)
				for i := range 20 {
					inject(t, e.srv, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultSplit, Shard: 0, Parts: 2 + i%3, AfterDispatches: 1 + 5*i})
				}
				big := strings.Repeat("x", 300) // above the payload threshold: compressed
				for i := range 100 {
					data := map[string]any{"n": i + 1}
					if i%2 == 0 {
						data["pad"] = big
					}
					if _, err := e.srv.DispatchToShard(0, "TEST_EVENT", data); err != nil {
						t.Fatal(err)
					}
				}
				// A new connection starts a new zlib context.
				inject(t, e.srv, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultDrop, Shard: 0})
				r.waitReady(t, time.Minute)
				if _, err := e.srv.DispatchToShard(0, "TEST_EVENT", map[string]any{"n": 101}); err != nil {
					t.Fatal(err)
				}
				synctest.Wait()

				got := evs.all()
				if len(got) != 101 {
					t.Fatalf("%d events, want 101", len(got))
				}
				for i, ev := range got {
					var d struct{ N int }
					if err := json.Unmarshal(ev.Data, &d); err != nil || d.N != i+1 {
						t.Fatalf("event %d: %s, want n %d", i, ev.Data, i+1)
					}
				}
				for _, c := range observations(e.srv, mockdiscord.ObserveConnect) {
					if c.Transport != tt.transport {
						t.Errorf("connection %d transport %q, want %q", c.Conn, c.Transport, tt.transport)
					}
				}
				ids := w.payloads(protocols.OpIdentify)
				if len(ids) != 1 || (string(ids[0]["compress"]) == "true") != tt.compress {
					t.Errorf("IDENTIFY compress %s, want %v", ids[0]["compress"], tt.compress)
				}
				r.stop(t, protocols.CloseNormal)
				noViolations(t, e.srv)
			})
		})
	}
}

// TestShardResumeAfterRestart: a shard closed with a resumable code
// leaves its session in a file; a new shard in a new "process" reading the
// same file resumes it and gets what it missed. Close(1000) deletes it.
func TestShardResumeAfterRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "sessions.json")
		e := newGwEnv(t, &mockdiscord.Options{})
		evs := record(t, e.events, "TEST_EVENT")

		start := func() (*running, protocols.Shard) {
			store, err := reference.NewFileSessionStore(path)
			if err != nil {
				t.Fatal(err)
			}
			p := e.params(0, 1)
			p.Sessions = store
			p.KeepAlive = reference.NewKeepAlive()
			sh := e.newShard(p, reference.ShardOptions{})
			return run(t.Context(), sh), sh
		}

		r1, sh1 := start()
		r1.waitReady(t, time.Minute)
		first := sh1.Status().Session
		if err := r1.stop(t, reference.ReconnectCloseCode); err != nil {
			t.Fatalf("Run: %v", err)
		}
		// Events while the process is down are kept for the session.
		if _, err := e.srv.Stream(0, 5, "TEST_EVENT"); err != nil {
			t.Fatal(err)
		}

		r2, sh2 := start()
		r2.waitReady(t, time.Minute)
		synctest.Wait()
		if got := sh2.Status().Session.ID; got != first.ID {
			t.Errorf("session after restart %q, want the stored %q", got, first.ID)
		}
		assertResumedOn(t, e.srv, 2, "/gateway-resume")
		if n := len(evs.all()); n != 5 {
			t.Errorf("%d events replayed, want 5", n)
		}
		if n := len(observations(e.srv, mockdiscord.ObserveIdentify)); n != 1 {
			t.Errorf("%d identifies, want 1", n)
		}

		if err := r2.stop(t, protocols.CloseNormal); err != nil {
			t.Fatalf("Run: %v", err)
		}
		store, err := reference.NewFileSessionStore(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Load(t.Context(), 0, 1); !errors.Is(err, protocols.ErrNoSession) {
			t.Errorf("session after Close(1000): %v, want none", err)
		}
		noViolations(t, e.srv)
	})
}

// TestShardResumeURLFallback: when the resume URL refuses the connection,
// the shard resumes on the main URL; when a resume is refused with op 9,
// it identifies there.
func TestShardResumeURLFallback(t *testing.T) {
	t.Run("DialFails", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newGwEnv(t, &mockdiscord.Options{})
			r := run(t.Context(), e.newShard(e.params(0, 1), reference.ShardOptions{}))
			r.waitReady(t, time.Minute)
			inject(t, e.srv, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultRefuseResume})
			inject(t, e.srv, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultDrop, Shard: 0})
			r.waitReady(t, time.Minute)
			if refused := observations(e.srv, mockdiscord.ObserveRefused); len(refused) != 1 || refused[0].Path != "/gateway-resume" {
				t.Errorf("refused upgrades %+v, want one on /gateway-resume", refused)
			}
			assertResumedOn(t, e.srv, 2, "/gateway")
			r.stop(t, protocols.CloseNormal)
			noViolations(t, e.srv)
		})
	})
	t.Run("ResumeRefused", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newGwEnv(t, &mockdiscord.Options{SessionTTL: time.Second})
			r := run(t.Context(), e.newShard(e.params(0, 1), reference.ShardOptions{BackoffBase: 4 * time.Second}))
			r.waitReady(t, time.Minute)
			// The session expires during the reconnect's backoff.
			inject(t, e.srv, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultDrop, Shard: 0})
			r.waitReady(t, time.Minute)
			connects := observations(e.srv, mockdiscord.ObserveConnect)
			resumes := observations(e.srv, mockdiscord.ObserveResume)
			ids := observations(e.srv, mockdiscord.ObserveIdentify)
			if len(resumes) != 1 || resumes[0].Accepted || resumes[0].Conn != 2 {
				t.Errorf("resumes %+v, want one refused on connection 2", resumes)
			}
			if len(ids) != 2 || ids[1].Conn != 3 || connects[2].Path != "/gateway" {
				t.Errorf("identifies %+v, want a second on connection 3 to /gateway", ids)
			}
			r.stop(t, protocols.CloseNormal)
			noViolations(t, e.srv)
		})
	})
}

// TestShardExactlyOnceAcrossDisconnects: 10,000 numbered events while the
// connection drops 20 times at random points; the handler sees each
// exactly once, in order.
func TestShardExactlyOnceAcrossDisconnects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const total, drops = 10000, 20
		e := newGwEnv(t, &mockdiscord.Options{HeartbeatInterval: 5 * time.Second})
		var (
			mu   sync.Mutex
			seen []int
		)
		e.events.Listen("TEST_EVENT", func(ev protocols.Event) {
			var d struct{ N int }
			if err := json.Unmarshal(ev.Data, &d); err != nil {
				t.Errorf("event %s: %v", ev.Data, err)
			}
			mu.Lock()
			seen = append(seen, d.N)
			mu.Unlock()
		})
		r := run(t.Context(), e.newShard(e.params(0, 1), reference.ShardOptions{}))
		r.waitReady(t, time.Minute)

		rng := rand.New(rand.NewPCG(1, 2))
		batch := total / (drops + 1)
		next := 1
		for i := 0; next <= total; i++ {
			n := min(batch, total-next+1)
			if i < drops {
				inject(t, e.srv, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultDrop, Shard: 0, AfterDispatches: 1 + rng.IntN(n)})
			}
			for k := range n {
				if _, err := e.srv.DispatchToShard(0, "TEST_EVENT", map[string]int{"n": next + k}); err != nil {
					t.Fatal(err)
				}
			}
			next += n
			if i < drops {
				r.waitReady(t, time.Minute)
			}
		}
		synctest.Wait()

		mu.Lock()
		defer mu.Unlock()
		if len(seen) != total {
			t.Errorf("handler saw %d events, want %d", len(seen), total)
		}
		for i, n := range seen {
			if n != i+1 {
				t.Fatalf("event %d is n=%d, want %d (lost, duplicated or out of order)", i, n, i+1)
			}
		}
		if n := len(observations(e.srv, mockdiscord.ObserveResume)); n != drops {
			t.Errorf("%d resumes, want %d", n, drops)
		}
		r.stop(t, protocols.CloseNormal)
		noViolations(t, e.srv)
	})
}

// TestShardSendLimit: 200 presence updates and 200 member requests sent
// at once never exceed 120 payloads per 60 s on the connection (heartbeats
// included), nor 5 presence updates per 20 s, and all go out. (Discord's
// heartbeat interval, 41.25 s: the reference SendLimiter keeps room for
// the heartbeats of intervals of 30 s and more.)
func TestShardSendLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newGwEnv(t, &mockdiscord.Options{})
		sh := e.newShard(e.params(0, 1), reference.ShardOptions{})
		r := run(t.Context(), sh)
		r.waitReady(t, time.Minute)
		guild := e.srv.Guilds()[0]

		var wg sync.WaitGroup
		for i := range 200 {
			wg.Go(func() {
				p := reference.Presence{Status: "online", Activities: []reference.Activity{{Name: "game " + strconv.Itoa(i), Type: 0}}}
				if err := reference.UpdatePresence(t.Context(), sh, p); err != nil {
					t.Errorf("UpdatePresence: %v", err)
				}
			})
			wg.Go(func() {
				d := map[string]any{"guild_id": guild, "query": "member-", "limit": 1}
				if err := sh.Send(t.Context(), protocols.OpRequestGuildMembers, d); err != nil {
					t.Errorf("Send op 8: %v", err)
				}
			})
		}
		wg.Wait()

		synctest.Wait()
		if n := len(observations(e.srv, mockdiscord.ObservePresence)); n != 200 {
			t.Errorf("%d presence updates arrived, want 200", n)
		}
		if n := len(observations(e.srv, mockdiscord.ObserveRequestMembers)); n != 200 {
			t.Errorf("%d member requests arrived, want 200", n)
		}
		received := observations(e.srv, mockdiscord.ObserveReceive)
		for i := range received {
			j := i
			n := 0
			for j < len(received) && received[j].Time.Sub(received[i].Time) < time.Minute {
				if received[j].Conn == received[i].Conn {
					n++
				}
				j++
			}
			if n > reference.SendLimit {
				t.Fatalf("%d payloads in the minute after %v", n, received[i].Time)
			}
		}
		if n := len(observations(e.srv, mockdiscord.ObserveConnect)); n != 1 {
			t.Errorf("%d connections, want 1 (no 4008)", n)
		}
		r.stop(t, protocols.CloseNormal)
		noViolations(t, e.srv)
	})
}

// TestShardAcksNotStarvedBySlowHandlers: a burst of events whose handler
// takes far longer than the heartbeat interval does not make the shard
// declare its connection a zombie: ACKs are read behind the burst.
func TestShardAcksNotStarvedBySlowHandlers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newGwEnv(t, &mockdiscord.Options{HeartbeatInterval: time.Second, Guilds: 1})
		var handled atomic.Int64
		e.events.Listen("GUILD_CREATE", func(protocols.Event) {
			time.Sleep(100 * time.Millisecond) // 1000 × 100 ms = 100 heartbeat intervals
			handled.Add(1)
		})
		r := run(t.Context(), e.newShard(e.params(0, 1), reference.ShardOptions{}))
		r.waitReady(t, time.Minute)
		for i := range 1000 {
			if _, err := e.srv.DispatchToShard(0, "GUILD_CREATE", map[string]any{"id": strconv.Itoa(i), "pad": strings.Repeat("x", 1000)}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(200 * time.Second)
		if n := handled.Load(); n != 1001 {
			t.Errorf("handled %d GUILD_CREATEs, want 1001", n)
		}
		if n := len(observations(e.srv, mockdiscord.ObserveConnect)); n != 1 {
			t.Errorf("%d connections, want 1: a slow handler must not look like a zombie", n)
		}
		for _, b := range observations(e.srv, mockdiscord.ObserveHeartbeat) {
			if !b.Acked {
				t.Errorf("heartbeat %+v not acknowledged", b)
			}
		}
		r.stop(t, protocols.CloseNormal)
		noViolations(t, e.srv)
	})
}

// TestShardClose: Close ends Run with nil and every goroutine (the bubble
// checks); it is idempotent; it works from a handler; later calls fail
// with ErrClosed; a ctx end keeps the session resumable.
func TestShardClose(t *testing.T) {
	t.Run("FromHandler", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newGwEnv(t, &mockdiscord.Options{Guilds: 2})
			sh := e.newShard(e.params(0, 1), reference.ShardOptions{})
			e.events.Listen("GUILD_CREATE", func(protocols.Event) { _ = sh.Close(protocols.CloseNormal) })
			r := run(t.Context(), sh)
			<-r.done
			if r.err != nil {
				t.Errorf("Run: %v, want nil", r.err)
			}
			if c := clientCloses(e.srv); len(c) != 1 || c[0].Code != 1000 {
				t.Errorf("client closes %+v, want one with 1000", c)
			}
			if err := sh.Close(protocols.CloseNormal); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if err := sh.Run(t.Context(), nil); !errors.Is(err, protocols.ErrClosed) {
				t.Errorf("Run after Close: %v, want ErrClosed", err)
			}
			if err := sh.Send(t.Context(), protocols.OpPresenceUpdate, nil); !errors.Is(err, protocols.ErrClosed) {
				t.Errorf("Send after Close: %v, want ErrClosed", err)
			}
			if len(e.srv.Sessions()) != 0 {
				t.Errorf("sessions %+v, want none after 1000", e.srv.Sessions())
			}
		})
	})
	t.Run("ContextEnd", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newGwEnv(t, &mockdiscord.Options{})
			sh := e.newShard(e.params(0, 1), reference.ShardOptions{})
			ctx, cancel := context.WithCancel(t.Context())
			r := run(ctx, sh)
			r.waitReady(t, time.Minute)
			cancel()
			<-r.done
			if r.err != nil {
				t.Errorf("Run: %v, want nil", r.err)
			}
			if c := clientCloses(e.srv); len(c) != 1 || c[0].Code != int(reference.ReconnectCloseCode) {
				t.Errorf("client closes %+v, want one with %d", c, reference.ReconnectCloseCode)
			}
			stored, err := e.sessions.Load(t.Context(), 0, 1)
			if err != nil || stored.ID != sh.Status().Session.ID || stored.Seq == 0 {
				t.Errorf("stored session %+v, %v; want the resumable session", stored, err)
			}
			if len(e.srv.Sessions()) != 1 {
				t.Errorf("mock sessions %+v, want the session alive", e.srv.Sessions())
			}
			// Run again resumes it.
			r = run(t.Context(), sh)
			r.waitReady(t, time.Minute)
			assertResumedOn(t, e.srv, 2, "/gateway-resume")
			r.stop(t, protocols.CloseNormal)
		})
	})
	t.Run("BeforeRun", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newGwEnv(t, &mockdiscord.Options{})
			if err := e.sessions.Save(t.Context(), protocols.Session{ShardID: 0, ShardCount: 1, ID: "old", Seq: 3}); err != nil {
				t.Fatal(err)
			}
			sh := e.newShard(e.params(0, 1), reference.ShardOptions{})
			if err := sh.Close(protocols.CloseNormal); err != nil {
				t.Fatal(err)
			}
			if err := sh.Run(t.Context(), nil); !errors.Is(err, protocols.ErrClosed) {
				t.Errorf("Run after Close: %v, want ErrClosed", err)
			}
			if _, err := e.sessions.Load(t.Context(), 0, 1); !errors.Is(err, protocols.ErrNoSession) {
				t.Errorf("stored session after Close(1000): %v, want none", err)
			}
		})
	})
	t.Run("WhileReconnecting", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newGwEnv(t, &mockdiscord.Options{})
			p := e.params(0, 1)
			p.Dialer = &recordingDialer{d: p.Dialer, w: &wire{}, fail: func(string) error { return errors.New("network down") }}
			sh := e.newShard(p, reference.ShardOptions{})
			r := run(t.Context(), sh)
			time.Sleep(10 * time.Second)
			if err := r.stop(t, reference.ReconnectCloseCode); err != nil {
				t.Errorf("Run: %v, want nil", err)
			}
		})
	})
}

// TestShardRequestGuildMembers gathers the chunks of a request by nonce,
// with not_found, and reports RATE_LIMITED.
func TestShardRequestGuildMembers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newGwEnv(t, &mockdiscord.Options{MembersPerGuild: 25, MemberChunkSize: 10})
		p := e.params(0, 1)
		p.Intents |= protocols.IntentGuildMembers
		sh := e.newShard(p, reference.ShardOptions{})
		r := run(t.Context(), sh)
		r.waitReady(t, time.Minute)
		guild := e.srv.Guilds()[0]
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()

		all, err := reference.RequestGuildMembers(ctx, sh, e.events, reference.GuildMembersRequest{GuildID: guild})
		if err != nil {
			t.Fatal(err)
		}
		if len(all.Members) != 26 {
			t.Errorf("%d members in all chunks, want 26 (the bot and 25)", len(all.Members))
		}

		members := e.srv.Members(guild)
		byID, err := reference.RequestGuildMembers(ctx, sh, e.events, reference.GuildMembersRequest{
			GuildID: guild, UserIDs: []string{members[1].ID, "123"}, Presences: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			User struct{ ID string } `json:"user"`
		}
		if len(byID.Members) != 1 || json.Unmarshal(byID.Members[0], &m) != nil || m.User.ID != members[1].ID {
			t.Errorf("members %s, want %s", byID.Members, members[1].ID)
		}
		if !slices.Equal(byID.NotFound, []string{"123"}) {
			t.Errorf("not found %q, want [123]", byID.NotFound)
		}

		_, err = reference.RequestGuildMembers(ctx, sh, e.events, reference.GuildMembersRequest{GuildID: guild})
		var rl *reference.MemberRequestRateLimitedError
		if !errors.As(err, &rl) || !errors.Is(err, protocols.ErrRateLimited) || rl.RetryAfter <= 0 {
			t.Errorf("second full request: %v, want a *MemberRequestRateLimitedError", err)
		}
		r.stop(t, protocols.CloseNormal)
		noViolations(t, e.srv)
	})
}

// TestShardUpdateVoiceState sends op 4 in Discord's shape, null channel to
// leave.
func TestShardUpdateVoiceState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newGwEnv(t, &mockdiscord.Options{})
		sh := e.newShard(e.params(0, 1), reference.ShardOptions{})
		r := run(t.Context(), sh)
		r.waitReady(t, time.Minute)
		guild, channel := e.srv.Guilds()[0], e.srv.Channels()[0]
		for _, v := range []reference.VoiceStateUpdate{{GuildID: guild, ChannelID: channel, SelfDeaf: true}, {GuildID: guild}} {
			if err := reference.UpdateVoiceState(t.Context(), sh, v); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		obs := observations(e.srv, mockdiscord.ObserveVoiceState)
		want := []string{
			`{"guild_id":"` + guild + `","channel_id":"` + channel + `","self_mute":false,"self_deaf":true}`,
			`{"guild_id":"` + guild + `","channel_id":null,"self_mute":false,"self_deaf":false}`,
		}
		if len(obs) != 2 || string(obs[0].Data) != want[0] || string(obs[1].Data) != want[1] {
			t.Errorf("voice states %+v, want %s", obs, want)
		}
		r.stop(t, protocols.CloseNormal)
		noViolations(t, e.srv)
	})
}

// TestShardSendChecks: a payload above 4096 bytes is refused with a typed
// error before anything is sent; Send waits for READY.
func TestShardSendChecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newGwEnv(t, &mockdiscord.Options{})
		sh := e.newShard(e.params(0, 1), reference.ShardOptions{})

		sent := make(chan error, 1)
		go func() {
			sent <- reference.UpdatePresence(t.Context(), sh, reference.Presence{Status: "dnd"})
		}()
		synctest.Wait()
		r := run(t.Context(), sh)
		if err := <-sent; err != nil {
			t.Errorf("Send before READY: %v, want it to wait and succeed", err)
		}
		synctest.Wait()
		if n := len(observations(e.srv, mockdiscord.ObservePresence)); n != 1 {
			t.Errorf("%d presence updates, want 1", n)
		}

		big := reference.Presence{Status: "online", Activities: []reference.Activity{{Name: strings.Repeat("x", 5000)}}}
		err := reference.UpdatePresence(t.Context(), sh, big)
		var tooLarge *reference.PayloadTooLargeError
		if !errors.As(err, &tooLarge) || tooLarge.Size <= reference.MaxPayloadSize || tooLarge.Op != protocols.OpPresenceUpdate {
			t.Errorf("UpdatePresence(5000 bytes): %v, want a *PayloadTooLargeError", err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := sh.Send(ctx, protocols.OpPresenceUpdate, reference.Presence{Status: "online"}); !errors.Is(err, context.Canceled) {
			t.Errorf("Send with a canceled context: %v, want context.Canceled", err)
		}
		synctest.Wait()
		if n := len(observations(e.srv, mockdiscord.ObservePresence)); n != 1 {
			t.Errorf("%d presence updates, want still 1", n)
		}
		r.stop(t, protocols.CloseNormal)
		noViolations(t, e.srv)
	})
}

// TestShardShouldReconnect is asked before every reconnect, with the
// cause; false ends Run with it.
func TestShardShouldReconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newGwEnv(t, &mockdiscord.Options{})
		p := e.params(0, 1)
		var causes []error
		p.ShouldReconnect = func(id int, err error) bool {
			causes = append(causes, err)
			return len(causes) < 2
		}
		r := run(t.Context(), e.newShard(p, reference.ShardOptions{}))
		r.waitReady(t, time.Minute)
		inject(t, e.srv, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultReconnect, Shard: 0})
		r.waitReady(t, time.Minute)
		inject(t, e.srv, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultClose, Shard: 0, Code: 4000})
		<-r.done
		if len(causes) != 2 || !errors.Is(causes[0], reference.ErrReconnectRequested) || protocols.CloseStatus(causes[1]) != 4000 {
			t.Errorf("causes %v, want op 7 then close 4000", causes)
		}
		if protocols.CloseStatus(r.err) != 4000 {
			t.Errorf("Run: %v, want the close 4000", r.err)
		}
		// The session stays stored: the stop was the caller's choice.
		if _, err := e.sessions.Load(t.Context(), 0, 1); err != nil {
			t.Errorf("stored session: %v", err)
		}
	})
}

// TestShardReconnectBackoff: failed connection attempts back off
// exponentially with jitter, up to the cap; READY resets the backoff. (The
// identify limiter is a no-op here: with the reference one, each attempt
// to identify also waits its 5 s turn.)
func TestShardReconnectBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newGwEnv(t, &mockdiscord.Options{IdentifyInterval: -1})
		p := e.params(0, 1)
		p.IdentifyLimiter = protocols.IdentifyLimiterFunc(func(context.Context, int) error { return nil })
		var (
			mu    sync.Mutex
			fails = 8
			at    []time.Time
		)
		w := &wire{}
		p.Dialer = &recordingDialer{d: p.Dialer, w: w, fail: func(string) error {
			mu.Lock()
			defer mu.Unlock()
			at = append(at, time.Now())
			if fails > 0 {
				fails--
				return errors.New("connection refused")
			}
			return nil
		}}
		o := reference.ShardOptions{BackoffBase: time.Second, BackoffMax: 30 * time.Second}
		r := run(t.Context(), e.newShard(p, o))
		r.waitReady(t, 10*time.Minute)
		mu.Lock()
		defer mu.Unlock()
		if len(at) != 9 {
			t.Fatalf("%d dials, want 9", len(at))
		}
		for i := 1; i < len(at); i++ {
			ceiling := min(time.Second<<(i-1), 30*time.Second)
			if d := at[i].Sub(at[i-1]); d < ceiling/2 || d > ceiling {
				t.Errorf("delay before attempt %d: %v, want %v-%v", i+1, d, ceiling/2, ceiling)
			}
		}
		at = at[:0]
		mu.Unlock()
		inject(t, e.srv, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultDrop, Shard: 0})
		r.waitReady(t, time.Minute)
		mu.Lock()
		if len(at) != 1 {
			t.Errorf("%d dials after a drop, want 1", len(at))
		}
		r.stop(t, protocols.CloseNormal)
	})
}

// TestShardMalformedPayloadResumes: a payload that does not decode drops
// the connection with a resumable code and resumes; nothing is lost.
func TestShardMalformedPayloadResumes(t *testing.T) {
	for _, kind := range []mockdiscord.GatewayFaultKind{mockdiscord.GatewayFaultMalformed, mockdiscord.GatewayFaultTruncated, mockdiscord.GatewayFaultBadFrame} {
		t.Run(string(kind), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newGwEnv(t, &mockdiscord.Options{})
				evs := record(t, e.events, "TEST_EVENT")
				p := e.params(0, 1)
				p.Compression = protocols.CompressZlibStream
				r := run(t.Context(), e.newShard(p, reference.ShardOptions{}))
				r.waitReady(t, time.Minute)
				inject(t, e.srv, mockdiscord.GatewayFault{Kind: kind, Shard: 0})
				if _, err := e.srv.Stream(0, 3, "TEST_EVENT"); err != nil {
					t.Fatal(err)
				}
				r.waitReady(t, time.Minute)
				synctest.Wait()
				if n := len(evs.all()); n != 3 {
					t.Errorf("%d events, want 3", n)
				}
				if n := len(observations(e.srv, mockdiscord.ObserveResume)); n != 1 {
					t.Errorf("%d resumes, want 1", n)
				}
				for _, c := range clientCloses(e.srv) {
					if c.Code == 1000 || c.Code == 1001 {
						t.Errorf("client closed with %d", c.Code)
					}
				}
				r.stop(t, protocols.CloseNormal)
			})
		})
	}
}

// TestIdentifySpacingCountsFromIdentify: the identify turn is taken after
// HELLO, so a slow dial cannot bring two identifies of one bucket closer
// than 5 s at Discord (found in review: waiting before the dial let shard
// 1 identify 0.5 s after a shard whose dial took 4.5 s, and Discord
// answered op 9, costing a session start).
func TestIdentifySpacingCountsFromIdentify(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newGwEnv(t, &mockdiscord.Options{Shards: 2, MaxConcurrency: 1})
		ready := make(chan int, 2)
		ran := make(chan error, 2)
		for id := range 2 {
			p := e.params(id, 2)
			if id == 0 {
				slow := &reference.Dialer{NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
					time.Sleep(4500 * time.Millisecond)
					return e.srv.NetDial(ctx, network, addr)
				}}
				p.Dialer = slow
			}
			sh := e.newShard(p, reference.ShardOptions{})
			go func() { ran <- sh.Run(t.Context(), func() { ready <- id }) }()
			t.Cleanup(func() { _ = sh.Close(protocols.CloseNormal) })
			time.Sleep(100 * time.Millisecond)
		}
		<-ready
		<-ready
		ids := observations(e.srv, mockdiscord.ObserveIdentify)
		if len(ids) != 2 {
			t.Fatalf("%d identifies, want 2 (one per shard, none refused)", len(ids))
		}
		if gap := ids[1].Time.Sub(ids[0].Time); gap < reference.IdentifyInterval {
			t.Errorf("identifies %v apart at the mock, want at least %v", gap, reference.IdentifyInterval)
		}
		noViolations(t, e.srv)
	})
}

// TestShardSavesProgressOnHeartbeat: after each heartbeat the store holds
// the sequence of the last event whose handlers returned, so a process
// that dies without closing resumes close to where it was, and never past
// an event it had not handled.
func TestShardSavesProgressOnHeartbeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newGwEnv(t, &mockdiscord.Options{HeartbeatInterval: 10 * time.Second})
		release := make(chan struct{})
		var handled atomic.Int64
		e.events.Listen("TEST_EVENT", func(ev protocols.Event) {
			if ev.Seq > 0 && handled.Load() == 5 {
				<-release // the sixth event's handler has not returned
			}
			handled.Add(1)
		})
		sh := e.newShard(e.params(0, 1), reference.ShardOptions{})
		r := run(t.Context(), sh)
		r.waitReady(t, time.Minute)
		for i := range 10 {
			if _, err := e.srv.DispatchToShard(0, "TEST_EVENT", map[string]any{"n": i}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(25 * time.Second) // two heartbeats
		synctest.Wait()
		stored, err := e.sessions.Load(t.Context(), 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		received := sh.Status().Session.Seq // the 10 TEST_EVENTs came last
		if want := received - 5; stored.Seq != want {
			t.Errorf("stored seq %d with 5 of 10 events handled, want %d (received up to %d)", stored.Seq, want, received)
		}
		close(release)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if stored, err = e.sessions.Load(t.Context(), 0, 1); err != nil || stored.Seq != received {
			t.Errorf("stored %+v, %v after every event was handled, want seq %d", stored, err, received)
		}
		r.stop(t, protocols.CloseNormal)
	})
}

// TestShardIdleRunsOneGoroutine: on an idle connection a shard runs its
// reading goroutine only: the dispatching goroutine ends when no payload
// came for a while (the next payload starts it again), and the reference
// keep-alive beats on timers.
func TestShardIdleRunsOneGoroutine(t *testing.T) {
	shardGoroutines := func() (n int, stacks string) {
		var b strings.Builder
		if err := pprof.Lookup("goroutine").WriteTo(&b, 2); err != nil {
			t.Fatal(err)
		}
		for _, g := range strings.Split(b.String(), "\n\n") {
			if strings.Contains(g, "cordkit/impl/default.(*") {
				n++
				stacks += g + "\n\n"
			}
		}
		return n, stacks
	}
	synctest.Test(t, func(t *testing.T) {
		e := newGwEnv(t, &mockdiscord.Options{})
		evs := record(t, e.events, "TEST_EVENT")
		p := e.params(0, 1)
		// Heartbeats at 0, 41.25 s, 82.5 s...: each ACK is a payload that
		// wakes the dispatching goroutine for a second, so the checks
		// below keep clear of them.
		p.KeepAlive = reference.KeepAliveOptions{Jitter: func() float64 { return 0 }}.New()
		sh := e.newShard(p, reference.ShardOptions{})
		r := run(t.Context(), sh)
		r.waitReady(t, time.Minute)
		for range 3 { // idle across heartbeats
			time.Sleep(50 * time.Second)
			synctest.Wait()
			if n, stacks := shardGoroutines(); n != 1 {
				t.Fatalf("an idle shard runs %d goroutines, want 1 (its reader):\n%s", n, stacks)
			}
		}
		for i := range 3 {
			if _, err := e.srv.DispatchToShard(0, "TEST_EVENT", map[string]any{"n": i}); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if got := len(evs.all()); got != 3 {
			t.Errorf("%d events handled, want 3", got)
		}
		r.stop(t, protocols.CloseNormal)
	})
}
