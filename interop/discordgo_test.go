package interop

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
)

// discordgo logs through the package variable discordgo.Logger. TestMain
// points it at dgLog once, before any test runs, so no test races on it.
var dgLog = &dgLogSink{}

type dgLogSink struct {
	mu    sync.Mutex
	lines []string
}

func (l *dgLogSink) log(level, _ int, format string, a ...any) {
	names := map[int]string{discordgo.LogError: "ERROR", discordgo.LogWarning: "WARN", discordgo.LogInformational: "INFO", discordgo.LogDebug: "DEBUG"}
	line := names[level] + " " + fmt.Sprintf(format, a...)
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
}

// decodeErrors returns what discordgo logged about payloads it could not
// decode: a mock payload shape it does not accept. Every discordgo test
// asserts there is none (the sink is shared by parallel tests, which is
// fine for an assertion that must hold for all of them).
func (l *dgLogSink) decodeErrors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		if strings.Contains(line, "unmarshal") || strings.Contains(line, "decoding") || strings.Contains(line, "uncompressing") {
			out = append(out, line)
		}
	}
	return out
}

// dgClient is a discordgo Session pointed at a mock, with what it
// received.
type dgClient struct {
	s   *discordgo.Session
	rec *recorder

	mu    sync.Mutex
	ready *discordgo.Ready
	pongs []error // errors of the REST replies to "ping"
}

// newDiscordgo builds a discordgo Session for srv. REST goes through
// Session.Client, whose transport sends discord.com to the mock; GET
// /gateway then returns the mock's ws:// URL, so nothing else needs
// redirecting (and no package variable is touched, so tests can run in
// parallel). The handler answers "ping" with "pong" over REST, as a bot
// would.
func newDiscordgo(t *testing.T, srv *mockdiscord.Server, compress bool) *dgClient {
	t.Helper()
	s, err := discordgo.New("Bot " + srv.Token()) // discordgo sends the token verbatim, so it needs the prefix
	if err != nil {
		t.Fatal(err)
	}
	rw := newHostRewriter(srv)
	s.Client = &http.Client{Transport: rw, Timeout: 10 * time.Second}
	s.Compress = compress // false also clears Identify.Compress at identify time
	s.Identify.Compress = compress
	s.Identify.Intents = discordgo.IntentsGuilds | discordgo.IntentsGuildMessages | discordgo.IntentMessageContent
	s.SyncEvents = true // handlers run in order on the read goroutine
	s.LogLevel = discordgo.LogWarning
	c := &dgClient{s: s, rec: &recorder{}}
	s.AddHandler(func(_ *discordgo.Session, e *discordgo.Event) {
		d := dispatch{Shard: s.ShardID, Seq: e.Sequence, Type: e.Type}
		var m *discordgo.Message
		switch v := e.Struct.(type) {
		case *discordgo.Ready:
			c.mu.Lock()
			c.ready = v
			c.mu.Unlock()
		case *discordgo.GuildCreate:
			d.GuildID = v.ID
		case *discordgo.MessageCreate:
			m = v.Message
		case *discordgo.MessageUpdate:
			m = v.Message
		case *discordgo.MessageDelete:
			m = v.Message
		}
		if m != nil {
			d.MessageID, d.ChannelID, d.GuildID, d.Content = m.ID, m.ChannelID, m.GuildID, m.Content
			if m.Author != nil {
				d.AuthorID = m.Author.ID
			}
		}
		c.rec.add(d)
	})
	s.AddHandler(func(s *discordgo.Session, m *discordgo.MessageCreate) {
		if m.Author == nil || m.Author.Bot || m.Content != "ping" {
			return
		}
		_, err := s.ChannelMessageSend(m.ChannelID, "pong")
		c.mu.Lock()
		c.pongs = append(c.pongs, err)
		c.mu.Unlock()
	})
	t.Cleanup(func() {
		_ = s.Close() // a no-op when the test already closed it
		rw.base.CloseIdleConnections()
		if errs := dgLog.decodeErrors(); len(errs) > 0 {
			t.Errorf("discordgo could not decode mock payloads:\n%s", strings.Join(errs, "\n"))
		}
	})
	return c
}

func (c *dgClient) getReady() *discordgo.Ready {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ready
}

func (c *dgClient) pongErrors() []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []error
	for _, err := range c.pongs {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

func compressName(compress bool) string {
	if compress {
		return "compress=zlib-payload"
	}
	return "compress=none"
}

// TestDiscordgoGateway: discordgo v0.29.0, one shard, with and without
// payload compression (it has no zlib-stream support): connect, READY and
// every GUILD_CREATE, REST create/edit/delete (seen in the mock and as
// gateway events), a simulated user's "ping" answered with "pong",
// acknowledged heartbeats, and a clean close.
func TestDiscordgoGateway(t *testing.T) {
	t.Parallel()
	for _, compress := range []bool{true, false} {
		t.Run(compressName(compress), func(t *testing.T) {
			t.Parallel()
			srv := startMock(t, gatewayOptions())
			c := newDiscordgo(t, srv, compress)

			start := time.Now()
			if err := c.s.Open(); err != nil { // returns once READY was read
				t.Fatalf("Open: %v", err)
			}
			toReady := time.Since(start)
			guilds := srv.Guilds()
			eventually(t, "a GUILD_CREATE for every guild", func() bool {
				return c.rec.count(ofType(0, "GUILD_CREATE")) == len(guilds)
			})
			toGuilds := time.Since(start)
			t.Logf("discordgo %s: Open (dial, HELLO, IDENTIFY, READY) %v; all %d GUILD_CREATEs after %v",
				compressName(compress), toReady.Round(time.Microsecond), len(guilds), toGuilds.Round(time.Microsecond))

			id, ok := acceptedIdentify(srv, 0)
			if !ok {
				t.Fatal("the mock accepted no IDENTIFY")
			}
			if id.Compress != compress || id.Intents != intents {
				t.Errorf("IDENTIFY: compress %v intents %#x, want %v %#x", id.Compress, id.Intents, compress, intents)
			}
			sessions := srv.Sessions()
			if len(sessions) != 1 {
				t.Fatalf("mock sessions: %+v, want 1", sessions)
			}
			ready := c.getReady()
			if ready == nil || ready.SessionID != sessions[0].ID || ready.User == nil || ready.User.ID != srv.UserID() || len(ready.Guilds) != len(guilds) {
				t.Fatalf("READY: %+v, want session %s, user %s, %d guilds", ready, sessions[0].ID, srv.UserID(), len(guilds))
			}
			for _, g := range srv.World() {
				st, err := c.s.State.Guild(g.ID)
				if err != nil {
					t.Errorf("state has no guild %s after GUILD_CREATE: %v", g.ID, err)
					continue
				}
				if st.Name != g.Name || len(st.Channels) != len(g.ChannelIDs) {
					t.Errorf("guild %s in discordgo's state: name %q with %d channels, want %q with %d", g.ID, st.Name, len(st.Channels), g.Name, len(g.ChannelIDs))
				}
			}

			restRoundTrip(t, srv, c)

			// A simulated user says "ping"; the handler answers over REST.
			chID := srv.Channels()[1]
			ping, err := srv.SimulateMessage(chID, "alice", "", "ping")
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, "the pong's MESSAGE_CREATE", func() bool {
				return c.rec.count(func(d dispatch) bool {
					return d.Type == "MESSAGE_CREATE" && d.ChannelID == chID && d.Content == "pong" && d.AuthorID == srv.UserID()
				}) == 1
			})
			if got, ok := c.rec.first(messageEvent("MESSAGE_CREATE", ping.ID)); !ok || got.Content != "ping" || got.AuthorID != ping.AuthorID || got.GuildID != ping.GuildID {
				t.Errorf("MESSAGE_CREATE of the ping: %+v, want content, author and guild of %+v", got, ping)
			}
			msgs := checkMessages(t, srv, chID, "ping", "pong")
			if len(msgs) == 2 && msgs[1].AuthorID != srv.UserID() {
				t.Errorf("pong author %s, want the bot %s", msgs[1].AuthorID, srv.UserID())
			}
			if errs := c.pongErrors(); len(errs) > 0 {
				t.Errorf("REST reply errors: %v", errs)
			}

			eventually(t, "two acknowledged heartbeats", func() bool { return ackedHeartbeats(srv, sessions[0].ID) >= 2 })
			t.Logf("discordgo %s: first heartbeat %v after connecting (interval 1 s)", compressName(compress), firstHeartbeatDelay(srv, sessions[0].ID).Round(time.Millisecond))

			if err := c.s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			eventually(t, "the client's close frame", func() bool {
				return len(gatewayObs(srv, func(o mockdiscord.GatewayObservation) bool {
					return o.Kind == mockdiscord.ObserveClose && o.By == "client" && o.Code == 1000
				})) == 1
			})
			if ss := srv.Sessions(); len(ss) != 0 {
				t.Errorf("sessions after a close with 1000: %+v, want none", ss)
			}
			if n := len(gatewayObs(srv, kind(mockdiscord.ObserveConnect))); n != 1 {
				t.Errorf("%d connections, want 1", n)
			}
			checkSeqs(t, c.rec, 0)
			noViolations(t, srv)
		})
	}
}

// restRoundTrip: get the current user, get a channel, create a message,
// edit it, delete it; the mock's state follows, and the gateway delivers
// MESSAGE_CREATE, MESSAGE_UPDATE and MESSAGE_DELETE for it.
func restRoundTrip(t *testing.T, srv *mockdiscord.Server, c *dgClient) {
	t.Helper()
	me, err := c.s.User("@me")
	if err != nil {
		t.Fatalf("GET /users/@me: %v", err)
	}
	if me.ID != srv.UserID() || me.Username != mockdiscord.BotUsername || !me.Bot {
		t.Errorf("current user %+v, want bot %s %q", me, srv.UserID(), mockdiscord.BotUsername)
	}
	chID := srv.Channels()[0]
	want, _ := srv.Channel(chID)
	ch, err := c.s.Channel(chID)
	if err != nil {
		t.Fatalf("GET /channels/%s: %v", chID, err)
	}
	if ch.ID != want.ID || ch.GuildID != want.GuildID || ch.Name != want.Name || ch.Type != discordgo.ChannelTypeGuildText {
		t.Errorf("channel %+v, want %+v", ch, want)
	}

	m, err := c.s.ChannelMessageSend(chID, "hello from discordgo")
	if err != nil {
		t.Fatalf("create message: %v", err)
	}
	stored := checkMessages(t, srv, chID, "hello from discordgo")
	if len(stored) != 1 || stored[0].ID != m.ID || stored[0].AuthorID != srv.UserID() || m.Author == nil || m.Author.ID != srv.UserID() {
		t.Errorf("created %+v; the mock holds %+v", m, stored)
	}
	edited, err := c.s.ChannelMessageEdit(chID, m.ID, "edited by discordgo")
	if err != nil {
		t.Fatalf("edit message: %v", err)
	}
	if edited.ID != m.ID || edited.Content != "edited by discordgo" || edited.EditedTimestamp == nil {
		t.Errorf("edit returned %+v", edited)
	}
	if stored := checkMessages(t, srv, chID, "edited by discordgo"); len(stored) == 1 && stored[0].EditedTimestamp.IsZero() {
		t.Error("the mock did not record the edit time")
	}
	if err := c.s.ChannelMessageDelete(chID, m.ID); err != nil {
		t.Fatalf("delete message: %v", err)
	}
	checkMessages(t, srv, chID)

	for _, typ := range []string{"MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE"} {
		eventually(t, typ+" of the REST message", func() bool { return c.rec.count(messageEvent(typ, m.ID)) == 1 })
	}
	if u, _ := c.rec.first(messageEvent("MESSAGE_UPDATE", m.ID)); u.Content != "edited by discordgo" {
		t.Errorf("MESSAGE_UPDATE content %q", u.Content)
	}
}

// TestDiscordgoResume: after an op 7 RECONNECT or a dropped connection,
// discordgo v0.29.0 resumes (on its original URL: it ignores
// resume_gateway_url) and loses nothing. discordgo waits a second inside
// CloseWithCode before it redials, so the simulated message is created
// while the session is disconnected and must come back by replay.
func TestDiscordgoResume(t *testing.T) {
	t.Parallel()
	for _, fault := range []mockdiscord.GatewayFaultKind{mockdiscord.GatewayFaultReconnect, mockdiscord.GatewayFaultDrop} {
		for _, compress := range []bool{true, false} {
			t.Run(string(fault)+"/"+compressName(compress), func(t *testing.T) {
				t.Parallel()
				srv := startMock(t, gatewayOptions())
				c := newDiscordgo(t, srv, compress)
				if err := c.s.Open(); err != nil {
					t.Fatalf("Open: %v", err)
				}
				eventually(t, "every GUILD_CREATE", func() bool { return c.rec.count(ofType(0, "GUILD_CREATE")) == len(srv.Guilds()) })
				sess := srv.Sessions()[0]

				if n, err := srv.InjectGateway(mockdiscord.GatewayFault{Kind: fault, Shard: 0}); err != nil || n != 1 {
					t.Fatalf("inject %s: %d connections, %v", fault, n, err)
				}
				eventually(t, "the session to be disconnected", func() bool {
					ss := srv.Sessions()
					return len(ss) == 1 && !ss[0].Connected
				})
				disconnected := time.Now()
				chID := channelOfShard(t, srv, 0, 1)
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
				if !resume.Accepted || resume.Session != sess.ID || resume.Replayed < 1 {
					t.Fatalf("RESUME %+v: want accepted for %s with the message replayed", resume, sess.ID)
				}
				eventually(t, "RESUMED", func() bool { return c.rec.count(ofType(0, "RESUMED")) == 1 })
				eventually(t, "the pong", func() bool { return len(srv.Messages(chID)) == 2 })
				t.Logf("discordgo %s %s: resumed %v after the disconnect, replaying %d dispatch(es)",
					fault, compressName(compress), resume.Time.Sub(disconnected).Round(time.Millisecond), resume.Replayed)

				if n := c.rec.count(messageEvent("MESSAGE_CREATE", ping.ID)); n != 1 {
					t.Errorf("the message created while disconnected was received %d times, want 1", n)
				}
				checkMessages(t, srv, chID, "ping", "pong")
				if p := connectOf(srv, resume.Conn).Path; p != "/gateway/" {
					t.Errorf("resumed on %q, want discordgo's original URL /gateway/", p)
				}
				closes := gatewayObs(srv, func(o mockdiscord.GatewayObservation) bool {
					return o.Kind == mockdiscord.ObserveClose && o.Conn == sess.Conn
				})
				if fault == mockdiscord.GatewayFaultReconnect && (len(closes) != 1 || closes[0].By != "client" || closes[0].Code != 1012) {
					t.Errorf("after op 7: closes %+v, want the client's 1012", closes)
				}
				if n := len(gatewayObs(srv, kind(mockdiscord.ObserveIdentify))); n != 1 {
					t.Errorf("%d IDENTIFYs, want 1 (the resume must not re-identify)", n)
				}
				checkSeqs(t, c.rec, 0)
				noViolations(t, srv)
			})
		}
	}
}
