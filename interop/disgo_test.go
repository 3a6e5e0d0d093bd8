package interop

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/disgoorg/disgo"
	"github.com/disgoorg/disgo/discord"
	"github.com/disgoorg/disgo/gateway"
	"github.com/disgoorg/disgo/rest"
	"github.com/disgoorg/disgo/sharding"
	"github.com/disgoorg/snowflake/v2"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
)

// dsClient is a disgo REST client plus the event handler its gateways or
// shard manager call, with what they received.
type dsClient struct {
	restClient rest.Client
	rest       rest.Rest
	rec        *recorder
	logs       *logSink
	logger     *slog.Logger

	mu      sync.Mutex
	readies map[int]gateway.EventReady
	pongs   []error
	closed  []error // closeHandler calls: the gateway gave up
}

// newDisgo builds the REST half for srv: rest.WithURL takes the base with
// the version, and the token goes in as it is (disgo adds "Bot ").
func newDisgo(t *testing.T, srv *mockdiscord.Server) *dsClient {
	t.Helper()
	logs, logger := newLogSink(t)
	tr := &http.Transport{}
	rc := rest.NewClient(srv.Token(),
		rest.WithURL(srv.APIBase()),
		// rest.NewClient sends no User-Agent of its own (only disgo's bot
		// builder sets one, bot/config.go:230); Discord, like the mock,
		// refuses requests without "DiscordBot (url, version)".
		rest.WithUserAgent(fmt.Sprintf("DiscordBot (%s, %s)", disgo.GitHub, disgo.Version)),
		rest.WithHTTPClient(&http.Client{Transport: tr, Timeout: 10 * time.Second}),
		rest.WithLogger(logger),
		rest.WithRateLimiterConfigOpts(rest.WithRateLimiterLogger(logger)),
	)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rc.Close(ctx)
		tr.CloseIdleConnections()
	})
	return &dsClient{restClient: rc, rest: rest.New(rc), rec: &recorder{}, logs: logs, logger: logger, readies: map[int]gateway.EventReady{}}
}

// gatewayOpts points a disgo gateway at srv (disgo appends
// ?v=10&encoding=json to the URL).
func (c *dsClient) gatewayOpts(srv *mockdiscord.Server, compress bool) []gateway.ConfigOpt {
	return []gateway.ConfigOpt{
		gateway.WithURL(srv.GatewayURL()),
		gateway.WithCompress(compress),
		gateway.WithIntents(gateway.IntentGuilds, gateway.IntentGuildMessages, gateway.IntentMessageContent),
		gateway.WithLogger(c.logger),
	}
}

// handle is the gateway.EventHandlerFunc: it records every event and
// answers "ping" with "pong" over REST, as a bot would.
//
// Data race workaround: disgo v0.18.15's heartbeat goroutine reads
// config.LastSequenceReceived (gateway/gateway_impl.go:260) that the read
// goroutine writes for every dispatch (gateway_impl.go:373, :393) with no
// synchronization, and writes heartbeatCancel (:238) that CloseWithCode
// reads from other goroutines (:134). Under -race any test where a
// heartbeat follows a dispatch fails, whatever the server. The tests give
// disgo one logger whose handler takes a mutex (logSink) and log through
// it after every event; disgo logs "sending heartbeat" (:256) just before
// its read, so that mutex orders each write before the next read. A bot
// with debug logging off has the race; it is disgo's, not the mock's.
// The tests also wait for a heartbeat before a fault or a close, so that
// the heartbeat goroutine has logged (and so published heartbeatCancel).
func (c *dsClient) handle(et gateway.EventType, seq int, shard int, ev gateway.EventData) {
	d := dispatch{Shard: shard, Seq: int64(seq), Type: string(et)}
	var m *discord.Message
	switch v := ev.(type) {
	case gateway.EventReady:
		c.mu.Lock()
		c.readies[shard] = v
		c.mu.Unlock()
	case gateway.EventGuildCreate:
		d.GuildID = v.ID.String()
	case gateway.EventMessageCreate:
		m = &v.Message
	case gateway.EventMessageUpdate:
		m = &v.Message
	case gateway.EventMessageDelete:
		d.MessageID, d.ChannelID = v.ID.String(), v.ChannelID.String()
		if v.GuildID != nil {
			d.GuildID = v.GuildID.String()
		}
	case gateway.EventHeartbeatAck:
		d.Seq = 0 // not a dispatch
	}
	if m != nil {
		d.MessageID, d.ChannelID, d.Content, d.AuthorID = m.ID.String(), m.ChannelID.String(), m.Content, m.Author.ID.String()
		if m.GuildID != nil {
			d.GuildID = m.GuildID.String()
		}
	}
	c.rec.add(d)
	// The data race workaround (see above).
	c.logger.Debug("interop: event handled", slog.String("type", string(et)), slog.Int("seq", seq))
	if et == gateway.EventTypeMessageCreate && m != nil && !m.Author.Bot && m.Content == "ping" {
		_, err := c.rest.CreateMessage(m.ChannelID, discord.MessageCreate{Content: "pong"})
		c.mu.Lock()
		c.pongs = append(c.pongs, err)
		c.mu.Unlock()
	}
}

// syncWithPeer logs through disgo's logger from the test goroutine: after
// a heartbeat was observed, this orders the heartbeat goroutine's write of
// heartbeatCancel before Close reads it (see the comment on handle).
func (c *dsClient) syncWithPeer() { c.logger.Debug("interop: closing") }

// closeHandler records that a gateway stopped for good.
func (c *dsClient) closeHandler(_ gateway.Gateway, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = append(c.closed, err)
}

func (c *dsClient) ready(shard int) (gateway.EventReady, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.readies[shard]
	return r, ok
}

// check asserts what every disgo test expects at its end: no REST reply
// failed, no gateway gave up, nothing logged at error level.
func (c *dsClient) check(t *testing.T, allowedLogErrors ...string) {
	t.Helper()
	c.mu.Lock()
	pongs, closed := append([]error(nil), c.pongs...), append([]error(nil), c.closed...)
	c.mu.Unlock()
	for _, err := range pongs {
		if err != nil {
			t.Errorf("REST reply: %v", err)
		}
	}
	for _, err := range closed {
		t.Errorf("a gateway stopped for good: %v", err)
	}
	noLoggedErrors(t, c.logs, allowedLogErrors...)
}

func sf(t *testing.T, id string) snowflake.ID {
	t.Helper()
	v, err := snowflake.Parse(id)
	if err != nil {
		t.Fatalf("snowflake %q: %v", id, err)
	}
	return v
}

func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// waitShardReady waits for READY and exactly the shard's GUILD_CREATEs, and
// checks READY against the mock's session.
func waitShardReady(t *testing.T, srv *mockdiscord.Server, c *dsClient, shard, count int) {
	t.Helper()
	want := guildsOfShard(srv, shard, count)
	eventually(t, fmt.Sprintf("READY and %d GUILD_CREATEs on shard %d", len(want), shard), func() bool {
		return c.rec.count(ofType(shard, "READY")) == 1 && c.rec.count(ofType(shard, "GUILD_CREATE")) == len(want)
	})
	got := map[string]bool{}
	for _, d := range c.rec.filter(ofType(shard, "GUILD_CREATE")) {
		got[d.GuildID] = true
	}
	for _, g := range want {
		if !got[g] {
			t.Errorf("shard %d: no GUILD_CREATE for its guild %s (got %v)", shard, g, got)
		}
	}
	r, _ := c.ready(shard)
	var sessID string
	for _, s := range srv.Sessions() {
		if s.Shard == shard {
			sessID = s.ID
		}
	}
	if r.SessionID != sessID || r.User.ID.String() != srv.UserID() || len(r.Guilds) != len(want) || r.Shard != [2]int{shard, count} {
		t.Errorf("shard %d READY: session %s user %s %d guilds shard %v; want %s %s %d [%d %d]",
			shard, r.SessionID, r.User.ID, len(r.Guilds), r.Shard, sessID, srv.UserID(), len(want), shard, count)
	}
	if r.ResumeGatewayURL != srv.ResumeGatewayURL() {
		t.Errorf("resume_gateway_url %q, want %q", r.ResumeGatewayURL, srv.ResumeGatewayURL())
	}
}

// pingPong has a simulated user say "ping" in chID and waits for the
// bot's pong, in the mock and back through the gateway on shard.
func pingPong(t *testing.T, srv *mockdiscord.Server, c *dsClient, chID string, shard int) mockdiscord.Message {
	t.Helper()
	ping, err := srv.SimulateMessage(chID, "alice", "", "ping")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the pong's MESSAGE_CREATE on shard "+fmt.Sprint(shard), func() bool {
		return c.rec.count(func(d dispatch) bool {
			return d.Shard == shard && d.Type == "MESSAGE_CREATE" && d.ChannelID == chID && d.Content == "pong" && d.AuthorID == srv.UserID()
		}) == 1
	})
	got := c.rec.filter(messageEvent("MESSAGE_CREATE", ping.ID))
	if len(got) != 1 || got[0].Shard != shard || got[0].Content != "ping" || got[0].AuthorID != ping.AuthorID || got[0].GuildID != ping.GuildID {
		t.Errorf("MESSAGE_CREATE of the ping: %+v, want once, on shard %d, with content, author and guild of %+v", got, shard, ping)
	}
	msgs := checkMessages(t, srv, chID, "ping", "pong")
	if len(msgs) == 2 && msgs[1].AuthorID != srv.UserID() {
		t.Errorf("pong author %s, want the bot %s", msgs[1].AuthorID, srv.UserID())
	}
	return ping
}

// disgoRESTRoundTrip: get the current user, get a channel, create a
// message, edit it, delete it; the mock's state follows, and the gateway
// delivers the three events.
func disgoRESTRoundTrip(t *testing.T, srv *mockdiscord.Server, c *dsClient) {
	t.Helper()
	me, err := c.rest.GetCurrentUser("") // no bearer token: the bot's own
	if err != nil {
		t.Fatalf("GET /users/@me: %v", err)
	}
	if me.ID.String() != srv.UserID() || me.Username != mockdiscord.BotUsername || !me.Bot {
		t.Errorf("current user %+v, want bot %s %q", me.User, srv.UserID(), mockdiscord.BotUsername)
	}
	chID := srv.Channels()[0]
	want, _ := srv.Channel(chID)
	ch, err := c.rest.GetChannel(sf(t, chID))
	if err != nil {
		t.Fatalf("GET /channels/%s: %v", chID, err)
	}
	gc, ok := ch.(discord.GuildTextChannel)
	if !ok || gc.ID().String() != want.ID || gc.GuildID().String() != want.GuildID || gc.Name() != want.Name {
		t.Errorf("channel %T %+v, want a GuildTextChannel %+v", ch, ch, want)
	}

	m, err := c.rest.CreateMessage(sf(t, chID), discord.MessageCreate{Content: "hello from disgo"})
	if err != nil {
		t.Fatalf("create message: %v", err)
	}
	stored := checkMessages(t, srv, chID, "hello from disgo")
	if len(stored) != 1 || stored[0].ID != m.ID.String() || stored[0].AuthorID != srv.UserID() || m.Author.ID.String() != srv.UserID() {
		t.Errorf("created %+v; the mock holds %+v", m, stored)
	}
	content := "edited by disgo"
	edited, err := c.rest.UpdateMessage(sf(t, chID), m.ID, discord.MessageUpdate{Content: &content})
	if err != nil {
		t.Fatalf("edit message: %v", err)
	}
	if edited.ID != m.ID || edited.Content != content || edited.EditedTimestamp == nil {
		t.Errorf("edit returned %+v", edited)
	}
	if stored := checkMessages(t, srv, chID, content); len(stored) == 1 && stored[0].EditedTimestamp.IsZero() {
		t.Error("the mock did not record the edit time")
	}
	if err := c.rest.DeleteMessage(sf(t, chID), m.ID); err != nil {
		t.Fatalf("delete message: %v", err)
	}
	checkMessages(t, srv, chID)

	id := m.ID.String()
	for _, typ := range []string{"MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE"} {
		eventually(t, typ+" of the REST message", func() bool { return c.rec.count(messageEvent(typ, id)) == 1 })
	}
	if u, _ := c.rec.first(messageEvent("MESSAGE_UPDATE", id)); u.Content != content {
		t.Errorf("MESSAGE_UPDATE content %q", u.Content)
	}
}

// clientCloses returns the mock's record of client close frames with code.
func clientCloses(srv *mockdiscord.Server, code int) []mockdiscord.GatewayObservation {
	return gatewayObs(srv, func(o mockdiscord.GatewayObservation) bool {
		return o.Kind == mockdiscord.ObserveClose && o.By == "client" && o.Code == code
	})
}

// TestDisgoGateway: disgo v0.18.15, one gateway.Gateway, with and without
// payload compression (v0.18.15 has no zlib-stream): connect, READY and
// every GUILD_CREATE, REST round trip, ping/pong, acknowledged
// heartbeats, clean close.
func TestDisgoGateway(t *testing.T) {
	t.Parallel()
	for _, compress := range []bool{true, false} {
		t.Run(compressName(compress), func(t *testing.T) {
			t.Parallel()
			srv := startMock(t, gatewayOptions())
			c := newDisgo(t, srv)
			gw := gateway.New(srv.Token(), c.handle, c.closeHandler, c.gatewayOpts(srv, compress)...)
			t.Cleanup(func() { gw.Close(context.Background()) })

			start := time.Now()
			if err := gw.Open(ctxTimeout(t)); err != nil { // dials; READY arrives on the read goroutine
				t.Fatalf("Open: %v", err)
			}
			eventually(t, "READY", func() bool { return c.rec.count(ofType(0, "READY")) == 1 })
			toReady := time.Since(start)
			waitShardReady(t, srv, c, 0, 1)
			toGuilds := time.Since(start)
			t.Logf("disgo %s: READY after %v; all %d GUILD_CREATEs after %v",
				compressName(compress), toReady.Round(time.Microsecond), len(srv.Guilds()), toGuilds.Round(time.Microsecond))

			id, ok := acceptedIdentify(srv, 0)
			if !ok || id.Compress != compress || id.Intents != intents || id.ShardCount != 1 {
				t.Errorf("IDENTIFY %+v: want accepted, compress %v, intents %#x, shard [0, 1]", id, compress, intents)
			}

			disgoRESTRoundTrip(t, srv, c)
			pingPong(t, srv, c, srv.Channels()[1], 0)

			sess := srv.Sessions()[0]
			eventually(t, "two acknowledged heartbeats", func() bool { return ackedHeartbeats(srv, sess.ID) >= 2 })
			t.Logf("disgo %s: first heartbeat %v after connecting (interval 1 s)", compressName(compress), firstHeartbeatDelay(srv, sess.ID).Round(time.Millisecond))
			// The mock counts an ACK when it sends it; disgo reports it once
			// its reader got there.
			eventually(t, "disgo to report two heartbeat ACKs", func() bool {
				return c.rec.count(ofType(0, string(gateway.EventTypeHeartbeatAck))) >= 2
			})

			c.syncWithPeer()
			gw.Close(ctxTimeout(t))
			eventually(t, "the client's close frame", func() bool { return len(clientCloses(srv, 1000)) == 1 })
			if ss := srv.Sessions(); len(ss) != 0 {
				t.Errorf("sessions after a close with 1000: %+v, want none", ss)
			}
			if n := len(gatewayObs(srv, kind(mockdiscord.ObserveConnect))); n != 1 {
				t.Errorf("%d connections, want 1", n)
			}
			checkSeqs(t, c.rec, 0)
			noViolations(t, srv)
			c.check(t)
		})
	}
}

// TestDisgoSharding: disgo's sharding.ShardManager with two shards and
// explicit shard IDs (its automatic shard IDs are off by one in v0.18.15)
// opened one by one with OpenShard (Open races, see below),
// against a mock whose GET /gateway/bot says 2 shards, max_concurrency 2.
// Each shard gets READY and exactly its guilds; a message lands on the
// shard owning its guild; both heartbeat; both close cleanly.
func TestDisgoSharding(t *testing.T) {
	t.Parallel()
	for _, compress := range []bool{true, false} {
		t.Run(compressName(compress), func(t *testing.T) {
			t.Parallel()
			opts := gatewayOptions()
			opts.Shards, opts.MaxConcurrency = 2, 2
			srv := startMock(t, opts)
			c := newDisgo(t, srv)
			mgr := sharding.New(srv.Token(), c.handle,
				sharding.WithShardCount(2),
				sharding.WithShardIDs(0, 1),
				sharding.WithGatewayConfigOpts(c.gatewayOpts(srv, compress)...),
				sharding.WithRateLimiterConfigOpt(sharding.WithMaxConcurrency(2)),
				sharding.WithLogger(c.logger),
			)
			t.Cleanup(func() { mgr.Close(context.Background()) })

			// ShardManager.Open has a data race in v0.18.15: it reads the
			// shards map (sharding/shard_manager_impl.go:99) while the
			// goroutines it starts write it without a lock (:113). OpenShard
			// is the manager's locked path (:153-156), so each configured
			// shard is opened with it; identify pacing is still disgo's own
			// shard rate limiter's.
			start := time.Now()
			for shard := range 2 {
				if err := mgr.OpenShard(ctxTimeout(t), shard); err != nil {
					t.Fatalf("OpenShard(%d): %v", shard, err)
				}
			}
			for shard := range 2 {
				waitShardReady(t, srv, c, shard, 2)
			}
			t.Logf("disgo 2 shards %s: both READY with all their GUILD_CREATEs after %v", compressName(compress), time.Since(start).Round(time.Microsecond))

			for shard := range 2 {
				id, ok := acceptedIdentify(srv, shard)
				if !ok || id.ShardCount != 2 || id.Bucket != shard || id.Compress != compress || id.Intents != intents {
					t.Errorf("shard %d IDENTIFY %+v: want accepted, [%d, 2], bucket %d, compress %v, intents %#x", shard, id, shard, shard, compress, intents)
				}
			}
			for shard := range 2 {
				pingPong(t, srv, c, channelOfShard(t, srv, shard, 2), shard)
			}
			sessions := srv.Sessions()
			if len(sessions) != 2 {
				t.Fatalf("mock sessions %+v, want 2", sessions)
			}
			for _, s := range sessions {
				eventually(t, fmt.Sprintf("two acknowledged heartbeats on shard %d", s.Shard), func() bool { return ackedHeartbeats(srv, s.ID) >= 2 })
			}

			c.syncWithPeer()
			mgr.Close(ctxTimeout(t))
			eventually(t, "both shards' close frames", func() bool { return len(clientCloses(srv, 1000)) == 2 })
			if ss := srv.Sessions(); len(ss) != 0 {
				t.Errorf("sessions after closing: %+v, want none", ss)
			}
			for shard := range 2 {
				checkSeqs(t, c.rec, shard)
			}
			noViolations(t, srv)
			c.check(t)
		})
	}
}

// TestDisgoResume: after an op 7 RECONNECT or a dropped connection, disgo
// v0.18.15 resumes at READY's resume_gateway_url (the mock's
// /gateway-resume) and loses nothing.
//
//   - reconnect: disgo redials at once; the message is simulated right
//     after the op 7, so it arrives live or by replay, exactly once.
//   - drop: the mock refuses the first upgrade on the resume URL (HTTP
//     503); disgo retries the resume URL after its 2 s backoff, and the
//     message simulated while it is disconnected must come back by replay.
func TestDisgoResume(t *testing.T) {
	t.Parallel()
	for _, fault := range []mockdiscord.GatewayFaultKind{mockdiscord.GatewayFaultReconnect, mockdiscord.GatewayFaultDrop} {
		for _, compress := range []bool{true, false} {
			t.Run(string(fault)+"/"+compressName(compress), func(t *testing.T) {
				t.Parallel()
				srv := startMock(t, gatewayOptions())
				c := newDisgo(t, srv)
				gw := gateway.New(srv.Token(), c.handle, c.closeHandler, c.gatewayOpts(srv, compress)...)
				t.Cleanup(func() { gw.Close(context.Background()) })
				if err := gw.Open(ctxTimeout(t)); err != nil {
					t.Fatalf("Open: %v", err)
				}
				waitShardReady(t, srv, c, 0, 1)
				sess := srv.Sessions()[0]
				chID := channelOfShard(t, srv, 0, 1)
				eventually(t, "an acknowledged heartbeat", func() bool { return ackedHeartbeats(srv, sess.ID) >= 1 })

				refused := fault == mockdiscord.GatewayFaultDrop
				if refused {
					if _, err := srv.InjectGateway(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultRefuseResume, Count: 1}); err != nil {
						t.Fatal(err)
					}
				}
				if n, err := srv.InjectGateway(mockdiscord.GatewayFault{Kind: fault, Shard: 0}); err != nil || n != 1 {
					t.Fatalf("inject %s: %d connections, %v", fault, n, err)
				}
				disconnected := time.Now()
				if refused {
					eventually(t, "the refused resume upgrade", func() bool { return len(gatewayObs(srv, kind(mockdiscord.ObserveRefused))) == 1 })
					if ss := srv.Sessions(); len(ss) != 1 || ss[0].Connected {
						t.Fatalf("sessions %+v: want one, disconnected", ss)
					}
				}
				ping, err := srv.SimulateMessage(chID, "bob", "", "ping")
				if err != nil {
					t.Fatal(err)
				}

				var resume mockdiscord.GatewayObservation
				eventually(t, "an accepted RESUME", func() bool {
					rs := gatewayObs(srv, func(o mockdiscord.GatewayObservation) bool { return o.Kind == mockdiscord.ObserveResume })
					if len(rs) > 0 {
						resume = rs[0]
					}
					return len(rs) > 0
				})
				if !resume.Accepted || resume.Session != sess.ID || (refused && resume.Replayed < 1) {
					t.Fatalf("RESUME %+v: want accepted for %s (with the message replayed: %v)", resume, sess.ID, refused)
				}
				eventually(t, "RESUMED", func() bool { return c.rec.count(ofType(0, "RESUMED")) == 1 })
				eventually(t, "the pong", func() bool { return len(srv.Messages(chID)) == 2 })
				t.Logf("disgo %s %s: resumed %v after the fault, replaying %d dispatch(es)",
					fault, compressName(compress), resume.Time.Sub(disconnected).Round(time.Millisecond), resume.Replayed)

				if n := c.rec.count(messageEvent("MESSAGE_CREATE", ping.ID)); n != 1 {
					t.Errorf("the message was received %d times, want 1", n)
				}
				checkMessages(t, srv, chID, "ping", "pong")
				if p := connectOf(srv, resume.Conn).Path; p != "/gateway-resume" {
					t.Errorf("resumed on %q, want READY's resume_gateway_url path /gateway-resume", p)
				}
				if refused {
					if r := gatewayObs(srv, kind(mockdiscord.ObserveRefused)); len(r) != 1 || r[0].Path != "/gateway-resume" {
						t.Errorf("refused upgrades %+v, want one on /gateway-resume", r)
					}
				} else {
					// disgo writes its 1012 close frame and closes the socket at
					// once (gateway_impl.go:144-147), without waiting for the
					// server's reply, then redials at once. So the mock records
					// the client's 1012 if it reads the close frame first; a
					// lost connection (1006) if a reset beat the frame; or, if
					// the RESUME on the new connection is handled before the
					// old connection's close frame is read, a server-side drop
					// of the old connection ("session resumed on connection
					// N"), as Discord would. (One run in ten under load saw no
					// 1012.) What must not happen is a 1000/1001, which would
					// end the session.
					cl := gatewayObs(srv, func(o mockdiscord.GatewayObservation) bool {
						return o.Kind == mockdiscord.ObserveClose && o.Conn == sess.Conn
					})
					ok := len(cl) == 1 && ((cl[0].By == "client" && (cl[0].Code == 1012 || cl[0].Code == 1006)) ||
						(cl[0].By == "server" && strings.HasPrefix(cl[0].Reason, "dropped: session resumed")))
					if !ok {
						t.Errorf("after op 7: closes of connection %d %+v, want the client's 1012 (or a lost connection, or a takeover by the resume)", sess.Conn, cl)
					}
				}
				if n := len(gatewayObs(srv, kind(mockdiscord.ObserveIdentify))); n != 1 {
					t.Errorf("%d IDENTIFYs, want 1 (the resume must not re-identify)", n)
				}
				eventually(t, "an acknowledged heartbeat on the resumed connection", func() bool {
					return len(gatewayObs(srv, func(o mockdiscord.GatewayObservation) bool {
						return o.Kind == mockdiscord.ObserveHeartbeat && o.Acked && o.Conn == resume.Conn
					})) >= 1
				})
				checkSeqs(t, c.rec, 0)
				noViolations(t, srv)
				// The refused upgrade is logged as an error by disgo, as it
				// would be against Discord.
				c.check(t, "error connecting to the gateway", "failed to reconnect gateway")
			})
		}
	}
}
