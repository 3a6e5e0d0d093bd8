package broken

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cordkit/cordkit/protocols"
)

// This file breaks shards the way real libraries did, mostly from the
// outside: a Dialer whose connections misbehave on the shard's behalf, a
// dispatcher or store the shard is handed, or a decorator over the Shard.

// ---- Connections ----

// connDialer wraps every connection a Dialer opens.
type connDialer struct {
	next protocols.Dialer
	url  func(string) string
	wrap func(protocols.Conn) protocols.Conn
}

func (d connDialer) Dial(ctx context.Context, u string) (protocols.Conn, error) {
	if d.url != nil {
		u = d.url(u)
	}
	c, err := d.next.Dial(ctx, u)
	if err != nil || d.wrap == nil {
		return c, err
	}
	return d.wrap(c), nil
}

// rewriteConn rewrites what a connection reads and writes.
type rewriteConn struct {
	protocols.Conn
	// write rewrites a payload before it is written.
	write func(p []byte) []byte
	// read rewrites a text message read, or drops it (nil).
	read func(p []byte) []byte
	// readErr rewrites a read error.
	readErr func(err error) error
	// close rewrites the close code.
	close func(code protocols.CloseCode) protocols.CloseCode
}

func (c *rewriteConn) Write(ctx context.Context, typ protocols.MessageType, p []byte) error {
	if c.write != nil && typ == protocols.MessageText {
		p = c.write(p)
	}
	return c.Conn.Write(ctx, typ, p)
}

func (c *rewriteConn) Read(ctx context.Context) (protocols.MessageType, []byte, error) {
	for {
		typ, p, err := c.Conn.Read(ctx)
		if err != nil {
			if c.readErr != nil {
				err = c.readErr(err)
			}
			return typ, p, err
		}
		if c.read == nil || typ != protocols.MessageText {
			return typ, p, nil
		}
		if p = c.read(p); p != nil {
			return typ, p, nil
		}
	}
}

func (c *rewriteConn) Close(code protocols.CloseCode, reason string) error {
	if c.close != nil {
		code = c.close(code)
	}
	return c.Conn.Close(code, reason)
}

// rewriting returns a Dialer whose connections rewrite as c says.
func rewriting(next protocols.Dialer, c rewriteConn) protocols.Dialer {
	return connDialer{next: next, wrap: func(conn protocols.Conn) protocols.Conn {
		rc := c
		rc.Conn = conn
		return &rc
	}}
}

// envelope is a gateway payload with d raw.
type envelope struct {
	Op int             `json:"op"`
	D  json.RawMessage `json:"d"`
	S  *int64          `json:"s,omitempty"`
	T  *string         `json:"t,omitempty"`
}

// decode reads an envelope; ok is false when p is not one.
func decode(p []byte) (envelope, bool) {
	var env envelope
	return env, json.Unmarshal(p, &env) == nil
}

// rewriteD re-encodes p with d changed by edit (a JSON object).
func rewriteD(p []byte, edit func(d map[string]json.RawMessage)) []byte {
	env, ok := decode(p)
	if !ok {
		return p
	}
	var d map[string]json.RawMessage
	if json.Unmarshal(env.D, &d) != nil {
		return p
	}
	edit(d)
	env.D, _ = json.Marshal(d)
	out, err := json.Marshal(env)
	if err != nil {
		return p
	}
	return out
}

// CloseWith1000 closes every connection with 1000, whatever the shard
// asks, as discordgo's zombie path did (#491): the session ends with each
// reconnect. It breaks "A connection without a heartbeat ACK between two
// heartbeats is closed with a code other than 1000 and 1001, and the
// session resumed." and fails TestShard/ZombieClosesWithoutInvalidating,
// ReconnectOpResumes, InvalidSessionResumable, CorruptPayloadResumes and
// CloseEndsSessionOnlyFor1000.
func CloseWith1000(next protocols.Dialer) protocols.Dialer {
	return rewriting(next, rewriteConn{close: func(protocols.CloseCode) protocols.CloseCode { return protocols.CloseNormal }})
}

// PinURL dials the scheme, host and path of main whatever URL the shard
// asks for, keeping the query: it never resumes on resume_gateway_url
// (discordgo before #1307). It breaks "A resume dials the session's
// resume_gateway_url with the same query." and fails
// TestShard/ResumeUsesResumeURL.
func PinURL(next protocols.Dialer, main string) protocols.Dialer {
	return connDialer{next: next, url: func(u string) string {
		m, err1 := url.Parse(main)
		got, err2 := url.Parse(u)
		if err1 != nil || err2 != nil {
			return u
		}
		m.RawQuery = got.RawQuery
		return m.String()
	}}
}

// StickyResumeURL dials the last resume_gateway_url READY named for every
// connection, even when that URL keeps failing. It breaks "When the resume
// URL cannot be reached, the shard resumes on URL." and fails
// TestShard/ResumeFallsBackToMainURL.
func StickyResumeURL(next protocols.Dialer) protocols.Dialer {
	s := &resumeMemo{}
	return connDialer{
		next: next,
		url: func(u string) string {
			s.mu.Lock()
			defer s.mu.Unlock()
			got, err1 := url.Parse(u)
			r, err2 := url.Parse(s.resume)
			if s.resume == "" || err1 != nil || err2 != nil {
				return u
			}
			r.RawQuery = got.RawQuery
			return r.String()
		},
		wrap: func(c protocols.Conn) protocols.Conn {
			return &rewriteConn{Conn: c, read: func(p []byte) []byte {
				if env, ok := decode(p); ok && env.T != nil && *env.T == "READY" {
					var d struct {
						ResumeURL string `json:"resume_gateway_url"`
					}
					if json.Unmarshal(env.D, &d) == nil && d.ResumeURL != "" {
						s.mu.Lock()
						s.resume = d.ResumeURL
						s.mu.Unlock()
					}
				}
				return p
			}}
		},
	}
}

type resumeMemo struct {
	mu     sync.Mutex
	resume string
}

// BotPrefixInIdentify sends IDENTIFY's token with the "Bot " prefix of the
// Authorization header (discord-api-docs #602). It breaks "Run dials URL
// with v=Version and encoding=json in the query, and IDENTIFY carries the
// bare token, the properties, Intents, [ID, Count] as shard and
// LargeThreshold." and fails TestShard/HelloIdentifyReady.
func BotPrefixInIdentify(next protocols.Dialer) protocols.Dialer {
	return rewriting(next, rewriteConn{write: func(p []byte) []byte {
		if env, ok := decode(p); !ok || env.Op != int(protocols.OpIdentify) {
			return p
		}
		return rewriteD(p, func(d map[string]json.RawMessage) {
			var tok string
			if json.Unmarshal(d["token"], &tok) == nil {
				d["token"], _ = json.Marshal("Bot " + tok)
			}
		})
	}})
}

// NoPayloadCompression drops "compress": true from IDENTIFY. It breaks
// "CompressZlibPayload is payload compression (IDENTIFY compress:true):
// some payloads arrive as binary frames, each a whole zlib stream." and
// fails TestShard/PayloadCompression.
func NoPayloadCompression(next protocols.Dialer) protocols.Dialer {
	return rewriting(next, rewriteConn{write: func(p []byte) []byte {
		if env, ok := decode(p); !ok || env.Op != int(protocols.OpIdentify) {
			return p
		}
		return rewriteD(p, func(d map[string]json.RawMessage) { delete(d, "compress") })
	}})
}

// ZeroSeqHeartbeat sends 0 instead of null in heartbeats before the first
// dispatch, as a shard that keeps the sequence in an int64 does. It
// breaks "A heartbeat carries the last sequence number received, or null
// before the first dispatch." and fails
// TestShard/HeartbeatNullBeforeFirstDispatch.
func ZeroSeqHeartbeat(next protocols.Dialer) protocols.Dialer {
	return rewriting(next, rewriteConn{write: func(p []byte) []byte {
		if env, ok := decode(p); ok && env.Op == int(protocols.OpHeartbeat) && (env.D == nil || string(bytes.TrimSpace(env.D)) == "null") {
			return []byte(`{"op":1,"d":0}`)
		}
		return p
	}})
}

// dropOp returns a Dialer whose connections never deliver payloads of op.
func dropOp(next protocols.Dialer, op protocols.Opcode) protocols.Dialer {
	return rewriting(next, rewriteConn{read: func(p []byte) []byte {
		if env, ok := decode(p); ok && env.Op == int(op) {
			return nil
		}
		return p
	}})
}

// IgnoreServerHeartbeat never answers a server's HEARTBEAT (op 1). It
// breaks "A server HEARTBEAT (op 1) is answered with a heartbeat at once,
// without moving the schedule." and fails
// TestShard/ServerHeartbeatAnsweredAtOnce and
// HeartbeatNullBeforeFirstDispatch.
func IgnoreServerHeartbeat(next protocols.Dialer) protocols.Dialer {
	return dropOp(next, protocols.OpHeartbeat)
}

// IgnoreReconnect never acts on RECONNECT (op 7). It breaks "RECONNECT (op
// 7), at any time, even before HELLO, makes the shard reconnect and
// resume." and fails TestShard/ReconnectOpResumes, ReconnectRightAfterReady
// and ReconnectBeforeHello.
func IgnoreReconnect(next protocols.Dialer) protocols.Dialer {
	return dropOp(next, protocols.OpReconnect)
}

// InvalidSessionNeverResumable reads every INVALID_SESSION as d=false. It
// breaks "INVALID_SESSION with d=true makes the shard reconnect and
// resume." and fails TestShard/InvalidSessionResumable.
func InvalidSessionNeverResumable(next protocols.Dialer) protocols.Dialer {
	return rewriting(next, rewriteConn{read: func(p []byte) []byte {
		if env, ok := decode(p); ok && env.Op == int(protocols.OpInvalidSession) {
			return []byte(`{"t":null,"s":null,"op":9,"d":false}`)
		}
		return p
	}})
}

// ResumeSeqAhead sends RESUME with a sequence number one past the last
// one received, so Discord refuses it (4007) and the shard starts a new
// session, losing what happened meanwhile. It breaks "Across reconnects,
// every dispatch reaches Events exactly once, in sequence order." and
// fails TestShard/NoEventLostOrDuplicated and ResumeAfterRestart.
func ResumeSeqAhead(next protocols.Dialer) protocols.Dialer {
	return rewriting(next, rewriteConn{write: func(p []byte) []byte {
		if env, ok := decode(p); !ok || env.Op != int(protocols.OpResume) {
			return p
		}
		return rewriteD(p, func(d map[string]json.RawMessage) {
			var seq int64
			if json.Unmarshal(d["seq"], &seq) == nil {
				d["seq"], _ = json.Marshal(seq + 1)
			}
		})
	}})
}

// ForgetCloseCodes reads every close frame as 4000, as discordgo did
// (#1544): fatal codes send the shard back in a reconnect loop and codes
// that end the session are resumed. It breaks "ActionStop ends the shard
// with a typed error: reconnecting cannot help." and fails
// TestShard/CloseCodesFatal and CloseCodesIdentify.
func ForgetCloseCodes(next protocols.Dialer) protocols.Dialer {
	return rewriting(next, rewriteConn{readErr: func(err error) error {
		var ce *protocols.CloseError
		if errors.As(err, &ce) && ce.Code != protocols.CloseAbnormal {
			return &protocols.CloseError{Code: protocols.CloseUnknownError, Reason: ce.Reason}
		}
		return err
	}})
}

// AllClosesFatal reads every close frame as 4004, so that any close
// ends the shard. It breaks "Action returns what to do after a close with
// c, following Discord's close code table: 4004 and 4010-4014 stop; 4003,
// 4007 and 4009 start a new session; every other code, and a drop with no
// code, resumes." and fails TestShard/CloseCodesResume.
func AllClosesFatal(next protocols.Dialer) protocols.Dialer {
	return rewriting(next, rewriteConn{readErr: func(err error) error {
		var ce *protocols.CloseError
		if errors.As(err, &ce) && ce.Code != protocols.CloseAbnormal {
			return &protocols.CloseError{Code: protocols.CloseAuthenticationFailed, Reason: ce.Reason}
		}
		return err
	}})
}

// ---- Parameters ----

// GiveUpOnDialError makes the shard stop at the first failed dial, as
// disgo did (d072b7c). It breaks "A failed dial is retried with backoff
// until Run ends." and fails TestShard/DialFailuresRetried.
func GiveUpOnDialError(p *protocols.ShardParams) {
	p.ShouldReconnect = func(int, error) bool { return false }
}

// IgnoreShouldReconnect drops ShardParams.ShouldReconnect. It breaks
// "ShouldReconnect, when not nil, is asked before every reconnect; false
// ends Run with err." and fails TestShard/ShouldReconnectConsulted.
func IgnoreShouldReconnect(p *protocols.ShardParams) { p.ShouldReconnect = nil }

// LongHandshake replaces HandshakeTimeout by an hour. It breaks
// "HandshakeTimeout bounds each dial plus HELLO." and fails
// TestShard/HandshakeTimeoutBoundsDial.
func LongHandshake(p *protocols.ShardParams) { p.HandshakeTimeout = time.Hour }

// LogsToken logs the token, as a debug line of the IDENTIFY payload
// would. It breaks "The token never appears in errors or logs." and
// fails TestShard/TokenNotInErrorsOrLogs.
func LogsToken(p *protocols.ShardParams) {
	if p.Logger != nil {
		p.Logger.Debug("shard: identifying with token " + p.Token.Reveal())
	}
}

// ForgetfulSessions hands the shard a store that never finds a session,
// so a restarted shard identifies anew. It breaks "SessionStore keeps
// sessions so that a restarted process resumes instead of identifying."
// and fails TestShard/ResumeAfterRestart.
func ForgetfulSessions(p *protocols.ShardParams) { p.Sessions = forgetful{p.Sessions} }

type forgetful struct{ protocols.SessionStore }

func (forgetful) Load(_ context.Context, id, count int) (protocols.Session, error) {
	return protocols.Session{}, fmt.Errorf("broken: shard %d/%d: %w", id, count, protocols.ErrNoSession)
}

// RawDispatchesOnly hands Raw only the dispatches, as a shard that
// forwards to Raw from its dispatch path does. It breaks "Events receives
// dispatches by name; Raw receives every payload by opcode name." and
// fails TestShard/RawSeesEveryPayload.
func RawDispatchesOnly(p *protocols.ShardParams) { p.Raw = filtered{p.Raw} }

type filtered struct{ protocols.Dispatcher }

func (d filtered) Dispatch(ev protocols.Event) {
	if ev.Op == protocols.OpDispatch {
		d.Dispatcher.Dispatch(ev)
	}
}

// NoShardID hands the dispatchers events without the shard's ID. It
// breaks "Shard is the receiving shard's ID." and fails
// TestShard/EventsCarryShardAndSeq.
func NoShardID(p *protocols.ShardParams) {
	p.Events, p.Raw = unsharded{p.Events}, unsharded{p.Raw}
}

type unsharded struct{ protocols.Dispatcher }

func (d unsharded) Dispatch(ev protocols.Event) {
	ev.Shard = 0
	d.Dispatcher.Dispatch(ev)
}

// CloseWaitsForHandlers makes Close wait until no handler runs, as a
// shard whose Close waits for its dispatching goroutine does: Close called
// from a handler waits for itself. It changes p and returns the decorator
// to apply to the shard built from p. It breaks "Close may be called from
// a handler." and fails TestShard/CloseFromHandler.
func CloseWaitsForHandlers(p *protocols.ShardParams) func(protocols.Shard) protocols.Shard {
	gate := make(chan struct{}, 1)
	p.Events = gated{Dispatcher: p.Events, gate: gate}
	return func(next protocols.Shard) protocols.Shard { return gatedShard{Shard: next, gate: gate} }
}

type gated struct {
	protocols.Dispatcher
	gate chan struct{}
}

func (d gated) Dispatch(ev protocols.Event) {
	d.gate <- struct{}{}
	defer func() { <-d.gate }()
	d.Dispatcher.Dispatch(ev)
}

type gatedShard struct {
	protocols.Shard
	gate chan struct{}
}

func (s gatedShard) Close(code protocols.CloseCode) error {
	s.gate <- struct{}{}
	<-s.gate
	return s.Shard.Close(code)
}

// ---- Shards ----

// CloseAlwaysNormal closes with 1000 whatever code it is given, so that a
// restart never resumes. It breaks "Codes 1000 and 1001 end the session;
// other codes keep it resumable." and fails
// TestShard/CloseEndsSessionOnlyFor1000.
func CloseAlwaysNormal(next protocols.Shard) protocols.Shard { return normalCloser{next} }

type normalCloser struct{ protocols.Shard }

func (s normalCloser) Close(protocols.CloseCode) error { return s.Shard.Close(protocols.CloseNormal) }

// RunIgnoresContext keeps running after Run's context ends. It breaks
// "Run connects and keeps the shard connected until ctx ends (returning
// nil), Close is called, or a fatal close code ends it (returning the
// *CloseError)." and fails TestShard/RunHonorsContext.
func RunIgnoresContext(next protocols.Shard) protocols.Shard { return deafShard{next} }

type deafShard struct{ protocols.Shard }

func (s deafShard) Run(ctx context.Context, ready func()) error {
	return s.Shard.Run(context.WithoutCancel(ctx), ready)
}

// RunOutlivesClose returns from Run only when its context ends, Close or
// not. It breaks "Close closes the connection with code and ends Run." and
// fails TestShard/CloseIsIdempotentAndEndsRun.
func RunOutlivesClose(next protocols.Shard) protocols.Shard { return lingering{next} }

type lingering struct{ protocols.Shard }

func (s lingering) Run(ctx context.Context, ready func()) error {
	err := s.Shard.Run(ctx, ready)
	<-ctx.Done()
	return err
}

// ForgetsClosed answers Run and Send after Close with nil, as if nothing
// had happened. It breaks "ErrClosed is returned by every method called
// after Close." and fails TestShard/MethodsAfterCloseFail.
func ForgetsClosed(next protocols.Shard) protocols.Shard { return amnesiacShard{next} }

type amnesiacShard struct{ protocols.Shard }

func (s amnesiacShard) Run(ctx context.Context, ready func()) error {
	if err := s.Shard.Run(ctx, ready); !errors.Is(err, protocols.ErrClosed) {
		return err
	}
	return nil
}

func (s amnesiacShard) Send(ctx context.Context, op protocols.Opcode, d any) error {
	if err := s.Shard.Send(ctx, op, d); !errors.Is(err, protocols.ErrClosed) {
		return err
	}
	return nil
}

// ReadyOnce calls the ready callback the first time only. It breaks
// "ready, when not nil, is called each time the shard becomes ready." and
// fails TestShard/ReadyCalledEachTime.
func ReadyOnce(next protocols.Shard) protocols.Shard { return onceReady{next} }

type onceReady struct{ protocols.Shard }

func (s onceReady) Run(ctx context.Context, ready func()) error {
	var once sync.Once
	return s.Shard.Run(ctx, func() {
		if ready != nil {
			once.Do(ready)
		}
	})
}

// StickyReady reports Ready from the first ready on, connected or not. It
// breaks "Ready reports that the shard has received READY or RESUMED on
// its current connection." and fails TestShard/StatusReadyTracksConnection.
func StickyReady(next protocols.Shard) protocols.Shard { return &stickyReady{Shard: next} }

type stickyReady struct {
	protocols.Shard
	was atomic.Bool
}

func (s *stickyReady) Status() protocols.ShardStatus {
	st := s.Shard.Status()
	if st.Ready {
		s.was.Store(true)
	}
	st.Ready = st.Ready || s.was.Load()
	return st
}

// RetryFatal runs the shard again after a fatal close code, a second
// later, as disgo did with 4011 (1e7b4dd): a reconnect loop. It breaks
// "ActionStop ends the shard with a typed error: reconnecting cannot
// help." and fails TestShard/CloseCodesFatal, and, in a gateway,
// TestGateway/ShardingRequiredRescalesWhenAutomatic,
// ShardingRequiredFatalWhenPinned and FatalErrorFromConnect.
func RetryFatal(next protocols.Shard) protocols.Shard { return retrier{next} }

type retrier struct{ protocols.Shard }

func (s retrier) Run(ctx context.Context, ready func()) error {
	for {
		err := s.Shard.Run(ctx, ready)
		if protocols.CloseStatus(err).Action() != protocols.ActionStop || protocols.CloseStatus(err) < 0 {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}
