package reference

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cordkit/cordkit/internal/backoff"
	"github.com/cordkit/cordkit/internal/wait"
	"github.com/cordkit/cordkit/protocols"
)

var (
	_ protocols.Shard                                      = (*shard)(nil)
	_ func(protocols.ShardParams) (protocols.Shard, error) = NewShard
	_ func(protocols.ShardParams) (protocols.Shard, error) = ShardOptions{}.New
)

// Defaults of [ShardOptions] and [protocols.ShardParams].
const (
	// DefaultReconnectBackoffBase is the ceiling of the first delay before
	// a reconnect; see [ShardOptions.BackoffBase].
	DefaultReconnectBackoffBase = time.Second
	// DefaultReconnectBackoffMax caps the delay between reconnects.
	DefaultReconnectBackoffMax = time.Minute
	// DefaultInvalidSessionWaitMin and DefaultInvalidSessionWaitMax bound
	// the random wait before identifying again after INVALID_SESSION with
	// d=false: Discord's docs asked for 1-5 seconds until 2022
	// (discord-protocol.md §C.12).
	DefaultInvalidSessionWaitMin = time.Second
	DefaultInvalidSessionWaitMax = 5 * time.Second
	// DefaultHandshakeTimeout bounds a dial plus HELLO when
	// ShardParams.HandshakeTimeout is zero.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultMaxQueuedBytes bounds the payloads a shard has read but its
	// handlers have not finished; see [ShardOptions.MaxQueuedBytes].
	DefaultMaxQueuedBytes = 64 << 20
	// DefaultGatewayVersion is the gateway version when
	// ShardParams.Version is zero.
	DefaultGatewayVersion = 10
	// MaxPayloadSize is the largest payload a client may send: "Client-sent
	// payloads must be at most 4096 bytes; a larger payload closes the
	// socket with 4002" (discord-protocol.md §C.4).
	MaxPayloadSize = 4096
	// PresenceLimit is how many presence updates (op 3) Discord accepts
	// per [PresenceWindow]: "Clients may only update their game status 5
	// times per 20 seconds" (discord-protocol.md §C.13).
	PresenceLimit = 5
	// PresenceWindow is the period of [PresenceLimit].
	PresenceWindow = 20 * time.Second
	// ReconnectCloseCode is the default close code of a connection the
	// shard drops to reconnect (zombie, op 7, op 9, decode errors, the
	// end of Run's context): a private-use code (RFC 6455 §7.4.2), never
	// 1000 or 1001, because "the client closes with 1000 or 1001: the
	// session is invalidated" (discord-protocol.md §D).
	ReconnectCloseCode protocols.CloseCode = 4900
)

// ErrReconnectRequested is the cause a shard gives
// [protocols.ShardParams.ShouldReconnect] when the gateway sent RECONNECT
// (op 7).
var ErrReconnectRequested = errors.New("reference: gateway requested a reconnect (op 7)")

// PayloadTooLargeError is returned by Send, without sending anything, for
// a payload above [MaxPayloadSize] bytes once encoded.
type PayloadTooLargeError struct {
	// Op is the payload's opcode.
	Op protocols.Opcode
	// Size is the encoded size in bytes.
	Size int
}

// Error describes the failure.
func (e *PayloadTooLargeError) Error() string {
	return fmt.Sprintf("reference: %s payload of %d bytes exceeds the gateway's %d-byte limit", e.Op, e.Size, MaxPayloadSize)
}

// IdentifyProperties is IDENTIFY's "properties" object.
type IdentifyProperties struct {
	// OS defaults to runtime.GOOS.
	OS string `json:"os"`
	// Browser is the library name; defaults to "cordkit".
	Browser string `json:"browser"`
	// Device is the library name; defaults to "cordkit".
	Device string `json:"device"`
}

// ShardOptions holds the settings of the reference shard that
// [protocols.ShardParams] does not carry. The zero value gives the
// defaults. Its New method has the shape of the TypeSheet's NewShard
// field:
//
//	ts.NewShard = reference.ShardOptions{BackoffMax: 30 * time.Second}.New
type ShardOptions struct {
	// BackoffBase is the ceiling of the first delay before reconnecting;
	// each further attempt without READY or RESUMED doubles it, and the
	// delay is drawn from the upper half of the ceiling (equal jitter).
	// Defaults to [DefaultReconnectBackoffBase].
	BackoffBase time.Duration
	// BackoffMax caps the reconnect delay. Defaults to
	// [DefaultReconnectBackoffMax].
	BackoffMax time.Duration
	// InvalidSessionWaitMin and InvalidSessionWaitMax bound the uniformly
	// random wait before a new IDENTIFY after INVALID_SESSION with
	// d=false. Default to [DefaultInvalidSessionWaitMin] and
	// [DefaultInvalidSessionWaitMax].
	InvalidSessionWaitMin, InvalidSessionWaitMax time.Duration
	// ReconnectCode is the close code sent when the shard drops a
	// connection it means to resume: a zombie connection, RECONNECT,
	// INVALID_SESSION, a corrupt payload, or the end of Run's context.
	// It must not be 1000 or 1001, which end the session. Defaults to
	// [ReconnectCloseCode].
	ReconnectCode protocols.CloseCode
	// Properties are IDENTIFY's properties; empty fields get their
	// defaults.
	Properties IdentifyProperties
	// MaxQueuedBytes bounds the payloads read but not yet handled. The
	// reading goroutine hands payloads to a dispatching goroutine through
	// a queue, so slow handlers never delay heartbeat ACKs; when the queue
	// holds more than this, reading waits for the handlers. Defaults to
	// [DefaultMaxQueuedBytes].
	MaxQueuedBytes int
}

// NewShard returns the reference [protocols.Shard] with default
// [ShardOptions].
func NewShard(p protocols.ShardParams) (protocols.Shard, error) { return ShardOptions{}.New(p) }

// New returns the reference [protocols.Shard] for p with options o.
//
// p.ID and p.Count must describe a shard (0 <= ID < Count), p.URL must be a
// ws:// or wss:// URL, p.Token must not be empty and p.Intents must pass
// [protocols.Intents.Validate]. Nil parts get the reference defaults: a
// [Dialer], [Codec], [NewInflater], [NewKeepAlive], [NewSendLimiter], an
// identify limiter with one bucket, an in-memory session store, and no
// dispatchers (payloads are then read and dropped). Version 0 means
// [DefaultGatewayVersion], HandshakeTimeout 0 [DefaultHandshakeTimeout].
//
// # Connections
//
// Run dials p.URL with ?v=10&encoding=json (and &compress=zlib-stream for
// that mode) and expects HELLO; a RECONNECT before it means reconnecting.
// It then starts the KeepAlive on its own goroutine and sends IDENTIFY, or
// RESUME when it has a session: one from an earlier connection, or, when
// Run starts, the one p.Sessions holds for (ID, Count), so that a
// restarted process resumes. A resume dials the session's
// resume_gateway_url with the same query. Before dialing for an IDENTIFY,
// Run waits on p.IdentifyLimiter, so that every identify, reconnects
// included, respects max_concurrency; resumes do not wait.
//
// Each connection has one reading goroutine (Run's own) and the
// keep-alive, which writes the heartbeats: on timers when p.KeepAlive is a
// [protocols.KeepAliveStarter] (the reference one is), so an idle shard
// runs its reading goroutine only, else on a goroutine of its own. Writes
// are serialized by a mutex. The reader inflates binary frames, decodes the
// envelope and handles the control opcodes itself: HEARTBEAT_ACK is handed
// to KeepAlive.Ack at once, a server HEARTBEAT to KeepAlive.BeatNow,
// dispatch sequence numbers, READY (session_id, resume_gateway_url, saved
// to p.Sessions) and RESUMED are recorded. Every payload is then queued
// for the dispatching goroutine, which hands it to p.Raw, and dispatches
// to p.Events too, in the order received. That goroutine runs only while
// there is work: the first payload starts it and it ends after a second
// without any, so an idle shard costs no goroutine for it. Handlers therefore
// never delay the reading of ACKs, yet see events one at a time and in
// order. Event.Data is a copy valid while the handler runs. The ready
// callback is called on the dispatching goroutine, after READY's or
// RESUMED's handlers. A dispatch whose sequence number is not above the
// last one (a replay the client already has) is dropped, so a resume
// delivers each event once.
//
// After each heartbeat is written, the session is saved to p.Sessions
// with the sequence number of the last dispatch whose handlers returned
// (when it moved). A process that dies without closing (a crash,
// SIGKILL) therefore resumes from at most about one heartbeat interval
// back: it loses no event, and the events handled since the last save
// are delivered again after such a restart (only then; within one
// process a resume delivers each event once).
//
// # Reconnecting
//
// Following discord-protocol.md §D:
//
//   - A zombie connection (no ACK between two heartbeats), RECONNECT,
//     INVALID_SESSION with d=true, a drop without a close frame and a
//     corrupt payload: close with ReconnectCode and resume.
//   - INVALID_SESSION with d=false: forget the session, wait a random
//     InvalidSessionWaitMin-Max, and identify on p.URL, through the
//     identify limiter. A RESUME answered this way falls back the same way.
//   - A close frame: as [protocols.CloseCode.Action] says. ActionResume
//     resumes (or identifies without a session), ActionIdentify forgets
//     the session first, and ActionStop (4004, 4010-4014) ends Run with
//     the *[protocols.CloseError], matching its sentinel
//     ([protocols.ErrInvalidToken], [protocols.ErrShardingRequired], ...),
//     without reconnecting.
//   - A failed dial of the resume URL forgets that URL: the next attempt
//     resumes on p.URL, and identifies if Discord refuses.
//
// Every reconnect is preceded by p.ShouldReconnect(ID, cause), when set;
// false ends Run with the cause. Consecutive attempts that reach neither
// READY nor RESUMED back off exponentially with jitter (BackoffBase,
// BackoffMax); a READY or RESUMED resets the backoff, and the first
// reconnect after it waits BackoffBase/2 to BackoffBase, so that shards
// dropped together do not return together; after RECONNECT (op 7) on a
// healthy connection, which Discord sends to one shard at a time, it
// reconnects at once. An attempt that must identify
// also takes its turn from the identify limiter before dialing, even if
// the dial then fails. The Inflater and the SendLimiter are reset for
// every connection.
//
// # Ending
//
// Run returns nil when ctx ends or Close is called, after every goroutine
// it started has ended and the handler in progress, if any, has returned;
// payloads read but not yet handled are dropped. On the way out the
// session is saved with the sequence number of the last handled dispatch,
// so that a resume (by a later Run or another process) replays what was
// dropped, except after Close(1000) or Close(1001), which end the session
// and delete it, and after a fatal close code, which deletes it too. A
// ctx end closes the connection with ReconnectCode: the session stays
// resumable.
//
// Close(code) closes the connection with code on the caller's goroutine
// (waiting at most the Conn's close timeout for Discord's answer) and
// makes Run return; it does not wait for Run, so a handler may call it.
// Close is idempotent; after it Run and Send return errors wrapping
// [protocols.ErrClosed].
//
// # Sending
//
// Send waits until the shard is ready (READY or RESUMED received on the
// current connection; a Send made while reconnecting waits for the new
// connection), encodes {"op", "d"} with the Codec, refuses a payload above
// [MaxPayloadSize] with a *[PayloadTooLargeError], waits on the
// SendLimiter and writes; a presence update (op 3) also waits until fewer
// than [PresenceLimit] went out in the last [PresenceWindow]. A payload
// written just as the connection drops may be lost: Send reports only
// what the websocket write reported. Heartbeats (op 1 with the last
// sequence number, null before the first dispatch) wait on the
// SendLimiter as heartbeats, from the keep-alive, so handlers never
// delay them. See [UpdatePresence], [UpdateVoiceState] and
// [RequestGuildMembers] for the common commands.
//
// # Concurrency
//
// Run may be called again after it returned, unless Close was called; not
// twice at once. Send, Close and Status may be called from any goroutine,
// handlers included.
func (o ShardOptions) New(p protocols.ShardParams) (protocols.Shard, error) {
	if p.ID < 0 || p.Count < 1 || p.ID >= p.Count {
		return nil, fmt.Errorf("reference: shard [%d, %d]: %w", p.ID, p.Count, protocols.ErrInvalidShard)
	}
	if p.Token.IsZero() {
		return nil, fmt.Errorf("reference: shard %d: %w: token is empty", p.ID, protocols.ErrInvalidToken)
	}
	if err := p.Intents.Validate(); err != nil {
		return nil, fmt.Errorf("reference: shard %d: %w", p.ID, err)
	}
	o, err := o.resolve()
	if err != nil {
		return nil, fmt.Errorf("reference: shard %d: %w", p.ID, err)
	}
	if p.Version == 0 {
		p.Version = DefaultGatewayVersion
	}
	if p.HandshakeTimeout <= 0 {
		p.HandshakeTimeout = DefaultHandshakeTimeout
	}
	mainURL, err := gatewayURL(p.URL, p.Version, p.Compression)
	if err != nil {
		return nil, fmt.Errorf("reference: shard %d: %w", p.ID, err)
	}
	if p.Dialer == nil {
		p.Dialer = NewDialer()
	}
	if p.Codec == nil {
		p.Codec = Codec{}
	}
	if p.NewInflater == nil {
		p.NewInflater = NewInflater
	}
	if p.KeepAlive == nil {
		p.KeepAlive = NewKeepAlive()
	}
	if p.SendLimiter == nil {
		p.SendLimiter = NewSendLimiter()
	}
	if p.IdentifyLimiter == nil {
		if p.IdentifyLimiter, err = NewIdentifyLimiter(protocols.IdentifyLimiterParams{MaxConcurrency: 1}); err != nil {
			return nil, err
		}
	}
	if p.Sessions == nil {
		p.Sessions = NewSessionStore()
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	inflater, err := p.NewInflater(p.Compression)
	if err != nil {
		return nil, fmt.Errorf("reference: shard %d: %w", p.ID, err)
	}
	return &shard{
		p:        p,
		o:        o,
		log:      p.Logger.With(slog.Int(logKeyShard, p.ID)),
		inflater: inflater,
		mainURL:  mainURL,
		backoff:  backoff.Backoff{Base: o.BackoffBase, Max: o.BackoffMax},
		closing:  make(chan struct{}),
		readyCh:  make(chan struct{}),
		session:  protocols.Session{ShardID: p.ID, ShardCount: p.Count},
	}, nil
}

// resolve fills o's defaults and checks it.
func (o ShardOptions) resolve() (ShardOptions, error) {
	if o.BackoffBase <= 0 {
		o.BackoffBase = DefaultReconnectBackoffBase
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = DefaultReconnectBackoffMax
	}
	if o.InvalidSessionWaitMin <= 0 {
		o.InvalidSessionWaitMin = DefaultInvalidSessionWaitMin
	}
	if o.InvalidSessionWaitMax <= 0 {
		o.InvalidSessionWaitMax = DefaultInvalidSessionWaitMax
	}
	if o.InvalidSessionWaitMax < o.InvalidSessionWaitMin {
		return o, fmt.Errorf("invalid-session wait range %v-%v is empty", o.InvalidSessionWaitMin, o.InvalidSessionWaitMax)
	}
	if o.ReconnectCode == 0 {
		o.ReconnectCode = ReconnectCloseCode
	}
	switch c := o.ReconnectCode; {
	case c == protocols.CloseNormal, c == protocols.CloseGoingAway:
		return o, fmt.Errorf("reconnect close code %d would end the session", int(c))
	case c < 1000, c > 4999, c == protocols.CloseNoStatus, c == protocols.CloseAbnormal, c == 1015:
		return o, fmt.Errorf("reconnect close code %d cannot be sent", int(c))
	}
	if o.Properties.OS == "" {
		o.Properties.OS = runtime.GOOS
	}
	if o.Properties.Browser == "" {
		o.Properties.Browser = "cordkit"
	}
	if o.Properties.Device == "" {
		o.Properties.Device = "cordkit"
	}
	if o.MaxQueuedBytes <= 0 {
		o.MaxQueuedBytes = DefaultMaxQueuedBytes
	}
	return o, nil
}

// Log attribute keys (STYLE §3.8).
const (
	logKeyShard     = "shard"
	logKeySeq       = "seq"
	logKeySession   = "session"
	logKeyCloseCode = "close_code"
	logKeyURL       = "url"
	logKeyDelay     = "retry_after"
)

// gatewayURL returns base with the gateway query: v, encoding=json and,
// for transport compression, compress. Other query parameters are kept.
func gatewayURL(base string, version int, mode protocols.Compression) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("gateway URL: %w", err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" || u.Host == "" {
		return "", fmt.Errorf("gateway URL %q: want ws:// or wss:// with a host", u.Redacted())
	}
	if u.Path == "" {
		u.Path = "/"
	}
	q := u.Query()
	for _, k := range []string{"v", "encoding", "compress"} {
		q.Del(k)
	}
	query := "v=" + strconv.Itoa(version) + "&encoding=json"
	switch mode {
	case protocols.CompressZlibStream, protocols.CompressZstdStream:
		query += "&compress=" + mode.String()
	}
	if rest := q.Encode(); rest != "" {
		query += "&" + rest
	}
	u.RawQuery = query
	u.Fragment = ""
	return u.String(), nil
}

// shard is the reference protocols.Shard.
type shard struct {
	p        protocols.ShardParams
	o        ShardOptions
	log      *slog.Logger
	inflater protocols.Inflater // used by the reading goroutine only
	mainURL  string
	backoff  backoff.Backoff

	// finishMu serializes the final save or delete of the session between
	// Run's exit and a Close that comes after it.
	finishMu sync.Mutex

	// presenceMu orders presence updates; presences holds when the last
	// PresenceLimit went out.
	presenceMu fifoMutex
	presences  []time.Time

	mu        sync.Mutex
	running   bool
	cancelRun context.CancelFunc // ends the running Run's context
	closed    bool
	closeCode protocols.CloseCode
	closing   chan struct{} // closed by Close
	conn      *shardConn    // the current connection; nil between connections
	session   protocols.Session
	// handled is the last dispatch whose handlers returned, and saved
	// the last one saveProgress stored.
	handled, saved seqMark
	ready          bool
	readyCh        chan struct{} // closed while ready; replaced when no longer ready
	latency        time.Duration
}

// seqMark is a sequence number in a session.
type seqMark struct {
	session string
	seq     int64
}

// step is what Run does after a connection ended.
type step int

const (
	stepResume         step = iota // reconnect; resume if there is a session
	stepIdentify                   // forget the session, reconnect, identify
	stepInvalidSession             // forget the session, wait 1-5 s, identify
	stepStop                       // return the cause from Run
	stepClosed                     // Close was called or ctx ended: return nil
)

// ending says why a connection ended.
type ending struct {
	step    step
	cause   error
	healthy bool // READY or RESUMED arrived on the connection
}

func (s *shard) Run(ctx context.Context, ready func()) (err error) {
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return fmt.Errorf("reference: shard %d: run: %w", s.p.ID, protocols.ErrClosed)
	case s.running:
		s.mu.Unlock()
		return fmt.Errorf("reference: shard %d: run: already running", s.p.ID)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.running, s.cancelRun = true, cancel
	s.mu.Unlock()

	var q *eventQueue
	q = newEventQueue(s.o.MaxQueuedBytes, func() { s.deliver(q, ready) })

	s.loadSession(runCtx)
	stop, cause := s.loop(runCtx, q)

	dropped := q.stop() // waits for the dispatching goroutine
	return s.finish(ctx, stop, cause, dropped)
}

// loop connects and reconnects until Run must end. It returns stepClosed,
// or stepStop with the error Run returns.
func (s *shard) loop(ctx context.Context, q *eventQueue) (step, error) {
	failures := 0 // connection attempts since the last READY or RESUMED
	var delay time.Duration
	for {
		if err := wait.Sleep(ctx, delay, nil); err != nil {
			return stepClosed, nil
		}
		e := s.connect(ctx, q)
		if e.healthy {
			failures = 0
		}
		var extra time.Duration
		switch e.step {
		case stepClosed:
			return stepClosed, nil
		case stepStop:
			return stepStop, e.cause
		case stepIdentify:
			s.dropSession(ctx)
		case stepInvalidSession:
			s.dropSession(ctx)
			lo, hi := s.o.InvalidSessionWaitMin, s.o.InvalidSessionWaitMax
			extra = lo + rand.N(hi-lo+1)
		}
		if ctx.Err() != nil {
			return stepClosed, nil
		}
		if sr := s.p.ShouldReconnect; sr != nil && !sr(s.p.ID, e.cause) {
			return stepStop, e.cause
		}
		switch {
		case e.healthy && failures == 0 && errors.Is(e.cause, ErrReconnectRequested):
			// Discord asked for it: "the client should reconnect and
			// resume" (discord-protocol.md §C.11), at once.
			delay = 0
		default:
			delay = max(s.backoff.Delay(failures), extra)
		}
		failures++
		s.log.LogAttrs(ctx, slog.LevelWarn, "gateway: reconnecting",
			slog.Duration(logKeyDelay, delay), slog.String("cause", errString(e.cause)))
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// loadSession takes the stored session of the shard, if it has none yet,
// so that a restarted process resumes.
func (s *shard) loadSession(ctx context.Context) {
	s.mu.Lock()
	has := s.session.ID != ""
	s.mu.Unlock()
	if has {
		return
	}
	sess, err := s.p.Sessions.Load(ctx, s.p.ID, s.p.Count)
	switch {
	case err == nil && sess.ID != "":
		s.mu.Lock()
		s.session = sess
		s.session.ShardID, s.session.ShardCount = s.p.ID, s.p.Count
		s.mu.Unlock()
		s.log.LogAttrs(ctx, slog.LevelInfo, "gateway: found a stored session", slog.Int64(logKeySeq, sess.Seq))
	case err != nil && !errors.Is(err, protocols.ErrNoSession) && ctx.Err() == nil:
		s.log.LogAttrs(ctx, slog.LevelWarn, "gateway: cannot load the stored session", slog.String("error", err.Error()))
	}
}

// dropSession forgets the session, here and in the store.
func (s *shard) dropSession(ctx context.Context) {
	s.mu.Lock()
	s.session = protocols.Session{ShardID: s.p.ID, ShardCount: s.p.Count}
	s.mu.Unlock()
	if err := s.p.Sessions.Delete(ctx, s.p.ID, s.p.Count); err != nil && ctx.Err() == nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "gateway: cannot delete the stored session", slog.String("error", err.Error()))
	}
}

// saveSession stores the current session.
func (s *shard) saveSession(ctx context.Context) {
	s.mu.Lock()
	sess := s.session
	s.mu.Unlock()
	if sess.ID == "" {
		return
	}
	if err := s.p.Sessions.Save(ctx, sess); err != nil && ctx.Err() == nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "gateway: cannot save the session", slog.String("error", err.Error()))
	}
}

// saveProgress stores the session with the sequence of the last event
// whose handlers returned, when that moved since the last save. Called
// after each heartbeat, it bounds what a process that dies without
// closing (a crash, SIGKILL) replays on its next resume to about one
// heartbeat interval of events, each already handled once: events are
// never lost, since only handled ones are counted.
func (s *shard) saveProgress(ctx context.Context) {
	s.mu.Lock()
	sess := s.session
	h := s.handled
	if sess.ID == "" || h.session != sess.ID || h.seq > sess.Seq || h == s.saved {
		s.mu.Unlock()
		return
	}
	sess.Seq = h.seq
	s.saved = h
	s.mu.Unlock()
	if err := s.p.Sessions.Save(ctx, sess); err != nil && ctx.Err() == nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "gateway: cannot save the session", slog.String("error", err.Error()))
	}
}

// finish ends Run: it settles the stored session and returns Run's error.
// dropped are the payloads read but never handled.
func (s *shard) finish(ctx context.Context, stop step, cause error, dropped []queued) error {
	s.finishMu.Lock()
	defer s.finishMu.Unlock()
	s.mu.Lock()
	s.running, s.cancelRun = false, nil
	closed, code := s.closed, s.closeCode
	// Resume from before the first dispatch no handler saw, so that a
	// resume replays what was dropped.
	for _, it := range dropped {
		if it.ev.Op == protocols.OpDispatch && it.ev.Seq > 0 && it.session == s.session.ID {
			s.session.Seq = it.ev.Seq - 1
			break
		}
	}
	s.mu.Unlock()

	sctx := context.WithoutCancel(ctx)
	switch {
	case stop == stepStop && isFatal(cause), closed && endsSession(code):
		s.dropSession(sctx)
	default:
		s.saveSession(sctx)
	}
	if stop == stepStop {
		return fmt.Errorf("reference: shard %d: %w", s.p.ID, cause)
	}
	return nil
}

// isFatal reports whether err is a close code that stops the shard.
func isFatal(err error) bool {
	var ce *protocols.CloseError
	return errors.As(err, &ce) && ce.Code.Action() == protocols.ActionStop
}

// endsSession reports whether closing with code ends the session.
func endsSession(code protocols.CloseCode) bool {
	return code == protocols.CloseNormal || code == protocols.CloseGoingAway
}

func (s *shard) Close(code protocols.CloseCode) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed, s.closeCode = true, code
	close(s.closing)
	sc, running, cancel := s.conn, s.running, s.cancelRun
	s.mu.Unlock()

	if sc != nil {
		sc.end(ending{step: stepClosed}, code, "")
	}
	if cancel != nil {
		cancel()
	}
	if !running {
		s.finishMu.Lock()
		defer s.finishMu.Unlock()
		s.mu.Lock()
		running = s.running
		s.mu.Unlock()
		if !running && endsSession(code) {
			s.dropSession(context.Background())
		}
	}
	return nil
}

func (s *shard) Status() protocols.ShardStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return protocols.ShardStatus{
		ID: s.p.ID, Count: s.p.Count, Ready: s.ready, Session: s.session, Latency: s.latency,
	}
}

// outgoing is a payload the client sends.
type outgoing struct {
	Op protocols.Opcode `json:"op"`
	D  any              `json:"d"`
}

func (s *shard) Send(ctx context.Context, op protocols.Opcode, d any) error {
	payload, err := s.p.Codec.Marshal(outgoing{Op: op, D: d})
	if err != nil {
		return fmt.Errorf("reference: shard %d: encode %s: %w", s.p.ID, op, err)
	}
	if len(payload) > MaxPayloadSize {
		return &PayloadTooLargeError{Op: op, Size: len(payload)}
	}
	if op == protocols.OpPresenceUpdate {
		// Hold the presence turn until the update is written, so that the
		// window counts when updates really went out.
		if err := s.presenceMu.lock(ctx); err != nil {
			return fmt.Errorf("reference: shard %d: send %s: %w", s.p.ID, op, err)
		}
		defer s.presenceMu.unlock()
		if len(s.presences) >= PresenceLimit {
			if err := wait.Until(ctx, s.presences[len(s.presences)-PresenceLimit].Add(PresenceWindow), s.closing); err != nil {
				return fmt.Errorf("reference: shard %d: send %s: %w", s.p.ID, op, err)
			}
		}
		if err := s.send(ctx, op, payload); err != nil {
			return err
		}
		s.presences = append(s.presences[max(len(s.presences)+1-PresenceLimit, 0):], time.Now())
		return nil
	}
	return s.send(ctx, op, payload)
}

// send writes an encoded payload once the shard is ready, through the
// send limiter.
func (s *shard) send(ctx context.Context, op protocols.Opcode, payload []byte) error {
	for {
		sc, err := s.waitReady(ctx)
		if err != nil {
			return fmt.Errorf("reference: shard %d: send %s: %w", s.p.ID, op, err)
		}
		if err := s.p.SendLimiter.Wait(ctx, false); err != nil {
			return fmt.Errorf("reference: shard %d: send %s: %w", s.p.ID, op, err)
		}
		// The limiter was reset if the connection changed while we
		// waited: wait again, so the payload counts on the connection it
		// goes out on.
		s.mu.Lock()
		same := s.conn == sc && s.ready
		s.mu.Unlock()
		if !same {
			continue
		}
		if err := sc.write(ctx, payload); err != nil {
			return fmt.Errorf("reference: shard %d: send %s: %w", s.p.ID, op, err)
		}
		return nil
	}
}

// waitReady returns the current connection once the shard is ready.
func (s *shard) waitReady(ctx context.Context) (*shardConn, error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, protocols.ErrClosed
		}
		if s.ready && s.conn != nil {
			sc := s.conn
			s.mu.Unlock()
			return sc, nil
		}
		ch := s.readyCh
		s.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		select {
		case <-ch:
		case <-s.closing:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// setReady records whether the shard is ready; s.mu is held.
func (s *shard) setReadyLocked(ready bool) {
	if s.ready == ready {
		return
	}
	s.ready = ready
	if ready {
		close(s.readyCh)
	} else {
		s.readyCh = make(chan struct{})
	}
}

// withQuery gives a resume URL the main URL's query.
func (s *shard) withQuery(resumeURL string) (string, error) {
	u, err := url.Parse(s.mainURL)
	if err != nil {
		return "", err
	}
	r, err := url.Parse(resumeURL)
	if err != nil {
		return "", fmt.Errorf("resume URL: %w", err)
	}
	if r.Scheme != "ws" && r.Scheme != "wss" || r.Host == "" {
		return "", fmt.Errorf("resume URL %q: want ws:// or wss:// with a host", r.Redacted())
	}
	if r.Path == "" {
		r.Path = "/"
	}
	r.RawQuery = u.RawQuery
	r.Fragment = ""
	return r.String(), nil
}

// redactURL drops the query from a URL for logs.
func redactURL(s string) string {
	if i := strings.IndexByte(s, '?'); i >= 0 {
		return s[:i]
	}
	return s
}
