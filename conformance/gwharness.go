package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
	"github.com/cordkit/cordkit/protocols"
)

// This file holds what the Shard and Gateway suites build around the mock:
// the parts of ShardParams the suite provides (dispatchers that record,
// an in-memory session store, a minimal HTTP client for /gateway/bot), a
// rig that owns one mock and closes everything before the bubble ends,
// and helpers to read the mock's observations.

// Settings the gateway suites pass in ShardParams.
const (
	suiteIntents          = protocols.IntentGuilds | protocols.IntentGuildMessages
	suiteLargeThreshold   = 50
	suiteHandshakeTimeout = 10 * time.Second
	// readyTimeout bounds, in bubble time, how long a case waits for a
	// shard to become ready after it connects or reconnects: backoff,
	// the identify limiter's 5 s and op 9's 1-5 s fit in it.
	readyTimeout = time.Minute
	// stopTimeout bounds how long Run may take to return after Close.
	stopTimeout = 30 * time.Second
)

// badToken is a well-formed bot token the mock does not accept.
const badToken = "MTExMTExMTExMTExMTExMTEx.R3ZhYg.s3cr3t-W0rng-t0k3n"

// ---- Dispatchers ----

// recDispatcher is the suite's [protocols.Dispatcher]: it records every
// event (with its Data copied) and calls its handlers in order.
type recDispatcher struct {
	mu       sync.Mutex
	nextID   int
	handlers map[string][]recHandler
	events   []recEvent
	changed  chan struct{} // closed and replaced at each Dispatch
}

type recHandler struct {
	id int
	h  protocols.Handler
}

// recEvent is one dispatched event and when the dispatcher got it.
type recEvent struct {
	protocols.Event
	at time.Time
}

func newRecDispatcher() *recDispatcher {
	return &recDispatcher{handlers: map[string][]recHandler{}, changed: make(chan struct{})}
}

func (d *recDispatcher) Listen(name string, h protocols.Handler) (remove func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.nextID++
	id := d.nextID
	d.handlers[name] = append(d.handlers[name], recHandler{id, h})
	return func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.handlers[name] = slices.DeleteFunc(d.handlers[name], func(r recHandler) bool { return r.id == id })
	}
}

func (d *recDispatcher) Dispatch(ev protocols.Event) {
	rec := ev
	rec.Data = append(json.RawMessage(nil), ev.Data...)
	d.mu.Lock()
	var hs []recHandler
	for _, name := range []string{ev.Name, ev.Op.String(), protocols.AnyEvent} {
		if name != "" {
			hs = append(hs, d.handlers[name]...)
		}
	}
	d.mu.Unlock()
	for _, h := range hs {
		h.h(ev)
	}
	d.mu.Lock()
	d.events = append(d.events, recEvent{rec, time.Now()})
	close(d.changed)
	d.changed = make(chan struct{})
	d.mu.Unlock()
}

func matchesName(ev protocols.Event, name string) bool {
	return name == protocols.AnyEvent || ev.Name == name || ev.Op.String() == name
}

func (d *recDispatcher) WaitFor(ctx context.Context, name string, match func(protocols.Event) bool) (protocols.Event, error) {
	d.mu.Lock()
	next := len(d.events)
	d.mu.Unlock()
	for {
		d.mu.Lock()
		for ; next < len(d.events); next++ {
			ev := d.events[next].Event
			if matchesName(ev, name) && (match == nil || match(ev)) {
				d.mu.Unlock()
				ev.Data = append(json.RawMessage(nil), ev.Data...)
				return ev, nil
			}
		}
		changed := d.changed
		d.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return protocols.Event{}, ctx.Err()
		}
	}
}

// all returns the recorded events named name (AnyEvent for all).
func (d *recDispatcher) all(name string) []recEvent {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []recEvent
	for _, ev := range d.events {
		if matchesName(ev.Event, name) {
			out = append(out, ev)
		}
	}
	return out
}

func (d *recDispatcher) count(name string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, ev := range d.events {
		if matchesName(ev.Event, name) {
			n++
		}
	}
	return n
}

// numbered returns the "n" of the recorded events named name, in order.
func (d *recDispatcher) numbered(name string) []int {
	var out []int
	for _, ev := range d.all(name) {
		var v struct{ N int }
		if json.Unmarshal(ev.Data, &v) != nil {
			v.N = -1
		}
		out = append(out, v.N)
	}
	return out
}

// guildCreates counts GUILD_CREATE events per guild ID.
func (d *recDispatcher) guildCreates() map[string]int {
	out := map[string]int{}
	for _, ev := range d.all("GUILD_CREATE") {
		var g struct{ ID string }
		_ = json.Unmarshal(ev.Data, &g)
		out[g.ID]++
	}
	return out
}

// ---- Session store ----

// memStore is the suite's [protocols.SessionStore].
type memStore struct {
	mu sync.Mutex
	m  map[[2]int]protocols.Session
}

func newMemStore() *memStore { return &memStore{m: map[[2]int]protocols.Session{}} }

func (s *memStore) Load(ctx context.Context, id, count int) (protocols.Session, error) {
	if err := ctx.Err(); err != nil {
		return protocols.Session{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.m[[2]int{id, count}]
	if !ok {
		return protocols.Session{}, fmt.Errorf("conformance: session of shard %d/%d: %w", id, count, protocols.ErrNoSession)
	}
	return sess, nil
}

func (s *memStore) Save(ctx context.Context, sess protocols.Session) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[[2]int{sess.ShardID, sess.ShardCount}] = sess
	return nil
}

func (s *memStore) Delete(ctx context.Context, id, count int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, [2]int{id, count})
	return nil
}

// peek returns the stored session of id/count, if any.
func (s *memStore) peek(id, count int) (protocols.Session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.m[[2]int{id, count}]
	return sess, ok
}

// ---- HTTP client ----

// botClient is the suite's minimal [protocols.HTTPClient]: enough for GET
// /gateway/bot, without rate limiting.
type botClient struct {
	doer  *http.Client
	base  string
	token protocols.Token

	mu     sync.Mutex
	closed bool
}

func (c *botClient) Do(ctx context.Context, req *protocols.Request) (*protocols.Response, error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("conformance: http: %w", protocols.ErrClosed)
	}
	u := c.base + req.Route.Path
	if len(req.Query) > 0 {
		u += "?" + req.Query.Encode()
	}
	var body io.Reader
	if req.Body != nil {
		body = bytes.NewReader(req.Body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.Route.Method, u, body)
	if err != nil {
		return nil, fmt.Errorf("conformance: http: %w", err)
	}
	if !req.NoAuth {
		hr.Header.Set("Authorization", c.token.Authorization())
	}
	hr.Header.Set("User-Agent", suiteUserAgent)
	if req.Body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.doer.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("conformance: http %s: %w", req.Route, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("conformance: http %s: %w", req.Route, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, &protocols.HTTPError{Route: req.Route, Status: resp.StatusCode, Message: http.StatusText(resp.StatusCode), Body: b}
	}
	return &protocols.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

func (c *botClient) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

// ---- Logs ----

// logBuffer collects an implementation's logs.
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

// ---- The rig ----

// gwRig is one mock Discord and the suite's parts around it, inside a
// case's bubble. close ends the gateways, then the shards, then the mock;
// it is a cleanup of the case too.
type gwRig struct {
	t      *caseT
	srv    *mockdiscord.Server
	wire   *wire
	dialer *recDialer
	events *recDispatcher
	raw    *recDispatcher
	store  *memStore
	logs   *logBuffer
	http   *botClient

	// goroutines is how many goroutines the bubble had before the rig.
	goroutines int

	mu       sync.Mutex
	shards   []*runningShard
	gateways []protocols.Gateway
	closed   bool
}

func newRig(t *caseT, opts *mockdiscord.Options) *gwRig {
	t.Helper()
	if opts == nil {
		opts = &mockdiscord.Options{}
	}
	before := len(bubbleGoroutines())
	srv := mockdiscord.New(opts)
	w := &wire{}
	var ws protocols.Dialer = wsDialer{netDial: srv.NetDial}
	if t.newDialer != nil {
		ws = t.newDialer(srv.NetDial)
	}
	r := &gwRig{
		t:          t,
		goroutines: before,
		srv:        srv,
		wire:       w,
		dialer:     &recDialer{next: ws, w: w},
		events:     newRecDispatcher(),
		raw:        newRecDispatcher(),
		store:      newMemStore(),
		logs:       &logBuffer{},
		http:       &botClient{doer: srv.Client(), base: srv.APIBase(), token: protocols.BotToken(mockdiscord.DefaultToken)},
	}
	t.Cleanup(r.close)
	return r
}

// params returns ShardParams that reach the mock, every part filled
// except those the factory provides.
func (r *gwRig) params(id, count int) protocols.ShardParams {
	return protocols.ShardParams{
		ID: id, Count: count,
		Token:            protocols.BotToken(mockdiscord.DefaultToken),
		URL:              r.srv.GatewayURL(),
		Version:          10,
		Intents:          suiteIntents,
		Compression:      protocols.CompressNone,
		LargeThreshold:   suiteLargeThreshold,
		HandshakeTimeout: suiteHandshakeTimeout,
		Dialer:           r.dialer,
		Sessions:         r.store,
		Events:           r.events,
		Raw:              r.raw,
		Logger:           slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// gatewayParams returns GatewayParams that ask the mock's /gateway/bot for
// the URL, shard count and concurrency.
func (r *gwRig) gatewayParams() protocols.GatewayParams {
	sp := r.params(0, 0)
	sp.URL = ""
	return protocols.GatewayParams{Shard: sp, HTTPClient: r.http}
}

// close ends everything the rig started, in order, each bounded in time.
func (r *gwRig) close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	gateways, shards := r.gateways, r.shards
	r.mu.Unlock()
	for _, g := range gateways {
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = g.Close()
		}()
		if !waitChan(done, time.Minute) {
			r.t.T.Errorf("conformance: Gateway.Close did not return within a minute")
		}
	}
	for _, s := range shards {
		if s.finished() {
			continue
		}
		_ = s.sh.Close(protocols.CloseNormal)
		if !waitChan(s.done, time.Minute) {
			r.t.T.Errorf("conformance: Shard.Run did not return within a minute of Close")
		}
	}
	_ = r.srv.Close()
	// Give what the implementation still runs in the background (on
	// timers) a chance to end: the bubble must be empty when the case
	// ends.
	for i := 0; i < 120 && len(bubbleGoroutines()) > r.goroutines; i++ {
		time.Sleep(time.Second)
	}
	if r.t.Failed() {
		logs := r.logs.String()
		if len(logs) > 8000 {
			logs = "...\n" + logs[len(logs)-8000:]
		}
		if logs != "" {
			r.t.Logf("the implementation's logs:\n%s", logs)
		}
	}
}

// waitChan waits for ch to close, at most d of bubble time.
func waitChan(ch <-chan struct{}, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ch:
		return true
	case <-timer.C:
		return false
	}
}

// poll checks cond, every 100 ms for a second and then every second,
// until it holds or d passed, and reports whether it held.
func poll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for i := 0; ; i++ {
		settle()
		if cond() {
			return true
		}
		if !time.Now().Before(deadline) {
			return false
		}
		step := 100 * time.Millisecond
		if i >= 10 {
			step = time.Second
		}
		time.Sleep(min(step, time.Until(deadline)))
	}
}

// ---- Running shards ----

// runningShard is a Shard's Run in its own goroutine.
type runningShard struct {
	sh   protocols.Shard
	done chan struct{}
	// Set before done is closed.
	err error
	at  time.Time

	mu      sync.Mutex
	readies []time.Time
	signal  chan struct{} // capacity 1: a ready callback came
}

// run starts sh.Run(ctx) with a ready callback that records each call.
func (r *gwRig) run(ctx context.Context, sh protocols.Shard) *runningShard {
	s := &runningShard{sh: sh, done: make(chan struct{}), signal: make(chan struct{}, 1)}
	r.mu.Lock()
	r.shards = append(r.shards, s)
	r.mu.Unlock()
	go func() {
		defer close(s.done)
		s.err = sh.Run(ctx, func() {
			s.mu.Lock()
			s.readies = append(s.readies, time.Now())
			s.mu.Unlock()
			select {
			case s.signal <- struct{}{}:
			default:
			}
		})
		s.at = time.Now()
	}()
	return s
}

func (s *runningShard) finished() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// readyCount returns how many times the ready callback was called.
func (s *runningShard) readyCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.readies)
}

// awaitReady waits until the ready callback was called n times in all, at
// most d, and reports whether it was; it returns early when Run returns.
func (s *runningShard) awaitReady(n int, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		if s.readyCount() >= n {
			return true
		}
		select {
		case <-s.signal:
		case <-s.done:
			return s.readyCount() >= n
		case <-timer.C:
			settle()
			return s.readyCount() >= n
		}
	}
}

// mustReady fails the case unless the shard becomes ready for the nth time
// within d.
func (s *runningShard) mustReady(t *caseT, what string, n int, d time.Duration) {
	t.Helper()
	if s.awaitReady(n, d) {
		return
	}
	if s.finished() {
		t.Fatalf("%s: Shard.Run returned %v at %s, want the shard ready (ready callback %d times so far, want %d)", what, s.err, t.since(s.at), s.readyCount(), n)
	}
	t.Fatalf("%s: the shard was not ready within %v (ready callback %d times so far, want %d)", what, d, s.readyCount(), n)
}

// stop closes the shard with code and waits for Run to return.
func (s *runningShard) stop(t *caseT, code protocols.CloseCode) error {
	t.Helper()
	if err := s.sh.Close(code); err != nil {
		t.Errorf("Shard.Close(%d): got error %v, want nil", code, err)
	}
	if !waitChan(s.done, stopTimeout) {
		t.Fatalf("Shard.Close(%d): Run did not return within %v", code, stopTimeout)
	}
	return s.err
}

// newShardIn builds a shard with the factory, failing the case on nil.
func newShardIn(t *caseT, newShard func(t *testing.T, p protocols.ShardParams) protocols.Shard, p protocols.ShardParams) protocols.Shard {
	t.Helper()
	sh := newShard(t.T, p)
	if sh == nil {
		t.Fatal("conformance: newShard returned nil")
	}
	return sh
}

// ---- Observations ----

// obs returns the mock's gateway observations of kind.
func (r *gwRig) obs(kind mockdiscord.GatewayObservationKind) []mockdiscord.GatewayObservation {
	var out []mockdiscord.GatewayObservation
	for _, o := range r.srv.GatewayObservations() {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// clientCloses returns the closes the client started.
func (r *gwRig) clientCloses() []mockdiscord.GatewayObservation {
	var out []mockdiscord.GatewayObservation
	for _, o := range r.obs(mockdiscord.ObserveClose) {
		if o.By == "client" {
			out = append(out, o)
		}
	}
	return out
}

// connCount returns how many websocket connections the mock accepted.
func (r *gwRig) connCount() int { return len(r.obs(mockdiscord.ObserveConnect)) }

// inject applies a gateway fault or fails the case.
func (r *gwRig) inject(f mockdiscord.GatewayFault) {
	r.t.Helper()
	if _, err := r.srv.InjectGateway(f); err != nil {
		r.t.Fatalf("conformance: InjectGateway(%+v): %v", f, err)
	}
}

// noViolations fails the case for each thing the mock says a well-behaved
// client never causes, except those allow matches.
func (r *gwRig) noViolations(allow ...string) {
	r.t.Helper()
	for _, v := range r.srv.GatewayViolations() {
		if !slices.ContainsFunc(allow, func(a string) bool { return strings.Contains(v, a) }) {
			r.t.Errorf("the mock saw a violation: %s", v)
		}
	}
}

// connPath returns the path of connection conn, or "".
func (r *gwRig) connPath(conn int) string {
	for _, o := range r.obs(mockdiscord.ObserveConnect) {
		if o.Conn == conn {
			return o.Path
		}
	}
	return ""
}

// ofConn filters observations of one connection.
func ofConn(obs []mockdiscord.GatewayObservation, conn int) []mockdiscord.GatewayObservation {
	var out []mockdiscord.GatewayObservation
	for _, o := range obs {
		if o.Conn == conn {
			out = append(out, o)
		}
	}
	return out
}

// accepted filters accepted observations.
func accepted(obs []mockdiscord.GatewayObservation) []mockdiscord.GatewayObservation {
	var out []mockdiscord.GatewayObservation
	for _, o := range obs {
		if o.Accepted {
			out = append(out, o)
		}
	}
	return out
}

// sameQuery reports whether two raw queries hold the same parameters.
func sameQuery(a, b string) bool {
	qa, err1 := url.ParseQuery(a)
	qb, err2 := url.ParseQuery(b)
	if err1 != nil || err2 != nil || len(qa) != len(qb) {
		return false
	}
	for k, v := range qa {
		if !slices.Equal(v, qb[k]) {
			return false
		}
	}
	return true
}

// streamTo dispatches n events name {"n": from..from+n-1} to shard.
func (r *gwRig) streamTo(shard int, name string, from, n int) {
	r.t.Helper()
	for i := range n {
		if _, err := r.srv.DispatchToShard(shard, name, map[string]int{"n": from + i}); err != nil {
			r.t.Fatalf("conformance: DispatchToShard: %v", err)
		}
	}
}

// inOrder checks that got is 1..want, each once, and describes the first
// difference.
func inOrder(got []int, want int) string {
	for i, n := range got {
		if n != i+1 {
			return fmt.Sprintf("event %d of %d delivered is n=%d, want n=%d (lost, duplicated or out of order)", i+1, len(got), n, i+1)
		}
	}
	if len(got) != want {
		return fmt.Sprintf("%d events delivered, want %d", len(got), want)
	}
	return ""
}
