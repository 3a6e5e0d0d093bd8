package mockdiscord

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"
)

// ErrAlreadyStarted is returned by [Server.Start] when the server already
// listens on TCP.
var ErrAlreadyStarted = errors.New("mockdiscord: already started")

// Server is a mock Discord REST API and gateway. Create it with [New]; serve it with
// [Server.Start] (loopback TCP), [Server.Client] (in memory, usable in a
// testing/synctest bubble) or [Server.Handler] (your own server); stop it
// with [Server.Close].
//
// A Server is safe for concurrent use.
type Server struct {
	cfg     config
	handler http.Handler
	srv     *http.Server

	mu          sync.Mutex
	closed      bool
	done        chan struct{} // closed by Close
	tcpLn       net.Listener
	tcpURL      string
	pipe        *pipeListener
	conns       map[net.Conn]bool     // server-side connections, counted in wg
	clientConns map[net.Conn]struct{} // client ends of in-memory connections
	hijacked    map[net.Conn]struct{} // gateway websocket connections
	gw          *gateway
	wg          sync.WaitGroup
	client      *http.Client

	world        *world
	buckets      map[*route]*bucketState
	windows      map[string]*window
	global       []time.Time // admitted non-exempt requests in the last second
	invalid      []time.Time // invalid responses in the last InvalidRequestWindow
	bannedUntil  time.Time
	faults       []*queuedFault
	obs          []Observation
	obsSeq       []uint64 // arrival sequence of each obs entry
	seq          uint64
	interactions []InteractionResponse
	sessions     sessionStarts

	evMu    sync.Mutex // serialises event delivery
	pending []Event    // guarded by mu; delivered in order by publish
	subs    map[int]func(Event)
	nextSub int
}

// New returns a Server configured by opts; nil means all defaults. It
// starts no goroutine, so it can be built inside a testing/synctest bubble
// (and must be, to be used with [Server.Client] there). New never fails:
// see [Options.Validate] for what it fixes or drops.
func New(opts *Options) *Server {
	now := time.Now()
	s := &Server{
		cfg:         newConfig(opts),
		done:        make(chan struct{}),
		conns:       map[net.Conn]bool{},
		clientConns: map[net.Conn]struct{}{},
		hijacked:    map[net.Conn]struct{}{},
		subs:        map[int]func(Event){},
	}
	s.world = newWorld(&s.cfg, now)
	s.gw = newGateway(s)
	s.resetLimits()
	s.handler = http.HandlerFunc(s.serveHTTP)
	s.srv = &http.Server{Handler: s.handler, ConnState: s.connState}
	return s
}

// resetLimits restores counters, bucket specs, bans and faults. Callers
// hold mu (or own s exclusively).
func (s *Server) resetLimits() {
	s.buckets = map[*route]*bucketState{}
	for rt, b := range s.cfg.specs {
		s.buckets[rt] = &bucketState{hash: b.Hash, group: b.counterGroup(), limit: b.Limit, window: b.Window, perResource: b.PerResource}
	}
	s.windows = map[string]*window{}
	s.global = nil
	s.invalid = nil
	s.bannedUntil = time.Time{}
	s.faults = nil
	s.sessions = sessionStarts{}
}

// Handler returns the handler behind the server: the REST API under
// /api/v10/ and /api/v9/, the gateway websocket at /gateway, /gateway/
// and /gateway-resume, and the control API under /_mock/. Serving it from
// your own http.Server works, but [Server.Close] cannot close that
// server's connections (it does close gateway websockets).
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Path) >= len(controlPrefix) && r.URL.Path[:len(controlPrefix)] == controlPrefix {
		s.serveControl(w, r)
		return
	}
	if ok, resume := isGatewayPath(r.URL.Path); ok {
		s.serveGateway(w, r, resume)
		return
	}
	// Everything else is the REST API, which answers 404 outside /api/.
	s.serveAPI(w, r)
}

// connState tracks server-side connections so that Close can close them
// and wait for their goroutines. It runs on the Serve goroutine for
// StateNew (so wg is never zero then) and on the connection's goroutine
// afterwards.
func (s *Server) connState(c net.Conn, st http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch st {
	case http.StateNew:
		s.conns[c] = true
		s.wg.Add(1)
		if s.closed {
			_ = c.Close()
		}
	case http.StateHijacked, http.StateClosed:
		if s.conns[c] {
			delete(s.conns, c)
			s.wg.Done()
		}
	}
}

// Start listens on addr over TCP ("127.0.0.1:0" picks a free port) and
// serves in a goroutine until Close. It returns the listen error,
// ErrAlreadyStarted, or an error wrapping net.ErrClosed after Close. Do not
// use it inside a testing/synctest bubble: real sockets stall fake time;
// use [Server.Client] there.
func (s *Server) Start(addr string) error {
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return fmt.Errorf("mockdiscord: start: %w", net.ErrClosed)
	case s.tcpLn != nil:
		s.mu.Unlock()
		return ErrAlreadyStarted
	}
	s.mu.Unlock()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("mockdiscord: start: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		_ = ln.Close()
		return fmt.Errorf("mockdiscord: start: %w", net.ErrClosed)
	case s.tcpLn != nil:
		_ = ln.Close()
		return ErrAlreadyStarted
	}
	s.tcpLn = ln
	s.tcpURL = "http://" + ln.Addr().String()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.srv.Serve(ln)
	}()
	return nil
}

// URL returns the server's base URL: "http://127.0.0.1:PORT" after Start,
// else "http://mockdiscord.test", a name that only [Server.Client] can
// reach.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tcpURL != "" {
		return s.tcpURL
	}
	return "http://mockdiscord.test"
}

// APIBase returns URL() + "/api/v10".
func (s *Server) APIBase() string { return s.URL() + "/api/v10" }

// Client returns an *http.Client whose transport serves every request
// in memory: each request gets a net.Pipe connection to an http.Server
// running Handler, started on first use. Every host name and scheme (even
// https://discord.com) reaches the mock. It works inside a testing/synctest
// bubble when the Server was created in the same bubble, and every
// goroutine it starts has ended when Close returns. Requests after Close
// fail with an error wrapping net.ErrClosed. Each call returns the same
// client.
func (s *Server) Client() *http.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		s.client = &http.Client{Transport: &pipeTransport{s: s}}
	}
	return s.client
}

// Close stops the TCP and in-memory servers, closes every connection
// (gateway websockets included, without a close frame), wakes requests
// waiting on Latency or a slow fault, and returns once all
// the goroutines the Server started have ended. It is idempotent and
// always returns nil.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	tcp, pipe := s.tcpLn, s.pipe
	s.mu.Unlock()

	_ = s.srv.Close()
	if tcp != nil {
		_ = tcp.Close()
	}
	if pipe != nil {
		_ = pipe.Close()
	}
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	for c := range s.clientConns {
		_ = c.Close()
	}
	for c := range s.hijacked {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// goTracked runs f in a goroutine that Close waits for. It reports false,
// without running f, after Close.
func (s *Server) goTracked(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

// pause waits d, and reports how the wait ended: pauseDone, pauseCanceled
// (ctx ended) or pauseClosed (the server closed).
func (s *Server) pause(ctx context.Context, d time.Duration) pauseResult {
	if d <= 0 {
		return pauseDone
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return pauseDone
	case <-ctx.Done():
		return pauseCanceled
	case <-s.done:
		return pauseClosed
	}
}

type pauseResult int

const (
	pauseDone pauseResult = iota
	pauseCanceled
	pauseClosed
)

// Token returns the accepted bot token, without "Bot ".
func (s *Server) Token() string { return s.cfg.Token }

// UserID returns the bot user's ID, decoded from the token (for
// DefaultToken, 111111111111111111). It is also the application ID:
// POST /webhooks/{UserID}/{token} is an interaction follow-up.
func (s *Server) UserID() string { return s.world.botID }

// Guilds returns the IDs of the fake world's guilds, in order.
func (s *Server) Guilds() []string {
	out := make([]string, len(s.world.guilds))
	for i, g := range s.world.guilds {
		out[i] = g.ID
	}
	return out
}

// Channels returns the IDs of the fake world's text channels, guild by
// guild, in order.
func (s *Server) Channels() []string {
	out := make([]string, len(s.world.channels))
	for i, c := range s.world.channels {
		out[i] = c.ID
	}
	return out
}

// Channel returns a channel of the fake world by ID.
func (s *Server) Channel(id string) (Channel, bool) {
	ch := s.world.chanIdx[id]
	if ch == nil {
		return Channel{}, false
	}
	return *ch, true
}

// World returns the fake world's guilds, each with its channel IDs.
func (s *Server) World() []Guild {
	out := make([]Guild, len(s.world.guilds))
	for i, g := range s.world.guilds {
		out[i] = Guild{ID: g.ID, Name: g.Name, ChannelIDs: append([]string(nil), g.ChannelIDs...)}
	}
	return out
}

// Webhooks returns the fake world's webhooks, one per channel, in channel
// order.
func (s *Server) Webhooks() []Webhook {
	out := make([]Webhook, len(s.world.webhooks))
	for i, h := range s.world.webhooks {
		out[i] = *h
	}
	return out
}

// Messages returns copies of the messages in a channel, oldest first; nil
// for an unknown channel.
func (s *Server) Messages(channelID string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.world.messages[channelID]
	if len(list) == 0 {
		return nil
	}
	out := make([]Message, len(list))
	for i, m := range list {
		out[i] = m.clone()
	}
	return out
}

// InteractionResponse is one accepted POST
// /interactions/{interaction_id}/{interaction_token}/callback.
type InteractionResponse struct {
	// ID and Token are the interaction's ID and token from the path.
	ID, Token string
	// Type is the callback type from the body.
	Type int
	// Data is the body's data field, raw ("" when absent).
	Data []byte
	// Time is when the mock accepted it.
	Time time.Time
}

// InteractionResponses returns the accepted interaction callbacks, in
// order.
func (s *Server) InteractionResponses() []InteractionResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]InteractionResponse(nil), s.interactions...)
}

// Reset clears observations, rate-limit counters (per-route and global),
// the invalid-request count and any ban, queued faults and hash changes,
// interaction responses, session starts, and every message; the guilds,
// channels and webhooks stay. Snowflakes keep increasing. Subscribers stay
// subscribed. On the gateway it clears observations, pending faults and
// resume refusals, and identify and member-request timing; connections and
// sessions stay.
func (s *Server) Reset() {
	s.gw.reset()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetLimits()
	s.obs, s.obsSeq = nil, nil
	s.interactions = nil
	s.world.clearMessages()
}

// Event is a change in the fake world, delivered to [Server.Subscribe]rs.
// The gateway half of the mock turns events into dispatches.
type Event struct {
	// Type is the dispatch name: MESSAGE_CREATE, MESSAGE_UPDATE,
	// MESSAGE_DELETE, MESSAGE_REACTION_ADD, MESSAGE_REACTION_REMOVE or
	// TYPING_START.
	Type string
	// ChannelID and GuildID say where it happened.
	ChannelID, GuildID string
	// Message is the message after the change (before it, for
	// MESSAGE_DELETE); zero for TYPING_START.
	Message Message
	// UserID is who reacted or typed.
	UserID string
	// Emoji is the reaction's emoji.
	Emoji string
	// Time is when it happened.
	Time time.Time
}

// Subscribe registers fn to be called with every later [Event], in the
// order the changes happened, one call at a time. fn runs on the goroutine
// of the request that made the change, before its response is written, so
// it must not block, and must not send requests to the Server or call
// SimulateMessage (either would deadlock); calling other Server methods,
// and cancel, is fine. cancel removes fn; it is idempotent.
func (s *Server) Subscribe(fn func(Event)) (cancel func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextSub
	s.nextSub++
	s.subs[id] = fn
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.subs, id)
	}
}

// emit queues an event; the caller holds mu and later calls publish.
func (s *Server) emit(ev Event) {
	if len(s.subs) > 0 {
		s.pending = append(s.pending, ev)
	}
}

// publish delivers queued events in order. It must be called without mu.
func (s *Server) publish() {
	s.evMu.Lock()
	defer s.evMu.Unlock()
	for {
		s.mu.Lock()
		evs := s.pending
		s.pending = nil
		ids := make([]int, 0, len(s.subs))
		for id := range s.subs {
			ids = append(ids, id)
		}
		sort.Ints(ids)
		fns := make([]func(Event), len(ids))
		for i, id := range ids {
			fns[i] = s.subs[id]
		}
		s.mu.Unlock()
		if len(evs) == 0 {
			return
		}
		for _, ev := range evs {
			for _, fn := range fns {
				fn(ev)
			}
		}
	}
}
