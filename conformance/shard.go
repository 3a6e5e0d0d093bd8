package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
	"github.com/cordkit/cordkit/protocols"
)

// Rule sentences of the Shard suite, quoted from package protocols.
const (
	ruleShRun           = "Run connects and keeps the shard connected until ctx ends (returning nil), Close is called, or a fatal close code ends it (returning the *CloseError)."
	ruleShReadyCallback = "ready, when not nil, is called each time the shard becomes ready."
	ruleShSend          = "Send sends one payload, waiting for the send limiter."
	ruleShClose         = "Close closes the connection with code and ends Run."
	ruleShCloseCodes    = "Codes 1000 and 1001 end the session; other codes keep it resumable."
	ruleShStatusReady   = "Ready reports that the shard has received READY or RESUMED on its current connection."
	ruleShAction        = "Action returns what to do after a close with c, following Discord's close code table: 4004 and 4010-4014 stop; 4003, 4007 and 4009 start a new session; every other code, and a drop with no code, resumes."
	ruleShActionStop    = "ActionStop ends the shard with a typed error: reconnecting cannot help."
	ruleShHandlers      = "A shard calls handlers from one goroutine, in the order the events arrived, apart from the goroutine that reads the connection, so heartbeat ACKs never wait for a handler; but the shard's later events do, so a handler must not block for long."
	ruleShEventShard    = "Shard is the receiving shard's ID."
	ruleShEventsRaw     = "Events receives dispatches by name; Raw receives every payload by opcode name."
	ruleShHandshake     = "HandshakeTimeout bounds each dial plus HELLO."
	ruleShShouldRecon   = "ShouldReconnect, when not nil, is asked before every reconnect; false ends Run with err."
	ruleShRestart       = "SessionStore keeps sessions so that a restarted process resumes instead of identifying."
	ruleShZlibStream    = "CompressZlibStream is transport compression (?compress=zlib-stream): one zlib context spans the whole connection, and a message ends with the sync-flush marker 00 00 FF FF, possibly after several frames."
	ruleShZlibPayload   = "CompressZlibPayload is payload compression (IDENTIFY compress:true): some payloads arrive as binary frames, each a whole zlib stream."
	ruleErrClosed       = "ErrClosed is returned by every method called after Close."

	// Pending in package protocols (see pendingRules).
	ruleShIdentify        = "Run dials URL with v=Version and encoding=json in the query, and IDENTIFY carries the bare token, the properties, Intents, [ID, Count] as shard and LargeThreshold."
	ruleShNullBeat        = "A heartbeat carries the last sequence number received, or null before the first dispatch."
	ruleShServerBeat      = "A server HEARTBEAT (op 1) is answered with a heartbeat at once, without moving the schedule."
	ruleShZombie          = "A connection without a heartbeat ACK between two heartbeats is closed with a code other than 1000 and 1001, and the session resumed."
	ruleShResumeURL       = "A resume dials the session's resume_gateway_url with the same query."
	ruleShResumeFallback  = "When the resume URL cannot be reached, the shard resumes on URL."
	ruleShReconnect       = "RECONNECT (op 7), at any time, even before HELLO, makes the shard reconnect and resume."
	ruleShInvalidResume   = "INVALID_SESSION with d=true makes the shard reconnect and resume."
	ruleShInvalidFresh    = "After INVALID_SESSION with d=false, the shard waits 1 to 5 seconds and identifies anew on URL."
	ruleShIdentifyLimiter = "Every IDENTIFY, reconnects included, waits for the IdentifyLimiter."
	ruleShTokenSecret     = "The token never appears in errors or logs."
	ruleShCorrupt         = "A payload that cannot be read or decoded closes the connection with a code other than 1000 and 1001, and the session is resumed."
	ruleShExactlyOnce     = "Across reconnects, every dispatch reaches Events exactly once, in sequence order."
	ruleShDialRetry       = "A failed dial is retried with backoff until Run ends."
	ruleShCloseInHandler  = "Close may be called from a handler."
)

// Gateway timing the Shard suite relies on.
const (
	// helloInterval is the mock's default heartbeat_interval.
	helloInterval = mockdiscord.DefaultHeartbeatInterval
	// beatSlack is how late after its due time a heartbeat may come.
	beatSlack = 100 * time.Millisecond
	// invalidWaitMin and invalidWaitMax bound the wait before identifying
	// after INVALID_SESSION d=false.
	invalidWaitMin = time.Second
	invalidWaitMax = 5 * time.Second
)

// TestShard tests a [protocols.Shard] implementation against
// [mockdiscord], a strict mock of Discord's gateway, served in memory.
//
// newShard is called once or more per subtest, inside the subtest's
// synctest bubble, and must return a new Shard for p. The suite fills
// p.ID, p.Count, p.Token, p.URL (the mock's gateway), p.Version (10),
// p.Intents, p.Compression, p.LargeThreshold, p.HandshakeTimeout (10 s),
// p.Dialer (the suite's own websocket dialer, reaching the mock in
// memory), p.Sessions (an in-memory store), p.Events and p.Raw (recording
// dispatchers) and p.Logger; some subtests set p.ShouldReconnect.
// p.Codec, p.NewInflater, p.KeepAlive, p.SendLimiter and
// p.IdentifyLimiter are nil: the factory fills the parts it wants (for
// example its own, or the reference ones), as TestHTTPClient's factory
// builds its own rate limiter:
//
//	func(t *testing.T, p protocols.ShardParams) protocols.Shard {
//		p.Codec, p.NewInflater = myCodec{}, myinflate.New
//		p.KeepAlive, p.SendLimiter = mykeepalive.New(), mysendlimit.New()
//		p.IdentifyLimiter, _ = myidentify.New(protocols.IdentifyLimiterParams{MaxConcurrency: 1})
//		sh, err := myshard.New(p)
//		if err != nil {
//			t.Fatal(err)
//		}
//		return sh
//	}
//
// A fresh IdentifyLimiter per shard is right: the mock has one identify
// bucket and each subtest's shards share nothing else. The suite closes
// every shard with 1000, then the mock, when the subtest ends.
//
// The suite asserts from the mock's observations (connections, what each
// IDENTIFY, RESUME and heartbeat carried and when, who closed with what
// code), from what the shard wrote on the suite's connections, and from
// the events the dispatchers received. Time is the bubble's: a subtest
// that waits minutes of Discord time takes milliseconds.
func TestShard(t *testing.T, newShard func(t *testing.T, p protocols.ShardParams) protocols.Shard) {
	t.Helper()
	Options{}.TestShard(t, newShard)
}

// TestShard is [TestShard] with options.
func (o Options) TestShard(t *testing.T, newShard func(t *testing.T, p protocols.ShardParams) protocols.Shard) {
	t.Helper()
	runRules(t, o, "TestShard", shardRules, func(*testing.T) *shardHarness {
		return &shardHarness{newShard: newShard, zstd: o.ZstdStream}
	})
}

// shardHarness builds shards with the implementation's factory.
type shardHarness struct {
	newShard func(t *testing.T, p protocols.ShardParams) protocols.Shard
	zstd     bool // Options.ZstdStream
}

// needZstd skips the case unless the shards support zstd-stream.
func (h *shardHarness) needZstd(t *caseT) {
	t.Helper()
	if !h.zstd {
		t.Skip("Options.ZstdStream is false: the shards under test do not claim zstd-stream support")
	}
}

// shard builds a shard for p.
func (h *shardHarness) shard(t *caseT, p protocols.ShardParams) protocols.Shard {
	t.Helper()
	return newShardIn(t, h.newShard, p)
}

// start builds a shard for p and runs it with the case's context.
func (h *shardHarness) start(t *caseT, r *gwRig, p protocols.ShardParams) *runningShard {
	t.Helper()
	return r.run(t.ctx, h.shard(t, p))
}

// startReady starts shard 0 of 1 and waits until it is ready.
func (h *shardHarness) startReady(t *caseT, r *gwRig) *runningShard {
	t.Helper()
	s := h.start(t, r, r.params(0, 1))
	s.mustReady(t, "first connection", 1, readyTimeout)
	return s
}

// liveSession returns the ID of the mock's only live session.
func liveSession(t *caseT, r *gwRig) string {
	t.Helper()
	ss := r.srv.Sessions()
	if len(ss) != 1 {
		t.Fatalf("the mock has %d live sessions, want 1: %+v", len(ss), ss)
	}
	return ss[0].ID
}

// mustResumed checks that the session id was resumed on exactly one
// connection after conn 1, without a second IDENTIFY, and returns that
// connection.
func mustResumed(t *caseT, r *gwRig, what, id string) int {
	t.Helper()
	res := accepted(r.obs(mockdiscord.ObserveResume))
	if len(res) != 1 || res[0].Session != id {
		t.Fatalf("%s: accepted RESUMEs %+v, want one, of session %s", what, res, id)
	}
	if n := len(r.obs(mockdiscord.ObserveIdentify)); n != 1 {
		t.Errorf("%s: %d IDENTIFYs, want 1: the session must be resumed, not started anew", what, n)
	}
	return res[0].Conn
}

// noCloseEndingSession fails the case for a client close with 1000 or
// 1001 of connection conn.
func noCloseEndingSession(t *caseT, r *gwRig, what string, conn int) {
	t.Helper()
	for _, c := range ofConn(r.clientCloses(), conn) {
		if c.Code == int(protocols.CloseNormal) || c.Code == int(protocols.CloseGoingAway) {
			t.Errorf("%s: the shard closed connection %d with %d, which ends the session; want another code", what, conn, c.Code)
		}
	}
}

// firstBeat waits for the first heartbeat and returns when it came.
func firstBeat(t *caseT, r *gwRig) time.Time {
	t.Helper()
	if !poll(helloInterval+time.Second, func() bool { return len(r.obs(mockdiscord.ObserveHeartbeat)) > 0 }) {
		t.Fatalf("no heartbeat within the heartbeat interval %v of HELLO", helloInterval)
	}
	return r.obs(mockdiscord.ObserveHeartbeat)[0].Time
}

// identifyD is the d of IDENTIFY as the shard wrote it.
type identifyD struct {
	Token          *string                    `json:"token"`
	Properties     map[string]json.RawMessage `json:"properties"`
	Intents        *uint64                    `json:"intents"`
	Shard          []int                      `json:"shard"`
	LargeThreshold *int                       `json:"large_threshold"`
	Compress       *bool                      `json:"compress"`
}

// onlyIdentify returns the one IDENTIFY the shard wrote.
func onlyIdentify(t *caseT, r *gwRig) identifyD {
	t.Helper()
	ids := r.wire.payloads(protocols.OpIdentify)
	if len(ids) != 1 {
		t.Fatalf("the shard wrote %d IDENTIFY payloads, want 1", len(ids))
	}
	var d identifyD
	if err := json.Unmarshal(ids[0].d, &d); err != nil {
		t.Fatalf("IDENTIFY d %s does not decode: %v", ids[0].d, err)
	}
	return d
}

// guildsOf returns the mock's guilds that shard id of count receives.
func guildsOf(srv *mockdiscord.Server, id, count int) []string {
	var out []string
	for _, g := range srv.Guilds() {
		if mockdiscord.ShardOf(g, count) == id {
			out = append(out, g)
		}
	}
	return out
}

// closeCase is one close code of the close-code cases.
type closeCase struct {
	code     int
	sentinel error
}

var shardRules = []rule[*shardHarness]{
	{
		name: "HelloIdentifyReady",
		rule: ruleShIdentify,
		run: func(t *caseT, h *shardHarness) {
			r := newRig(t, &mockdiscord.Options{Guilds: 4})
			p := r.params(1, 2)
			p.LargeThreshold = 100
			s := h.start(t, r, p)
			s.mustReady(t, "Run", 1, readyTimeout)
			settle()

			dials := r.wire.dialed()
			if len(dials) != 1 {
				t.Fatalf("the shard dialed %d times, want once", len(dials))
			}
			u, err := url.Parse(dials[0].url)
			if err != nil {
				t.Fatalf("the shard dialed %q: %v", dials[0].url, err)
			}
			q := u.Query()
			if base := strings.TrimSuffix(u.Scheme+"://"+u.Host+u.Path, "/"); base != r.srv.GatewayURL() || q.Get("v") != "10" || q.Get("encoding") != "json" || q.Has("compress") {
				t.Errorf("the shard dialed %q, want %s?v=10&encoding=json", dials[0].url, r.srv.GatewayURL())
			}

			d := onlyIdentify(t, r)
			switch {
			case d.Token == nil:
				t.Errorf("IDENTIFY has no token")
			case *d.Token != mockdiscord.DefaultToken:
				t.Errorf("IDENTIFY token: got a token of %d bytes (prefix %q), want the bare token, without \"Bot \"", len(*d.Token), (*d.Token)[:min(4, len(*d.Token))])
			}
			for _, k := range []string{"os", "browser", "device"} {
				var v string
				if json.Unmarshal(d.Properties[k], &v) != nil || v == "" {
					t.Errorf("IDENTIFY properties.%s: got %s, want a non-empty string", k, d.Properties[k])
				}
			}
			if d.Intents == nil || *d.Intents != uint64(suiteIntents) {
				t.Errorf("IDENTIFY intents: got %v, want %d", d.Intents, suiteIntents)
			}
			if !slices.Equal(d.Shard, []int{1, 2}) {
				t.Errorf("IDENTIFY shard: got %v, want [1 2]", d.Shard)
			}
			if d.LargeThreshold == nil || *d.LargeThreshold != 100 {
				t.Errorf("IDENTIFY large_threshold: got %v, want 100", d.LargeThreshold)
			}
			if d.Compress != nil && *d.Compress {
				t.Errorf("IDENTIFY compress: got true, want false or absent without payload compression")
			}

			ids := r.obs(mockdiscord.ObserveIdentify)
			if len(ids) != 1 || !ids[0].Accepted || ids[0].Shard != 1 || ids[0].ShardCount != 2 {
				t.Errorf("the mock saw IDENTIFYs %+v, want one accepted for shard [1, 2]", ids)
			}
			evs := r.events.all(protocols.AnyEvent)
			if len(evs) == 0 || evs[0].Name != "READY" {
				t.Errorf("Events got %d events, want READY first", len(evs))
			}
			creates := r.events.guildCreates()
			for _, g := range guildsOf(r.srv, 1, 2) {
				if creates[g] != 1 {
					t.Errorf("GUILD_CREATE of guild %s: %d, want 1", g, creates[g])
				}
			}
			if raw := r.raw.all(protocols.AnyEvent); len(raw) == 0 || raw[0].Op != protocols.OpHello {
				t.Errorf("Raw got %d payloads, want HELLO first", len(raw))
			}
			if n := s.readyCount(); n != 1 {
				t.Errorf("the ready callback was called %d times, want once", n)
			}
			st := s.sh.Status()
			sess := r.srv.Sessions()
			if !st.Ready || st.ID != 1 || st.Count != 2 || len(sess) != 1 || st.Session.ID != sess[0].ID ||
				st.Session.ResumeURL != r.srv.ResumeGatewayURL() || st.Session.Seq != sess[0].Seq {
				t.Errorf("Status() = %+v; want ready, shard [1, 2], the mock's session %+v with resume URL %s", st, sess, r.srv.ResumeGatewayURL())
			}
			r.noViolations()
		},
	},
	{
		name: "FirstHeartbeatJittered",
		rule: ruleFirstBeat,
		run: func(t *caseT, h *shardHarness) {
			// 32 shards at once: the chance that a uniform jitter puts
			// every first heartbeat in one half of the interval is 2^-31.
			const n = 32
			r := newRig(t, &mockdiscord.Options{Guilds: 1, IdentifyInterval: -1})
			for id := range n {
				h.start(t, r, r.params(id, n))
			}
			if !poll(5*time.Minute, func() bool { return r.connCount() >= n }) {
				t.Fatalf("%d of %d shards connected in 5 minutes", r.connCount(), n)
			}
			connected := map[int]time.Time{}
			var last time.Time
			for _, c := range r.obs(mockdiscord.ObserveConnect) {
				connected[c.Conn] = c.Time
				last = c.Time
			}
			time.Sleep(time.Until(last.Add(2*helloInterval + time.Second)))
			settle()
			if len(connected) != n {
				t.Fatalf("the mock saw %d connections, want %d (one per shard)", len(connected), n)
			}
			beats := r.obs(mockdiscord.ObserveHeartbeat)
			early := 0
			for conn, at := range connected {
				var times []time.Time
				for _, b := range ofConn(beats, conn) {
					times = append(times, b.Time)
				}
				if len(times) < 2 {
					t.Fatalf("connection %d: %d heartbeats in %v, want at least 2", conn, len(times), 2*helloInterval)
				}
				first := times[0].Sub(at)
				if first < 0 || first >= helloInterval {
					t.Errorf("connection %d: first heartbeat %v after HELLO, want within [0, %v)", conn, first, helloInterval)
				}
				if gap := times[1].Sub(times[0]); gap < helloInterval || gap > helloInterval+beatSlack {
					t.Errorf("connection %d: second heartbeat %v after the first, want the interval %v", conn, gap, helloInterval)
				}
				if first < helloInterval/2 {
					early++
				}
			}
			if early == 0 || early == n {
				t.Errorf("%d of %d first heartbeats came in the first half of the interval: want a random jitter, spread over it", early, n)
			}
			r.noViolations()
		},
	},
	{
		name: "HeartbeatNullBeforeFirstDispatch",
		rule: ruleShNullBeat,
		run: func(t *caseT, h *shardHarness) {
			// disgo#419: a heartbeat asked for before any dispatch. The
			// mock asks before HELLO, and the suite's connection holds
			// READY back for a second.
			r := newRig(t, nil)
			r.inject(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultRequestHeartbeat, BeforeHello: true})
			r.wire.mu.Lock()
			r.wire.dispatchDelay = time.Second
			r.wire.mu.Unlock()
			s := h.start(t, r, r.params(0, 1))
			s.mustReady(t, "Run", 1, readyTimeout)
			settle()
			connected := r.obs(mockdiscord.ObserveConnect)[0].Time
			early := 0
			for _, b := range r.wire.payloads(protocols.OpHeartbeat) {
				d := string(bytes.TrimSpace(b.d))
				if b.at.Before(connected.Add(time.Second)) {
					early++
					if d != "null" {
						t.Errorf("heartbeat before the first dispatch: got %s, want {\"op\":1,\"d\":null}", b.raw)
					}
				} else if _, err := strconv.ParseInt(d, 10, 64); err != nil && d != "null" {
					t.Errorf("heartbeat %s: d must be the last sequence number or null", b.raw)
				}
			}
			if early == 0 {
				t.Errorf("no heartbeat before the first dispatch, want one answering the server's op 1")
			}
			if n := r.connCount(); n != 1 {
				t.Errorf("%d connections, want 1", n)
			}
			r.noViolations()
		},
	},
	{
		name: "ServerHeartbeatAnsweredAtOnce",
		rule: ruleShServerBeat,
		run: func(t *caseT, h *shardHarness) {
			r := newRig(t, nil)
			h.startReady(t, r)
			first := firstBeat(t, r)
			time.Sleep(helloInterval / 2)
			at := time.Now()
			r.inject(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultRequestHeartbeat, Shard: 0})
			time.Sleep(time.Until(first.Add(helloInterval + time.Second)))
			beats := r.obs(mockdiscord.ObserveHeartbeat)
			var answer, next []mockdiscord.GatewayObservation
			for _, b := range beats[1:] {
				switch {
				case !b.Time.Before(at) && b.Time.Sub(at) <= beatSlack:
					answer = append(answer, b)
				case b.Time.After(at):
					next = append(next, b)
				}
			}
			if len(answer) != 1 {
				t.Fatalf("heartbeats %v after the server's op 1 at %s, want one at once", t.sinceTimes(beats), t.since(at))
			}
			if seq := r.srv.Sessions()[0].Seq; answer[0].Seq != seq {
				t.Errorf("the answer carried seq %d, want the last sequence number %d", answer[0].Seq, seq)
			}
			if due := first.Add(helloInterval); len(next) == 0 || next[0].Time.Before(due) || next[0].Time.Sub(due) > beatSlack {
				t.Errorf("heartbeats %v; want the next scheduled one at %s, as if no op 1 had come", t.sinceTimes(beats), t.since(due))
			}
			if n := r.connCount(); n != 1 {
				t.Errorf("%d connections, want 1", n)
			}
			r.noViolations()
		},
	},
	{
		name: "ZombieClosesWithoutInvalidating",
		rule: ruleShZombie,
		run: func(t *caseT, h *shardHarness) {
			// discordgo#491: a zombie closed with 1000 loses its session.
			r := newRig(t, nil)
			s := h.startReady(t, r)
			firstBeat(t, r)
			id := liveSession(t, r)
			time.Sleep(time.Second)
			at := time.Now()
			r.inject(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultStopAck, Shard: 0})
			s.mustReady(t, "after the ACKs stopped", 2, 3*helloInterval)
			var unacked []time.Time
			for _, b := range ofConn(r.obs(mockdiscord.ObserveHeartbeat), 1) {
				if !b.Time.Before(at) {
					unacked = append(unacked, b.Time)
				}
			}
			closes := ofConn(r.clientCloses(), 1)
			switch {
			case len(closes) != 1:
				t.Fatalf("the shard did not close the zombie connection itself (closes %+v)", ofConn(r.obs(mockdiscord.ObserveClose), 1))
			case len(unacked) == 0:
				t.Fatalf("no heartbeat after the ACKs stopped, want the shard to notice the missing ACK")
			case closes[0].Time.Before(unacked[0]) || closes[0].Time.Sub(unacked[0]) > helloInterval+beatSlack:
				t.Errorf("the zombie connection was closed at %s; the first unacknowledged heartbeat went at %s: want the close at the next heartbeat, %v later",
					t.since(closes[0].Time), t.since(unacked[0]), helloInterval)
			}
			noCloseEndingSession(t, r, "zombie", 1)
			mustResumed(t, r, "after the zombie", id)
			r.noViolations()
		},
	},
	{
		name: "ResumeUsesResumeURL",
		rule: ruleShResumeURL,
		run: func(t *caseT, h *shardHarness) {
			// discordgo#1307: resume_gateway_url.
			r := newRig(t, nil)
			s := h.startReady(t, r)
			id := liveSession(t, r)
			r.inject(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultDrop, Shard: 0})
			s.mustReady(t, "after a drop", 2, readyTimeout)
			conn := mustResumed(t, r, "after a drop", id)
			connects := r.obs(mockdiscord.ObserveConnect)
			if p := r.connPath(conn); strings.TrimSuffix(p, "/") != "/gateway-resume" {
				t.Errorf("resumed on path %s, want READY's resume_gateway_url %s", p, r.srv.ResumeGatewayURL())
			}
			if got := ofConn(connects, conn); len(got) != 1 || !sameQuery(got[0].Query, connects[0].Query) {
				t.Errorf("resumed with query %+v, want the first connection's %q", got, connects[0].Query)
			}
			if n := r.events.count("RESUMED"); n != 1 {
				t.Errorf("Events got %d RESUMED, want 1", n)
			}
			r.noViolations()
		},
	},
	{
		name: "ResumeFallsBackToMainURL",
		rule: ruleShResumeFallback,
		run: func(t *caseT, h *shardHarness) {
			r := newRig(t, nil)
			s := h.startReady(t, r)
			id := liveSession(t, r)
			r.inject(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultRefuseResume, Count: -1})
			r.inject(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultDrop, Shard: 0})
			s.mustReady(t, "after a drop, with the resume URL refusing connections", 2, 2*time.Minute)
			conn := mustResumed(t, r, "after a drop", id)
			if p := r.connPath(conn); strings.TrimSuffix(p, "/") != "/gateway" {
				t.Errorf("resumed on path %s, want the main URL's /gateway", p)
			}
			if len(r.obs(mockdiscord.ObserveRefused)) == 0 {
				t.Errorf("the shard never tried the resume URL")
			}
			r.noViolations()
		},
	},
	{
		name: "ReconnectOpResumes",
		rule: ruleShReconnect,
		run: func(t *caseT, h *shardHarness) {
			r := newRig(t, nil)
			s := h.startReady(t, r)
			id := liveSession(t, r)
			r.inject(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultReconnect, Shard: 0})
			s.mustReady(t, "after op 7", 2, readyTimeout)
			noCloseEndingSession(t, r, "op 7", 1)
			mustResumed(t, r, "after op 7", id)
			settle()
			if n := r.events.count("RESUMED"); n != 1 {
				t.Errorf("Events got %d RESUMED, want 1", n)
			}
			r.noViolations()
		},
	},
	{
		name: "ReconnectRightAfterReady",
		rule: ruleShReconnect,
		run: func(t *caseT, h *shardHarness) {
			// discordgo#513: op 7 or op 9 while the shard is still
			// taking in READY or RESUMED must not deadlock it.
			r := newRig(t, nil)
			r.inject(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultReconnect, Shard: 0, Next: true})
			s := h.start(t, r, r.params(0, 1))
			s.mustReady(t, "Run", 1, readyTimeout)
			s.mustReady(t, "after op 7 right after READY", 2, readyTimeout)
			id := liveSession(t, r)
			mustResumed(t, r, "after op 7 right after READY", id)

			r.inject(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultInvalidSession, Shard: 0, Resumable: true, Next: true})
			r.inject(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultDrop, Shard: 0})
			s.mustReady(t, "after a drop", 3, readyTimeout)
			s.mustReady(t, "after op 9 d=true right after RESUMED", 4, readyTimeout)
			if res := accepted(r.obs(mockdiscord.ObserveResume)); len(res) != 3 {
				t.Errorf("%d accepted RESUMEs, want 3", len(res))
			}
			if n := len(r.obs(mockdiscord.ObserveIdentify)); n != 1 {
				t.Errorf("%d IDENTIFYs, want 1", n)
			}
			r.noViolations()
		},
	},
	{
		name: "ReconnectBeforeHello",
		rule: ruleShReconnect,
		run: func(t *caseT, h *shardHarness) {
			r := newRig(t, nil)
			r.inject(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultReconnect, BeforeHello: true})
			s := h.start(t, r, r.params(0, 1))
			s.mustReady(t, "after op 7 before HELLO", 1, readyTimeout)
			if ids := accepted(r.obs(mockdiscord.ObserveIdentify)); len(ids) != 1 || ids[0].Conn == 1 {
				t.Errorf("accepted IDENTIFYs %+v, want one, on a new connection: op 7 came before HELLO on connection 1", ids)
			}
			if !poll(readyTimeout, func() bool { return len(ofConn(r.clientCloses(), 1)) == 1 }) {
				t.Errorf("the shard did not close connection 1, which asked it to reconnect")
			}
			r.noViolations()
		},
	},
	{
		name: "InvalidSessionResumable",
		rule: ruleShInvalidResume,
		run: func(t *caseT, h *shardHarness) {
			r := newRig(t, nil)
			s := h.startReady(t, r)
			id := liveSession(t, r)
			r.inject(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultInvalidSession, Shard: 0, Resumable: true})
			s.mustReady(t, "after op 9 d=true", 2, readyTimeout)
			noCloseEndingSession(t, r, "op 9 d=true", 1)
			mustResumed(t, r, "after op 9 d=true", id)
			r.noViolations()
		},
	},
	{
		name: "InvalidSessionWaitsThenIdentifies",
		rule: ruleShInvalidFresh,
		run: func(t *caseT, h *shardHarness) {
			r := newRig(t, nil)
			s := h.startReady(t, r)
			old := liveSession(t, r)
			time.Sleep(10 * time.Second) // the identify bucket is free again
			at := time.Now()
			r.inject(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultInvalidSession, Shard: 0})
			s.mustReady(t, "after op 9 d=false", 2, readyTimeout)
			checkFreshIdentify(t, r, "after op 9 d=false", at, 2)
			if res := r.obs(mockdiscord.ObserveResume); len(res) != 0 {
				t.Errorf("RESUMEs %+v after op 9 d=false, want a new session", res)
			}
			if id := s.sh.Status().Session.ID; id == old || id == "" {
				t.Errorf("Status().Session.ID = %q after op 9 d=false, want the new session (was %q)", id, old)
			}
			r.noViolations()
		},
	},
	{
		name: "InvalidSessionAfterResumeIdentifies",
		rule: ruleShInvalidFresh,
		run: func(t *caseT, h *shardHarness) {
			// discordgo#544: a RESUME answered with op 9 d=false.
			r := newRig(t, &mockdiscord.Options{SessionTTL: time.Minute})
			s1 := h.startReady(t, r)
			if err := s1.stop(t, protocols.CloseUnknownError); !closedOK(err) {
				t.Errorf("Run after Close(4000): got %v, want nil", err)
			}
			if _, ok := r.store.peek(0, 1); !ok {
				t.Fatalf("no session stored after Close(4000), want one to resume")
			}
			time.Sleep(2 * time.Minute) // the mock forgets the session
			s2 := h.start(t, r, r.params(0, 1))
			s2.mustReady(t, "after the RESUME was refused", 1, readyTimeout)
			res := r.obs(mockdiscord.ObserveResume)
			if len(res) != 1 || res[0].Accepted {
				t.Fatalf("RESUMEs %+v, want one, refused", res)
			}
			checkFreshIdentify(t, r, "after op 9 d=false answering RESUME", res[0].Time, 2)
			r.noViolations()
		},
	},
	{
		name: "NoIdentifyStormOnInvalidSession",
		rule: ruleShIdentifyLimiter,
		run: func(t *caseT, h *shardHarness) {
			// Ten op 9 d=false at once on the first session, then one on
			// each of the next three: five sessions in all, each IDENTIFY
			// waiting its turn.
			r := newRig(t, nil)
			for range 10 {
				r.inject(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultInvalidSession, Shard: 0, Next: true})
			}
			var readies atomic.Int32
			r.events.Listen("READY", func(protocols.Event) {
				if n := readies.Add(1); n >= 2 && n <= 4 {
					if _, err := r.srv.InjectGateway(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultInvalidSession, Shard: 0}); err != nil {
						t.Errorf("conformance: InjectGateway: %v", err)
					}
				}
			})
			h.start(t, r, r.params(0, 1))
			if !poll(3*time.Minute, func() bool { return len(accepted(r.obs(mockdiscord.ObserveIdentify))) >= 5 }) {
				t.Errorf("%d sessions started in 3 minutes, want 5", len(accepted(r.obs(mockdiscord.ObserveIdentify))))
			}
			time.Sleep(time.Minute)
			ids := r.obs(mockdiscord.ObserveIdentify)
			if n := len(ids); n != 5 {
				t.Errorf("%d IDENTIFYs at %v, want 5 (one per op 9 d=false, however many came at once)", n, t.sinceTimes(ids))
			}
			for i := 1; i < len(ids); i++ {
				if d := ids[i].Time.Sub(ids[i-1].Time); d < identifySpacing {
					t.Errorf("IDENTIFYs at %v: %d and %d are %v apart, want at least %v", t.sinceTimes(ids), i, i+1, d, identifySpacing)
				}
			}
			r.noViolations()
		},
	},
	{
		name: "CloseCodesResume",
		rule: ruleShAction,
		run: func(t *caseT, h *shardHarness) {
			for _, code := range []int{1000, 1001, 4000, 4001, 4002, 4005, 4008, 1006} {
				what := fmt.Sprintf("server close %d", code)
				r := newRig(t, nil)
				s := h.startReady(t, r)
				id := liveSession(t, r)
				f := mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultClose, Shard: 0, Code: code}
				if code == 1006 {
					what, f = "a drop without a close frame (1006)", mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultDrop, Shard: 0}
				}
				r.inject(f)
				s.mustReady(t, what, 2, readyTimeout)
				mustResumed(t, r, what, id)
				r.noViolations()
				r.close()
			}
		},
	},
	{
		name: "CloseCodesIdentify",
		rule: ruleShAction,
		run: func(t *caseT, h *shardHarness) {
			for _, code := range []int{4003, 4007, 4009} {
				what := fmt.Sprintf("server close %d", code)
				r := newRig(t, nil)
				s := h.startReady(t, r)
				old := liveSession(t, r)
				r.inject(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultClose, Shard: 0, Code: code})
				s.mustReady(t, what, 2, readyTimeout)
				if ids := accepted(r.obs(mockdiscord.ObserveIdentify)); len(ids) != 2 || ids[1].Conn == 1 {
					t.Errorf("%s: accepted IDENTIFYs %+v, want a second one on a new connection", what, ids)
				}
				if res := r.obs(mockdiscord.ObserveResume); len(res) != 0 {
					t.Errorf("%s: RESUMEs %+v, want a new session at once", what, res)
				}
				if id := s.sh.Status().Session.ID; id == old {
					t.Errorf("%s: Status().Session.ID is still %q, want the new session", what, id)
				}
				r.noViolations()
				r.close()
			}
		},
	},
	{
		name: "CloseCodesFatal",
		rule: ruleShActionStop,
		run: func(t *caseT, h *shardHarness) {
			// discordgo#1544: 4004 in a reconnect loop; disgo 1e7b4dd:
			// 4011 taken for a reason to reconnect.
			type fatal struct {
				closeCase
				opts  mockdiscord.Options
				edit  func(*protocols.ShardParams)
				fault bool // the mock closes with code after READY
			}
			for _, c := range []fatal{
				{closeCase: closeCase{4004, protocols.ErrInvalidToken}, edit: func(p *protocols.ShardParams) { p.Token = protocols.BotToken(badToken) }},
				{closeCase: closeCase{4014, protocols.ErrDisallowedIntents}, opts: mockdiscord.Options{AllowedPrivilegedIntents: mockdiscord.NoPrivilegedIntents},
					edit: func(p *protocols.ShardParams) { p.Intents |= protocols.IntentMessageContent }},
				{closeCase: closeCase{4011, protocols.ErrShardingRequired}, opts: mockdiscord.Options{Guilds: 3, MaxGuildsPerShard: 2}},
				{closeCase: closeCase{4004, protocols.ErrInvalidToken}, fault: true},
				{closeCase: closeCase{4010, protocols.ErrInvalidShard}, fault: true},
				{closeCase: closeCase{4011, protocols.ErrShardingRequired}, fault: true},
				{closeCase: closeCase{4012, protocols.ErrInvalidAPIVersion}, fault: true},
				{closeCase: closeCase{4013, protocols.ErrInvalidIntents}, fault: true},
				{closeCase: closeCase{4014, protocols.ErrDisallowedIntents}, fault: true},
			} {
				what := fmt.Sprintf("close %d at IDENTIFY", c.code)
				if c.fault {
					what = fmt.Sprintf("server close %d after READY", c.code)
				}
				r := newRig(t, &c.opts)
				p := r.params(0, 1)
				if c.edit != nil {
					c.edit(&p)
				}
				s := h.start(t, r, p)
				if c.fault {
					s.mustReady(t, what, 1, readyTimeout)
					r.inject(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultClose, Shard: 0, Code: c.code})
				}
				if !waitChan(s.done, readyTimeout) {
					t.Fatalf("%s: Run did not return within %v, want the *CloseError", what, readyTimeout)
				}
				var ce *protocols.CloseError
				if !errors.As(s.err, &ce) || int(ce.Code) != c.code || !errors.Is(s.err, c.sentinel) {
					t.Errorf("%s: Run returned %v; want a *protocols.CloseError with code %d, matching %v", what, s.err, c.code, c.sentinel)
				}
				time.Sleep(time.Minute)
				if n := r.connCount(); n != 1 {
					t.Errorf("%s: %d connections, want exactly 1: reconnecting cannot help", what, n)
				}
				r.close()
			}
		},
	},
	{
		name: "TokenNotInErrorsOrLogs",
		rule: ruleShTokenSecret,
		run: func(t *caseT, h *shardHarness) {
			leaks := func(text, token string) bool {
				secret := token[strings.LastIndexByte(token, '.')+1:]
				return strings.Contains(text, token) || strings.Contains(text, secret)
			}
			r := newRig(t, nil)
			s := h.startReady(t, r)
			r.inject(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultDrop, Shard: 0})
			s.mustReady(t, "after a drop", 2, readyTimeout)
			if err := s.stop(t, protocols.CloseNormal); err != nil && leaks(err.Error(), mockdiscord.DefaultToken) {
				t.Errorf("Run's error shows the token")
			}
			if leaks(r.logs.String(), mockdiscord.DefaultToken) {
				t.Errorf("the shard's logs show the token")
			}
			r.close()

			r = newRig(t, nil)
			p := r.params(0, 1)
			p.Token = protocols.BotToken(badToken)
			s = h.start(t, r, p)
			if !waitChan(s.done, readyTimeout) {
				t.Fatalf("a rejected token: Run did not return within %v", readyTimeout)
			}
			if s.err == nil || leaks(s.err.Error(), badToken) || leaks(fmt.Sprintf("%+v %#v", s.err, s.err), badToken) {
				t.Errorf("a rejected token: Run returned %v, want an error that does not show the token", s.err)
			}
			if leaks(r.logs.String(), badToken) {
				t.Errorf("a rejected token: the shard's logs show the token")
			}
		},
	},
	{
		name: "CorruptPayloadResumes",
		rule: ruleShCorrupt,
		run: func(t *caseT, h *shardHarness) {
			for _, kind := range []mockdiscord.GatewayFaultKind{mockdiscord.GatewayFaultMalformed, mockdiscord.GatewayFaultTruncated, mockdiscord.GatewayFaultBadFrame} {
				what := fmt.Sprintf("fault %s", kind)
				r := newRig(t, nil)
				p := r.params(0, 1)
				p.Compression = protocols.CompressZlibStream
				s := h.start(t, r, p)
				s.mustReady(t, what, 1, readyTimeout)
				id := liveSession(t, r)
				r.inject(mockdiscord.GatewayFault{Kind: kind, Shard: 0})
				r.streamTo(0, "TEST_EVENT", 1, 3)
				s.mustReady(t, what, 2, readyTimeout)
				poll(readyTimeout, func() bool { return r.events.count("TEST_EVENT") >= 3 })
				if diff := inOrder(r.events.numbered("TEST_EVENT"), 3); diff != "" {
					t.Errorf("%s: %s", what, diff)
				}
				noCloseEndingSession(t, r, what, 1)
				mustResumed(t, r, what, id)
				r.noViolations()
				r.close()
			}
		},
	},
	{
		name: "ZlibStreamSplitFrames",
		rule: ruleShZlibStream,
		run: func(t *caseT, h *shardHarness) {
			transportSplitFrames(t, h, protocols.CompressZlibStream, "messages")
		},
	},
	{
		name: "ZstdStreamSplitFrames",
		rule: ruleZstdStream,
		run: func(t *caseT, h *shardHarness) {
			h.needZstd(t)
			transportSplitFrames(t, h, protocols.CompressZstdStream, "websocket fragments")
		},
	},
	{
		name: "ZstdStreamResetOnReconnect",
		rule: ruleZstdStream,
		run: func(t *caseT, h *shardHarness) {
			h.needZstd(t)
			transportResetOnReconnect(t, h, protocols.CompressZstdStream)
		},
	},
	{
		name: "PayloadCompression",
		rule: ruleShZlibPayload,
		run: func(t *caseT, h *shardHarness) {
			r := newRig(t, &mockdiscord.Options{PayloadCompressThreshold: 200})
			p := r.params(0, 1)
			p.Compression = protocols.CompressZlibPayload
			s := h.start(t, r, p)
			s.mustReady(t, "payload compression", 1, readyTimeout)
			if d := onlyIdentify(t, r); d.Compress == nil || !*d.Compress {
				t.Errorf("IDENTIFY compress: got %v, want true", d.Compress)
			}
			streamThroughSplits(t, r, 10, 3, 9, "", "compressed and plain payloads")
		},
	},
	{
		name: "InflaterResetOnReconnect",
		rule: ruleShZlibStream,
		run: func(t *caseT, h *shardHarness) {
			transportResetOnReconnect(t, h, protocols.CompressZlibStream)
		},
	},
	{
		name: "NoEventLostOrDuplicated",
		rule: ruleShExactlyOnce,
		run: func(t *caseT, h *shardHarness) {
			const total, drops = 10000, 20
			r := newRig(t, nil)
			s := h.startReady(t, r)
			rnd := rand.New(rand.NewPCG(7, 11))
			batch := total / (drops + 1)
			next := 1
			for i := 0; next <= total; i++ {
				n := min(batch, total-next+1)
				if i < drops {
					r.inject(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultDrop, Shard: 0, AfterDispatches: 1 + rnd.IntN(n)})
				}
				r.streamTo(0, "TEST_EVENT", next, n)
				next += n
				if i < drops {
					s.mustReady(t, fmt.Sprintf("drop %d", i+1), i+2, readyTimeout)
				}
			}
			poll(readyTimeout, func() bool { return r.events.count("TEST_EVENT") >= total })
			if diff := inOrder(r.events.numbered("TEST_EVENT"), total); diff != "" {
				t.Errorf("%d events, %d drops: %s", total, drops, diff)
			}
			if n := len(accepted(r.obs(mockdiscord.ObserveResume))); n != drops {
				t.Errorf("%d accepted RESUMEs, want %d", n, drops)
			}
			r.noViolations()
		},
	},
	{
		name: "SendLimitNeverExceeded",
		rule: ruleShSend,
		run: func(t *caseT, h *shardHarness) {
			// disgo#500: 200 payloads at once must not earn a 4008.
			r := newRig(t, nil)
			s := h.startReady(t, r)
			guild := r.srv.Guilds()[0]
			var wg sync.WaitGroup
			errs := make(chan error, 200)
			for range 200 {
				wg.Go(func() {
					d := map[string]any{"guild_id": guild, "query": "member-", "limit": 1}
					if err := s.sh.Send(t.ctx, protocols.OpRequestGuildMembers, d); err != nil {
						errs <- err
					}
				})
			}
			sent := make(chan struct{})
			go func() {
				wg.Wait()
				close(sent)
			}()
			if !waitChan(sent, 10*time.Minute) {
				t.Fatalf("200 Send calls did not return within 10 minutes")
			}
			close(errs)
			for err := range errs {
				t.Errorf("Send(op 8): got error %v, want nil", err)
			}
			settle()
			if n := len(r.obs(mockdiscord.ObserveRequestMembers)); n != 200 {
				t.Errorf("the mock got %d member requests, want 200", n)
			}
			received := r.obs(mockdiscord.ObserveReceive)
			for i, o := range received {
				n := 0
				for _, p := range received[i:] {
					if p.Time.Sub(o.Time) >= time.Minute {
						break
					}
					if p.Conn == o.Conn {
						n++
					}
				}
				if n > sendLimit {
					t.Fatalf("%d payloads (heartbeats included) in the 60 s from %s, want at most %d", n, t.since(o.Time), sendLimit)
				}
			}
			if n := r.connCount(); n != 1 {
				t.Errorf("%d connections, want 1", n)
			}
			r.noViolations()
		},
	},
	{
		name: "AcksNotStarvedBehindBurst",
		rule: ruleShHandlers,
		run: func(t *caseT, h *shardHarness) {
			// disgo#499: a burst of events whose handler takes 100
			// heartbeat intervals must not look like a zombie connection.
			r := newRig(t, &mockdiscord.Options{HeartbeatInterval: time.Second, Guilds: 1})
			var handled atomic.Int64
			r.events.Listen("GUILD_CREATE", func(protocols.Event) {
				time.Sleep(100 * time.Millisecond)
				handled.Add(1)
			})
			h.startReady(t, r)
			pad := strings.Repeat("x", 1000)
			for i := range 1000 {
				if _, err := r.srv.DispatchToShard(0, "GUILD_CREATE", map[string]any{"id": strconv.Itoa(1000 + i), "pad": pad}); err != nil {
					t.Fatalf("conformance: DispatchToShard: %v", err)
				}
			}
			if !poll(5*time.Minute, func() bool { return handled.Load() >= 1001 }) {
				t.Errorf("handled %d GUILD_CREATEs in 5 minutes, want 1001", handled.Load())
			}
			if n := r.connCount(); n != 1 {
				t.Errorf("%d connections, want 1: a slow handler must not delay the ACKs (closes %+v)", n, r.obs(mockdiscord.ObserveClose))
			}
			r.noViolations()
		},
	},
	{
		name: "DialFailuresRetried",
		rule: ruleShDialRetry,
		run: func(t *caseT, h *shardHarness) {
			// disgo#361 and d072b7c: a failed dial stopped the shard.
			r := newRig(t, nil)
			r.wire.mu.Lock()
			r.wire.failDials = 3
			r.wire.mu.Unlock()
			s := h.start(t, r, r.params(0, 1))
			s.mustReady(t, "after 3 failed dials", 1, 10*time.Minute)
			dials := r.wire.dialed()
			if len(dials) != 4 {
				t.Errorf("%d dials, want 4 (3 failed, then one that worked)", len(dials))
			} else if span := dials[3].at.Sub(dials[0].at); span < time.Second {
				t.Errorf("4 dials in %v, want a backoff between failed dials", span)
			}
			id := liveSession(t, r)
			r.wire.mu.Lock()
			r.wire.failDials = 3
			r.wire.mu.Unlock()
			r.inject(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultDrop, Shard: 0})
			s.mustReady(t, "after a drop and 3 failed dials", 2, 10*time.Minute)
			mustResumed(t, r, "after a drop and 3 failed dials", id)
			r.noViolations()
		},
	},
	{
		name: "HandshakeTimeoutBoundsDial",
		rule: ruleShHandshake,
		run: func(t *caseT, h *shardHarness) {
			r := newRig(t, nil)
			r.wire.mu.Lock()
			r.wire.hangDials = 1
			r.wire.mu.Unlock()
			s := h.start(t, r, r.params(0, 1))
			s.mustReady(t, "after a dial that hung", 1, readyTimeout+suiteHandshakeTimeout)
			dials := r.wire.dialed()
			if len(dials) < 2 || dials[0].ended.IsZero() || dials[0].ended.Sub(dials[0].at) > suiteHandshakeTimeout+beatSlack {
				t.Errorf("dials %+v: want the first, hanging, dial given up after HandshakeTimeout %v", dials, suiteHandshakeTimeout)
			}
			r.wire.mu.Lock()
			r.wire.hangHellos = 1
			r.wire.mu.Unlock()
			r.inject(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultDrop, Shard: 0})
			s.mustReady(t, "after a connection that never delivered HELLO", 2, readyTimeout+suiteHandshakeTimeout)
			dials = r.wire.dialed()
			if len(dials) < 4 {
				t.Fatalf("%d dials, want at least 4", len(dials))
			}
			hung := dials[2]
			if hung.ended.IsZero() || hung.ended.Sub(hung.at) > suiteHandshakeTimeout+beatSlack {
				t.Errorf("a connection whose HELLO never came was dialed at %s and closed at %s, want within HandshakeTimeout %v",
					t.since(hung.at), t.since(hung.ended), suiteHandshakeTimeout)
			}
			r.noViolations()
		},
	},
	{
		name: "CloseEndsSessionOnlyFor1000",
		rule: ruleShCloseCodes,
		run: func(t *caseT, h *shardHarness) {
			r := newRig(t, &mockdiscord.Options{IdentifyInterval: -1})
			for _, code := range []protocols.CloseCode{protocols.CloseNormal, protocols.CloseGoingAway, protocols.CloseUnknownError, 4999} {
				s := h.start(t, r, r.params(0, 1))
				s.mustReady(t, fmt.Sprintf("before Close(%d)", code), 1, readyTimeout)
				id := s.sh.Status().Session.ID
				if err := s.stop(t, code); !closedOK(err) {
					t.Errorf("Run after Close(%d): got %v, want nil", code, err)
				}
				settle()
				alive := slices.ContainsFunc(r.srv.Sessions(), func(g mockdiscord.GatewaySession) bool { return g.ID == id })
				stored, ok := r.store.peek(0, 1)
				if code == protocols.CloseNormal || code == protocols.CloseGoingAway {
					if alive {
						t.Errorf("Close(%d): the mock still has session %s, want it ended (a close frame with %d)", code, id, code)
					}
					if ok {
						t.Errorf("Close(%d): Sessions still holds %+v, want it deleted", code, stored)
					}
					continue
				}
				if !alive {
					t.Errorf("Close(%d): the mock ended session %s, want it resumable", code, id)
				}
				if !ok || stored.ID != id || stored.Seq == 0 {
					t.Errorf("Close(%d): Sessions holds %+v (stored %v), want session %s with its seq", code, stored, ok, id)
				}
			}
		},
	},
	{
		name: "ResumeAfterRestart",
		rule: ruleShRestart,
		run: func(t *caseT, h *shardHarness) {
			// discordgo#1115: a restarted process resumes.
			r := newRig(t, nil)
			s1 := h.startReady(t, r)
			first := s1.sh.Status().Session
			if err := s1.stop(t, protocols.CloseUnknownError); !closedOK(err) {
				t.Errorf("Run after Close(4000): got %v, want nil", err)
			}
			r.streamTo(0, "TEST_EVENT", 1, 5) // while the process is down
			s2 := h.start(t, r, r.params(0, 1))
			s2.mustReady(t, "a new shard with the same Sessions", 1, readyTimeout)
			mustResumed(t, r, "a new shard with the same Sessions", first.ID)
			if got := s2.sh.Status().Session.ID; got != first.ID {
				t.Errorf("the new shard's session is %q, want the stored %q", got, first.ID)
			}
			poll(readyTimeout, func() bool { return r.events.count("TEST_EVENT") >= 5 })
			if diff := inOrder(r.events.numbered("TEST_EVENT"), 5); diff != "" {
				t.Errorf("events missed while down: %s", diff)
			}
			// Across both processes, each dispatch reaches Events once.
			seen := map[int64]int{}
			for _, ev := range r.events.all(protocols.AnyEvent) {
				seen[ev.Seq]++
			}
			var last int64
			for _, g := range r.srv.Sessions() {
				last = max(last, g.Seq)
			}
			for seq := int64(1); seq <= last; seq++ {
				if seen[seq] != 1 {
					t.Errorf("dispatch s=%d reached Events %d times across the restart, want once", seq, seen[seq])
				}
			}
			r.noViolations()
		},
	},
	{
		name: "CloseIsIdempotentAndEndsRun",
		rule: ruleShClose,
		run: func(t *caseT, h *shardHarness) {
			r := newRig(t, &mockdiscord.Options{IdentifyInterval: -1})
			s := h.startReady(t, r)
			var wg sync.WaitGroup
			for range 2 {
				wg.Go(func() {
					if err := s.sh.Close(protocols.CloseNormal); err != nil {
						t.Errorf("Close(1000), twice at once: got %v, want nil", err)
					}
				})
			}
			wg.Wait()
			if !waitChan(s.done, stopTimeout) {
				t.Fatalf("Run did not return within %v of Close", stopTimeout)
			}
			if !closedOK(s.err) {
				t.Errorf("Run after Close: got %v, want nil", s.err)
			}
			if err := s.sh.Close(protocols.CloseNormal); err != nil {
				t.Errorf("a third Close: got %v, want nil", err)
			}
			if c := ofConn(r.clientCloses(), 1); len(c) != 1 || c[0].Code != int(protocols.CloseNormal) {
				t.Errorf("client closes %+v, want one with 1000", c)
			}

			// Closed before Run: Run returns at once and connects nowhere.
			sh := h.shard(t, r.params(0, 1))
			if err := sh.Close(protocols.CloseNormal); err != nil {
				t.Errorf("Close before Run: got %v, want nil", err)
			}
			conns := r.connCount()
			s2 := r.run(t.ctx, sh)
			if !waitChan(s2.done, stopTimeout) {
				t.Fatalf("Run after Close did not return within %v", stopTimeout)
			}
			if n := r.connCount(); n != conns {
				t.Errorf("Run after Close connected, want it to return at once")
			}

			// Closed while it cannot connect.
			r.wire.mu.Lock()
			r.wire.failDials = 1 << 30
			r.wire.mu.Unlock()
			s3 := h.start(t, r, r.params(0, 1))
			time.Sleep(10 * time.Second)
			s3.stop(t, protocols.CloseNormal)
		},
	},
	{
		name: "CloseFromHandler",
		rule: ruleShCloseInHandler,
		run: func(t *caseT, h *shardHarness) {
			r := newRig(t, &mockdiscord.Options{Guilds: 2})
			sh := h.shard(t, r.params(0, 1))
			var once sync.Once
			r.events.Listen("GUILD_CREATE", func(protocols.Event) {
				once.Do(func() {
					// Wait for Close a while, not for ever, so that a
					// deadlock fails the case instead of the bubble.
					closed := make(chan struct{})
					go func() {
						defer close(closed)
						if err := sh.Close(protocols.CloseNormal); err != nil {
							t.Errorf("Close from a handler: got %v, want nil", err)
						}
					}()
					if !waitChan(closed, stopTimeout) {
						t.Errorf("Close called from a handler did not return within %v: it waits for the handler", stopTimeout)
					}
				})
			})
			s := r.run(t.ctx, sh)
			if !waitChan(s.done, 2*stopTimeout) {
				t.Fatalf("Run did not return after Close was called from a handler")
			}
			if !closedOK(s.err) {
				t.Errorf("Run: got %v, want nil", s.err)
			}
			settle()
			if c := r.clientCloses(); len(c) != 1 || c[0].Code != int(protocols.CloseNormal) {
				t.Errorf("client closes %+v, want one with 1000", c)
			}
		},
	},
	{
		name: "MethodsAfterCloseFail",
		rule: ruleErrClosed,
		run: func(t *caseT, h *shardHarness) {
			r := newRig(t, nil)
			s := h.startReady(t, r)
			s.stop(t, protocols.CloseNormal)
			again := r.run(t.ctx, s.sh)
			if !waitChan(again.done, stopTimeout) {
				t.Fatalf("Run after Close did not return within %v", stopTimeout)
			}
			if !errors.Is(again.err, protocols.ErrClosed) {
				t.Errorf("Run after Close: got %v, want an error wrapping protocols.ErrClosed", again.err)
			}
			send := start(t, func(ctx context.Context) (struct{}, error) {
				return struct{}{}, s.sh.Send(ctx, protocols.OpPresenceUpdate, map[string]any{"since": nil, "activities": []any{}, "status": "online", "afk": false})
			})
			if !send.await(time.Now().Add(stopTimeout)) {
				t.Fatalf("Send after Close did not return within %v", stopTimeout)
			}
			if !errors.Is(send.err, protocols.ErrClosed) {
				t.Errorf("Send after Close: got %v, want an error wrapping protocols.ErrClosed", send.err)
			}
			if n := r.connCount(); n != 1 {
				t.Errorf("%d connections, want 1", n)
			}
		},
	},
	{
		name: "RunHonorsContext",
		rule: ruleShRun,
		run: func(t *caseT, h *shardHarness) {
			r := newRig(t, nil)
			ctx, cancel := context.WithCancel(t.ctx)
			s := r.run(ctx, h.shard(t, r.params(0, 1)))
			s.mustReady(t, "Run", 1, readyTimeout)
			cancel()
			if !waitChan(s.done, stopTimeout) {
				t.Fatalf("Run did not return within %v of the end of its context", stopTimeout)
			}
			if s.err != nil {
				t.Errorf("Run after its context ended: got %v, want nil", s.err)
			}
			if !poll(stopTimeout, func() bool { return len(r.obs(mockdiscord.ObserveClose)) == 1 }) {
				t.Errorf("the connection is still open after Run returned")
			}

			// While it cannot connect.
			r.wire.mu.Lock()
			r.wire.failDials = 1 << 30
			r.wire.mu.Unlock()
			ctx, cancel = context.WithCancel(t.ctx)
			s = r.run(ctx, h.shard(t, r.params(0, 1)))
			time.Sleep(10 * time.Second)
			cancel()
			if !waitChan(s.done, stopTimeout) {
				t.Fatalf("Run, reconnecting, did not return within %v of the end of its context", stopTimeout)
			}
			if s.err != nil {
				t.Errorf("Run, reconnecting, after its context ended: got %v, want nil", s.err)
			}
		},
	},
	{
		name: "ReadyCalledEachTime",
		rule: ruleShReadyCallback,
		run: func(t *caseT, h *shardHarness) {
			r := newRig(t, nil)
			s := h.startReady(t, r)
			r.inject(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultDrop, Shard: 0})
			s.mustReady(t, "after a drop (RESUMED)", 2, readyTimeout)
			r.inject(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultReconnect, Shard: 0})
			s.mustReady(t, "after op 7 (RESUMED)", 3, readyTimeout)
			r.inject(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultClose, Shard: 0, Code: 4009})
			s.mustReady(t, "after close 4009 (READY)", 4, readyTimeout)
			time.Sleep(time.Minute)
			if n := s.readyCount(); n != 4 {
				t.Errorf("the ready callback was called %d times, want 4 (READY, RESUMED, RESUMED, READY)", n)
			}
			r.noViolations()
		},
	},
	{
		name: "StatusReadyTracksConnection",
		rule: ruleShStatusReady,
		run: func(t *caseT, h *shardHarness) {
			r := newRig(t, nil)
			s := h.startReady(t, r)
			if st := s.sh.Status(); !st.Ready {
				t.Errorf("Status() after the ready callback: %+v, want Ready", st)
			}
			r.wire.mu.Lock()
			r.wire.failDials = 1 << 30 // no connection for now
			r.wire.mu.Unlock()
			r.inject(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultDrop, Shard: 0})
			time.Sleep(5 * time.Second)
			settle()
			if st := s.sh.Status(); st.Ready {
				t.Errorf("Status() while it cannot reconnect: %+v, want not Ready", st)
			}
			r.wire.mu.Lock()
			r.wire.failDials = 0
			r.wire.mu.Unlock()
			s.mustReady(t, "after the drop", 2, 10*time.Minute)
			if st := s.sh.Status(); !st.Ready || st.ID != 0 || st.Count != 1 {
				t.Errorf("Status() after resuming: %+v, want Ready, shard [0, 1]", st)
			}
		},
	},
	{
		name: "ShouldReconnectConsulted",
		rule: ruleShShouldRecon,
		run: func(t *caseT, h *shardHarness) {
			r := newRig(t, nil)
			p := r.params(0, 1)
			var (
				mu     sync.Mutex
				causes []error
				ids    []int
			)
			p.ShouldReconnect = func(id int, err error) bool {
				mu.Lock()
				defer mu.Unlock()
				causes, ids = append(causes, err), append(ids, id)
				return len(causes) < 2
			}
			s := h.start(t, r, p)
			s.mustReady(t, "Run", 1, readyTimeout)
			r.inject(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultReconnect, Shard: 0})
			s.mustReady(t, "after op 7, ShouldReconnect saying yes", 2, readyTimeout)
			r.inject(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultClose, Shard: 0, Code: 4000})
			if !waitChan(s.done, readyTimeout) {
				t.Fatalf("Run did not return after ShouldReconnect said no")
			}
			mu.Lock()
			defer mu.Unlock()
			if len(causes) != 2 || !slices.Equal(ids, []int{0, 0}) || protocols.CloseStatus(causes[1]) != 4000 {
				t.Errorf("ShouldReconnect was asked %d times, for shards %v, with %v; want twice for shard 0, the second time with the close 4000", len(causes), ids, causes)
			}
			if protocols.CloseStatus(s.err) != 4000 {
				t.Errorf("Run returned %v, want the cause ShouldReconnect refused (close 4000)", s.err)
			}
			time.Sleep(time.Minute)
			if n := r.connCount(); n != 2 {
				t.Errorf("%d connections, want 2", n)
			}
		},
	},
	{
		name: "RawSeesEveryPayload",
		rule: ruleShEventsRaw,
		run: func(t *caseT, h *shardHarness) {
			r := newRig(t, nil)
			h.startReady(t, r)
			firstBeat(t, r)
			time.Sleep(time.Second)
			raw := r.raw.all(protocols.AnyEvent)
			ops := map[protocols.Opcode]int{}
			for _, ev := range raw {
				ops[ev.Op]++
				if ev.Op != protocols.OpDispatch && ev.Name != "" {
					t.Errorf("Raw got op %d named %q, want no name for a payload other than a dispatch", ev.Op, ev.Name)
				}
			}
			if ops[protocols.OpHello] != 1 || ops[protocols.OpHeartbeatACK] < 1 || ops[protocols.OpDispatch] != 4 {
				t.Errorf("Raw got opcodes %v, want HELLO, 4 dispatches (READY and 3 GUILD_CREATE) and HEARTBEAT_ACK", ops)
			}
			for _, ev := range r.events.all(protocols.AnyEvent) {
				if ev.Op != protocols.OpDispatch {
					t.Errorf("Events got op %d, want dispatches only", ev.Op)
				}
			}
			if n := r.events.count(protocols.AnyEvent); n != 4 {
				t.Errorf("Events got %d dispatches, want 4", n)
			}
		},
	},
	{
		name: "EventsCarryShardAndSeq",
		rule: ruleShEventShard,
		run: func(t *caseT, h *shardHarness) {
			r := newRig(t, &mockdiscord.Options{Guilds: 6})
			s := h.start(t, r, r.params(2, 3))
			s.mustReady(t, "Run", 1, readyTimeout)
			r.streamTo(2, "TEST_EVENT", 1, 5)
			poll(readyTimeout, func() bool { return r.events.count("TEST_EVENT") >= 5 })
			evs := r.events.all(protocols.AnyEvent)
			for i, ev := range evs {
				if ev.Shard != 2 || ev.Seq != int64(i+1) || ev.Name == "" || ev.Op != protocols.OpDispatch {
					t.Errorf("event %d: Shard %d, Op %d, Seq %d, Name %q; want Shard 2, a dispatch with Seq %d and a name", i, ev.Shard, ev.Op, ev.Seq, ev.Name, i+1)
				}
			}
			for _, ev := range r.raw.all(protocols.AnyEvent) {
				if ev.Shard != 2 || (ev.Op != protocols.OpDispatch && ev.Seq != 0) {
					t.Errorf("raw payload op %d: Shard %d, Seq %d; want Shard 2, and Seq 0 unless a dispatch", ev.Op, ev.Shard, ev.Seq)
				}
			}
			if want := 1 + len(guildsOf(r.srv, 2, 3)) + 5; len(evs) != want {
				t.Errorf("Events got %d dispatches, want %d", len(evs), want)
			}
		},
	},
}

// closedOK reports whether err is what Run may return after Close: nil,
// or an error wrapping ErrClosed.
func closedOK(err error) bool { return err == nil || errors.Is(err, protocols.ErrClosed) }

// checkFreshIdentify checks that IDENTIFY number n (from 1) was accepted
// on the main URL 1-5 s after at.
func checkFreshIdentify(t *caseT, r *gwRig, what string, at time.Time, n int) {
	t.Helper()
	ids := accepted(r.obs(mockdiscord.ObserveIdentify))
	if len(ids) != n {
		t.Fatalf("%s: %d accepted IDENTIFYs, want %d", what, len(ids), n)
	}
	id := ids[n-1]
	if d := id.Time.Sub(at); d < invalidWaitMin || d > invalidWaitMax+beatSlack {
		t.Errorf("%s: identified %v later, want after a wait of %v to %v", what, d, invalidWaitMin, invalidWaitMax)
	}
	if p := r.connPath(id.Conn); strings.TrimSuffix(p, "/") != "/gateway" {
		t.Errorf("%s: identified on path %s, want the main URL's /gateway", what, p)
	}
}

// sendPadded dispatches TEST_EVENT {"n": 1..n} to shard 0, every other one
// padded to 400 bytes.
func sendPadded(t *caseT, r *gwRig, n int) {
	t.Helper()
	pad := strings.Repeat("p", 400)
	for i := range n {
		d := map[string]any{"n": i + 1}
		if i%2 == 0 {
			d["pad"] = pad
		}
		if _, err := r.srv.DispatchToShard(0, "TEST_EVENT", d); err != nil {
			t.Fatalf("conformance: DispatchToShard: %v", err)
		}
	}
}

// sinceTimes formats the times of observations as offsets.
func (t *caseT) sinceTimes(obs []mockdiscord.GatewayObservation) string {
	out := make([]string, len(obs))
	for i, o := range obs {
		out[i] = t.since(o.Time)
	}
	return "[" + strings.Join(out, " ") + "]"
}

// transportSplitFrames connects with transport compression mode, HELLO
// split over 3 parts, then streams payloads split over several parts
// (websocket messages for zlib-stream, fragments of one message for
// zstd-stream, whose messages are one payload each).
func transportSplitFrames(t *caseT, h *shardHarness, mode protocols.Compression, parts string) {
	t.Helper()
	r := newRig(t, nil)
	r.inject(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultSplit, BeforeHello: true, Parts: 3})
	p := r.params(0, 1)
	p.Compression = mode
	s := h.start(t, r, p)
	s.mustReady(t, fmt.Sprintf("%s, HELLO split over 3 %s", mode, parts), 1, readyTimeout)
	streamThroughSplits(t, r, 20, 4, 5, mode.String(), "payloads split over several "+parts)
}

// transportResetOnReconnect streams events over three reconnects with
// transport compression mode: each new connection starts a new stream,
// which the inflater must start afresh.
func transportResetOnReconnect(t *caseT, h *shardHarness, mode protocols.Compression) {
	t.Helper()
	r := newRig(t, nil)
	p := r.params(0, 1)
	p.Compression = mode
	s := h.start(t, r, p)
	s.mustReady(t, mode.String(), 1, readyTimeout)
	for i := range 3 {
		r.streamTo(0, "TEST_EVENT", 10*i+1, 10)
		r.inject(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultDrop, Shard: 0})
		s.mustReady(t, fmt.Sprintf("%s, reconnect %d", mode, i+1), i+2, readyTimeout)
	}
	r.streamTo(0, "TEST_EVENT", 31, 10)
	poll(readyTimeout, func() bool { return r.events.count("TEST_EVENT") >= 40 })
	if diff := inOrder(r.events.numbered("TEST_EVENT"), 40); diff != "" {
		t.Errorf("%s across 3 reconnects: %s", mode, diff)
	}
	if n := len(accepted(r.obs(mockdiscord.ObserveResume))); n != 3 {
		t.Errorf("%d accepted RESUMEs, want 3 (one per new connection, each with a new %s context)", n, mode)
	}
	r.noViolations()
}

// streamThroughSplits arms splits faults (payloads split into 2 to
// 1+maxParts websocket messages, one every `every` dispatches), streams 100
// numbered events, and checks that all arrive in order on one connection
// whose compress query was transport, with no violation.
func streamThroughSplits(t *caseT, r *gwRig, splits, maxParts, every int, transport, what string) {
	t.Helper()
	for i := range splits {
		r.inject(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultSplit, Shard: 0, Parts: 2 + i%maxParts, AfterDispatches: 1 + every*i})
	}
	sendPadded(t, r, 100)
	poll(readyTimeout, func() bool { return r.events.count("TEST_EVENT") >= 100 })
	if diff := inOrder(r.events.numbered("TEST_EVENT"), 100); diff != "" {
		t.Errorf("%s: %s", what, diff)
	}
	for _, c := range r.obs(mockdiscord.ObserveConnect) {
		if c.Transport != transport {
			t.Errorf("connection %d has compress=%q, want %q", c.Conn, c.Transport, transport)
		}
	}
	if n := r.connCount(); n != 1 {
		t.Errorf("%d connections, want 1: split payloads are normal", n)
	}
	r.noViolations()
}
