package interop

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
)

// intents is what every client asks for: GUILDS | GUILD_MESSAGES |
// MESSAGE_CONTENT.
const intents = mockdiscord.IntentGuilds | mockdiscord.IntentGuildMessages | mockdiscord.IntentMessageContent

// Timeouts. Everything runs on loopback; they only bound a broken run.
const (
	waitTimeout = 20 * time.Second
	pollEvery   = 5 * time.Millisecond
)

// gatewayOptions are the mock options of the gateway tests: a short
// heartbeat interval so that heartbeats show up within a second or two.
// Everything else is the mock's strict default.
func gatewayOptions() *mockdiscord.Options {
	return &mockdiscord.Options{HeartbeatInterval: time.Second}
}

// startMock starts a mock on 127.0.0.1 and closes it when the test ends
// (after the clients, whose cleanups are registered later and so run
// first).
func startMock(t *testing.T, opts *mockdiscord.Options) *mockdiscord.Server {
	t.Helper()
	if err := opts.Validate(); err != nil {
		t.Fatalf("mock options: %v", err)
	}
	srv := mockdiscord.New(opts)
	if err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("start mock: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// eventually polls cond until it holds or waitTimeout passes; then it
// fails the test with what.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	eventuallyWithin(t, waitTimeout, what, cond)
}

func eventuallyWithin(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(pollEvery)
	}
}

// hostRewriter sends every request for discord.com to the mock over plain
// HTTP. discordgo has no base-URL option (its Endpoint* variables are
// joined at package init), so its Session.Client gets this transport.
// Any other host is refused, so that nothing leaves the machine.
type hostRewriter struct {
	host string // 127.0.0.1:PORT
	base *http.Transport
}

func newHostRewriter(srv *mockdiscord.Server) *hostRewriter {
	u, err := url.Parse(srv.URL())
	if err != nil {
		panic(err)
	}
	return &hostRewriter{host: u.Host, base: &http.Transport{}}
}

func (h *hostRewriter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host != "discord.com" {
		return nil, fmt.Errorf("interop: refusing a request to %s (only discord.com is redirected to the mock)", r.URL)
	}
	r2 := r.Clone(r.Context())
	r2.URL.Scheme, r2.URL.Host, r2.Host = "http", h.host, h.host
	return h.base.RoundTrip(r2)
}

// dispatch is one gateway dispatch a client handed to the test.
type dispatch struct {
	Shard     int
	Seq       int64
	Type      string
	MessageID string
	ChannelID string
	GuildID   string
	AuthorID  string
	Content   string
	At        time.Time
}

// recorder collects dispatches from client callbacks.
type recorder struct {
	mu  sync.Mutex
	evs []dispatch
}

func (r *recorder) add(d dispatch) {
	d.At = time.Now()
	r.mu.Lock()
	r.evs = append(r.evs, d)
	r.mu.Unlock()
}

func (r *recorder) all() []dispatch {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]dispatch(nil), r.evs...)
}

func (r *recorder) filter(keep func(dispatch) bool) []dispatch {
	var out []dispatch
	for _, d := range r.all() {
		if keep(d) {
			out = append(out, d)
		}
	}
	return out
}

func (r *recorder) count(keep func(dispatch) bool) int { return len(r.filter(keep)) }

// first returns the first recorded dispatch keep selects.
func (r *recorder) first(keep func(dispatch) bool) (dispatch, bool) {
	for _, d := range r.all() {
		if keep(d) {
			return d, true
		}
	}
	return dispatch{}, false
}

func ofType(shard int, typ string) func(dispatch) bool {
	return func(d dispatch) bool { return d.Shard == shard && d.Type == typ }
}

func messageEvent(typ, messageID string) func(dispatch) bool {
	return func(d dispatch) bool { return d.Type == typ && d.MessageID == messageID }
}

// checkSeqs asserts that the dispatches a shard's client received are
// numbered 1, 2, 3, ... with no gap and no repeat: nothing lost, nothing
// delivered twice, across resumes too (the mock numbers RESUMED as well).
func checkSeqs(t *testing.T, rec *recorder, shard int) {
	t.Helper()
	var seqs []int64
	for _, d := range rec.all() {
		if d.Shard == shard && d.Seq > 0 {
			seqs = append(seqs, d.Seq)
		}
	}
	sorted := append([]int64(nil), seqs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	for i, s := range sorted {
		if s != int64(i+1) {
			t.Errorf("shard %d: received sequence numbers %v: want 1..%d with no gap or repeat", shard, seqs, len(seqs))
			return
		}
	}
}

// guildsOfShard returns the mock's guilds that shard owns.
func guildsOfShard(srv *mockdiscord.Server, shard, count int) []string {
	var out []string
	for _, g := range srv.Guilds() {
		if mockdiscord.ShardOf(g, count) == shard {
			out = append(out, g)
		}
	}
	return out
}

// channelOfShard returns the first channel of the first guild shard owns.
func channelOfShard(t *testing.T, srv *mockdiscord.Server, shard, count int) string {
	t.Helper()
	gs := guildsOfShard(srv, shard, count)
	if len(gs) == 0 {
		t.Fatalf("no guild on shard %d of %d", shard, count)
	}
	for _, g := range srv.World() {
		if g.ID == gs[0] && len(g.ChannelIDs) > 0 {
			return g.ChannelIDs[0]
		}
	}
	t.Fatalf("guild %s has no channel", gs[0])
	return ""
}

// gatewayObs returns the gateway observations keep selects.
func gatewayObs(srv *mockdiscord.Server, keep func(mockdiscord.GatewayObservation) bool) []mockdiscord.GatewayObservation {
	var out []mockdiscord.GatewayObservation
	for _, o := range srv.GatewayObservations() {
		if keep(o) {
			out = append(out, o)
		}
	}
	return out
}

func kind(k mockdiscord.GatewayObservationKind) func(mockdiscord.GatewayObservation) bool {
	return func(o mockdiscord.GatewayObservation) bool { return o.Kind == k }
}

// ackedHeartbeats counts the acknowledged heartbeats of a session.
func ackedHeartbeats(srv *mockdiscord.Server, session string) int {
	return len(gatewayObs(srv, func(o mockdiscord.GatewayObservation) bool {
		return o.Kind == mockdiscord.ObserveHeartbeat && o.Acked && o.Session == session
	}))
}

// firstHeartbeatDelay is how long after its connection opened a session
// sent its first heartbeat, as the mock saw it.
func firstHeartbeatDelay(srv *mockdiscord.Server, session string) time.Duration {
	var connected time.Time
	conn := -1
	for _, o := range srv.GatewayObservations() {
		if o.Kind == mockdiscord.ObserveIdentify && o.Session == session {
			conn = o.Conn
		}
	}
	for _, o := range srv.GatewayObservations() {
		switch {
		case o.Kind == mockdiscord.ObserveConnect && o.Conn == conn:
			connected = o.Time
		case o.Kind == mockdiscord.ObserveHeartbeat && o.Conn == conn && !connected.IsZero():
			return o.Time.Sub(connected)
		}
	}
	return -1
}

// acceptedIdentify returns the accepted IDENTIFY of shard, if any.
func acceptedIdentify(srv *mockdiscord.Server, shard int) (mockdiscord.GatewayObservation, bool) {
	for _, o := range srv.GatewayObservations() {
		if o.Kind == mockdiscord.ObserveIdentify && o.Accepted && o.Shard == shard {
			return o, true
		}
	}
	return mockdiscord.GatewayObservation{}, false
}

// connectOf returns the connect observation of connection n.
func connectOf(srv *mockdiscord.Server, n int) mockdiscord.GatewayObservation {
	for _, o := range srv.GatewayObservations() {
		if o.Kind == mockdiscord.ObserveConnect && o.Conn == n {
			return o
		}
	}
	return mockdiscord.GatewayObservation{}
}

// noViolations fails the test if the mock saw anything a well-behaved
// client never does, on the gateway or over REST.
func noViolations(t *testing.T, srv *mockdiscord.Server) {
	t.Helper()
	for _, v := range srv.GatewayViolations() {
		t.Errorf("gateway violation: %s", v)
	}
	for _, v := range srv.WindowViolations() {
		t.Errorf("REST window violation: %s", v)
	}
}

// checkMessages asserts that a channel holds exactly want (contents, in
// order) in the mock.
func checkMessages(t *testing.T, srv *mockdiscord.Server, channelID string, want ...string) []mockdiscord.Message {
	t.Helper()
	msgs := srv.Messages(channelID)
	var got []string
	for _, m := range msgs {
		got = append(got, m.Content)
	}
	if strings.Join(got, "\x00") != strings.Join(want, "\x00") || len(got) != len(want) {
		t.Errorf("channel %s holds %q in the mock, want %q", channelID, got, want)
	}
	return msgs
}

// logSink is an slog handler that keeps records in memory: peers log from
// goroutines that may outlive a test, where t.Log would panic. The test
// prints them when it fails and asserts on the errors.
//
// For disgo it also supplies synchronization disgo v0.18.15 lacks (see
// the comment on dsClient.handle): every record takes mu, and a gateway
// that reconnects ("opening gateway connection") waits until the
// heartbeat goroutine of its previous connection has exited ("exiting
// heartbeat goroutine" after "closing heartbeat goroutines..."), so that
// the old goroutine's last write of lastHeartbeatSent
// (gateway/gateway_impl.go:271) is ordered before open's write of it
// (gateway_impl.go:94). Without it the race detector fails every resume
// test, whatever the server.
type logSink struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	errs      []string
	hbClosing int // disgo heartbeat goroutines told to stop that have not exited yet
}

func newLogSink(t *testing.T) (*logSink, *slog.Logger) {
	ls := &logSink{}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("INTEROP_DUMP") != "" {
			t.Logf("peer log:\n%s", ls.String())
		}
	})
	return ls, slog.New(ls)
}

func (l *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (l *logSink) WithAttrs([]slog.Attr) slog.Handler       { return l } // attrs are dropped: only messages matter here
func (l *logSink) WithGroup(string) slog.Handler            { return l }

func (l *logSink) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", r.Time.Format("15:04:05.000"), r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	line := b.String()
	if len(line) > 400 {
		line = line[:400] + "..."
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch r.Message {
	case "closing heartbeat goroutines...":
		l.hbClosing++
	case "exiting heartbeat goroutine":
		l.hbClosing = max(l.hbClosing-1, 0)
	case "opening gateway connection":
		// Bounded: disgo also logs "closing heartbeat goroutines..." for
		// a goroutine that has already exited (a stale cancel func).
		for deadline := time.Now().Add(time.Second); l.hbClosing > 0 && time.Now().Before(deadline); {
			l.mu.Unlock()
			time.Sleep(time.Millisecond)
			l.mu.Lock()
		}
		l.hbClosing = 0
	}
	l.buf.WriteString(line + "\n")
	if r.Level >= slog.LevelError {
		l.errs = append(l.errs, line)
	}
	return nil
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// errors returns the error-level lines logged so far.
func (l *logSink) errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errs...)
}

// noLoggedErrors fails the test for every error the peer logged, except
// those matching one of allowed.
func noLoggedErrors(t *testing.T, l *logSink, allowed ...string) {
	t.Helper()
next:
	for _, e := range l.errors() {
		for _, a := range allowed {
			if strings.Contains(e, a) {
				continue next
			}
		}
		t.Errorf("peer logged an error: %s", e)
	}
}
