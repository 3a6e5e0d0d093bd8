package reference_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
	reference "github.com/cordkit/cordkit/impl/default"
	"github.com/cordkit/cordkit/protocols"
)

// gwEnv is a mock Discord with the parts a shard needs. Build it inside
// a synctest bubble for in-memory connections and fake time.
type gwEnv struct {
	t        *testing.T
	srv      *mockdiscord.Server
	events   protocols.Dispatcher
	raw      protocols.Dispatcher
	sessions protocols.SessionStore
	limiter  protocols.IdentifyLimiter
	logs     *logBuffer
}

func newGwEnv(t *testing.T, opts *mockdiscord.Options) *gwEnv {
	t.Helper()
	srv := mockdiscord.New(opts)
	t.Cleanup(func() { _ = srv.Close() })
	l, err := reference.NewIdentifyLimiter(protocols.IdentifyLimiterParams{MaxConcurrency: max(opts.MaxConcurrency, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return &gwEnv{
		t: t, srv: srv,
		events:   reference.NewDispatcher(),
		raw:      reference.NewDispatcher(),
		sessions: reference.NewSessionStore(),
		limiter:  l,
		logs:     &logBuffer{},
	}
}

// params returns shard parameters that reach the mock in memory.
func (e *gwEnv) params(id, count int) protocols.ShardParams {
	return protocols.ShardParams{
		ID: id, Count: count,
		Token:           protocols.BotToken(mockdiscord.DefaultToken),
		URL:             e.srv.GatewayURL(),
		Intents:         protocols.IntentGuilds | protocols.IntentGuildMessages,
		Dialer:          &reference.Dialer{NetDial: e.srv.NetDial},
		Codec:           reference.Codec{},
		NewInflater:     reference.NewInflater,
		KeepAlive:       reference.NewKeepAlive(),
		SendLimiter:     reference.NewSendLimiter(),
		IdentifyLimiter: e.limiter,
		Sessions:        e.sessions,
		Events:          e.events,
		Raw:             e.raw,
		Logger:          slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// newShard builds a shard or fails the test.
func (e *gwEnv) newShard(p protocols.ShardParams, o reference.ShardOptions) protocols.Shard {
	e.t.Helper()
	sh, err := o.New(p)
	if err != nil {
		e.t.Fatal(err)
	}
	return sh
}

// running is a shard's Run in a goroutine.
type running struct {
	sh    protocols.Shard
	done  chan struct{}
	err   error
	ready chan struct{} // receives one value per ready callback
}

// run starts sh.Run(ctx) in a goroutine.
func run(ctx context.Context, sh protocols.Shard) *running {
	r := &running{sh: sh, done: make(chan struct{}), ready: make(chan struct{}, 1000)}
	go func() {
		defer close(r.done)
		r.err = sh.Run(ctx, func() { r.ready <- struct{}{} })
	}()
	return r
}

// waitReady waits for the next ready callback, at most d of (fake) time.
func (r *running) waitReady(t *testing.T, d time.Duration) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-r.ready:
	case <-r.done:
		t.Fatalf("Run returned before ready: %v", r.err)
	case <-timer.C:
		t.Fatalf("not ready within %v", d)
	}
}

// stop closes the shard with code and waits for Run.
func (r *running) stop(t *testing.T, code protocols.CloseCode) error {
	t.Helper()
	if err := r.sh.Close(code); err != nil {
		t.Errorf("Close(%d): %v", code, err)
	}
	<-r.done
	return r.err
}

// recorder keeps the events a dispatcher delivers.
type recorder struct {
	mu     sync.Mutex
	events []protocols.Event
}

// record listens to name on d; it copies Data.
func record(t *testing.T, d protocols.Dispatcher, name string) *recorder {
	r := &recorder{}
	remove := d.Listen(name, func(ev protocols.Event) {
		ev.Data = append(json.RawMessage(nil), ev.Data...)
		r.mu.Lock()
		r.events = append(r.events, ev)
		r.mu.Unlock()
	})
	t.Cleanup(remove)
	return r
}

func (r *recorder) all() []protocols.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]protocols.Event(nil), r.events...)
}

// names returns the event names (or opcode names) in order.
func (r *recorder) names() []string {
	var out []string
	for _, ev := range r.all() {
		if ev.Name != "" {
			out = append(out, ev.Name)
		} else {
			out = append(out, ev.Op.String())
		}
	}
	return out
}

// count returns how many events named name were recorded.
func (r *recorder) count(name string) int {
	n := 0
	for _, ev := range r.all() {
		if ev.Name == name {
			n++
		}
	}
	return n
}

// observations returns the mock's gateway observations of kind.
func observations(srv *mockdiscord.Server, kind mockdiscord.GatewayObservationKind) []mockdiscord.GatewayObservation {
	var out []mockdiscord.GatewayObservation
	for _, o := range srv.GatewayObservations() {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// inject injects a gateway fault or fails the test.
func inject(t *testing.T, srv *mockdiscord.Server, f mockdiscord.GatewayFault) int {
	t.Helper()
	n, err := srv.InjectGateway(f)
	if err != nil {
		t.Fatalf("InjectGateway(%+v): %v", f, err)
	}
	return n
}

// noViolations fails t if the mock saw a misbehaving client.
func noViolations(t *testing.T, srv *mockdiscord.Server) {
	t.Helper()
	for _, v := range srv.GatewayViolations() {
		t.Errorf("mock violation: %s", v)
	}
}

// logBuffer collects log lines, safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// wire records what a shard dials and writes, through
// recordingDialer.
type wire struct {
	mu   sync.Mutex
	urls []string // dialed URLs, in order
	sent [][]byte // every payload written, in order
}

func (w *wire) payloads(op protocols.Opcode) []map[string]json.RawMessage {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []map[string]json.RawMessage
	for _, p := range w.sent {
		var env struct {
			Op protocols.Opcode `json:"op"`
			D  json.RawMessage  `json:"d"`
		}
		if json.Unmarshal(p, &env) == nil && env.Op == op {
			var d map[string]json.RawMessage
			_ = json.Unmarshal(env.D, &d)
			if d == nil {
				d = map[string]json.RawMessage{"": env.D}
			}
			out = append(out, d)
		}
	}
	return out
}

func (w *wire) dialed() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.urls...)
}

// recordingDialer wraps a Dialer, recording into w. Dials fail while
// fail returns an error.
type recordingDialer struct {
	d    protocols.Dialer
	w    *wire
	fail func(url string) error
}

func (r *recordingDialer) Dial(ctx context.Context, url string) (protocols.Conn, error) {
	r.w.mu.Lock()
	r.w.urls = append(r.w.urls, url)
	r.w.mu.Unlock()
	if r.fail != nil {
		if err := r.fail(url); err != nil {
			return nil, err
		}
	}
	c, err := r.d.Dial(ctx, url)
	if err != nil {
		return nil, err
	}
	return &recordingConn{Conn: c, w: r.w}, nil
}

type recordingConn struct {
	protocols.Conn
	w *wire
}

func (c *recordingConn) Write(ctx context.Context, typ protocols.MessageType, p []byte) error {
	c.w.mu.Lock()
	c.w.sent = append(c.w.sent, append([]byte(nil), p...))
	c.w.mu.Unlock()
	return c.Conn.Write(ctx, typ, p)
}

// record makes p dial through a recordingDialer and returns its wire.
func recordWire(p *protocols.ShardParams) *wire {
	w := &wire{}
	p.Dialer = &recordingDialer{d: p.Dialer, w: w}
	return w
}

// since returns the offsets of the observations' times from start.
func since(start time.Time, obs []mockdiscord.GatewayObservation) []time.Duration {
	out := make([]time.Duration, len(obs))
	for i, o := range obs {
		out[i] = o.Time.Sub(start)
	}
	return out
}

// byConn filters observations of one connection.
func byConn(obs []mockdiscord.GatewayObservation, conn int) []mockdiscord.GatewayObservation {
	var out []mockdiscord.GatewayObservation
	for _, o := range obs {
		if o.Conn == conn {
			out = append(out, o)
		}
	}
	return out
}

// clientCloses returns the close observations started by the client.
func clientCloses(srv *mockdiscord.Server) []mockdiscord.GatewayObservation {
	var out []mockdiscord.GatewayObservation
	for _, o := range observations(srv, mockdiscord.ObserveClose) {
		if o.By == "client" {
			out = append(out, o)
		}
	}
	return out
}
