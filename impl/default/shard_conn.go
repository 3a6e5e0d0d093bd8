package reference

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cordkit/cordkit/protocols"
)

// errNoHello is the cause of a connection that sent no HELLO within the
// handshake timeout.
var errNoHello = errors.New("reference: no HELLO within the handshake timeout")

// shardConn is one connection of a shard.
type shardConn struct {
	s *shard
	c protocols.Conn

	writeMu fifoMutex // serializes c.Write

	endOnce sync.Once
	ending  ending        // why the connection ended; set once by end
	done    chan struct{} // closed by end

	// Used by the reading goroutine only.
	resuming bool  // the handshake was a RESUME
	healthy  bool  // READY or RESUMED arrived
	lastSeq  int64 // the session's sequence number, to drop replays

	mu     sync.Mutex
	beatAt time.Time // when the unacknowledged heartbeat went out
}

// end records why the connection ends, the first time it is called, and
// closes it with code.
func (sc *shardConn) end(e ending, code protocols.CloseCode, reason string) {
	sc.endOnce.Do(func() {
		sc.ending = e
		close(sc.done)
		_ = sc.c.Close(code, reason)
	})
}

// write sends one text message. ctx bounds the wait for the writer in
// progress; the write itself is ended only by the connection's end, since
// a write interrupted midway breaks the connection.
func (sc *shardConn) write(ctx context.Context, payload []byte) error {
	if err := sc.writeMu.lock(ctx); err != nil {
		return err
	}
	defer sc.writeMu.unlock()
	return sc.c.Write(context.WithoutCancel(ctx), protocols.MessageText, payload)
}

// connect runs one connection: it dials, handles HELLO, waits on the
// identify limiter when it must identify, identifies or resumes, and
// reads until the connection ends.
func (s *shard) connect(ctx context.Context, q *eventQueue) ending {
	s.mu.Lock()
	sess := s.session
	s.mu.Unlock()

	resume := sess.ID != ""
	target, fromResumeURL := s.mainURL, false
	if resume && sess.ResumeURL != "" {
		u, err := s.withQuery(sess.ResumeURL)
		if err == nil {
			target, fromResumeURL = u, true
		} else {
			s.log.LogAttrs(ctx, slog.LevelWarn, "gateway: unusable resume URL", slog.String("error", err.Error()))
		}
	}
	hctx, cancelHandshake := context.WithTimeout(ctx, s.p.HandshakeTimeout)
	defer cancelHandshake()
	c, err := s.p.Dialer.Dial(hctx, target)
	if err != nil {
		if ctx.Err() != nil {
			return ending{step: stepClosed}
		}
		if fromResumeURL {
			s.mu.Lock()
			if s.session.ID == sess.ID {
				s.session.ResumeURL = "" // fall back to the main URL
			}
			s.mu.Unlock()
		}
		s.log.LogAttrs(ctx, slog.LevelWarn, "gateway: dial failed", slog.String(logKeyURL, redactURL(target)), slog.String("error", err.Error()))
		return ending{step: stepResume, cause: err}
	}

	sc := &shardConn{s: s, c: c, done: make(chan struct{}), resuming: resume, lastSeq: sess.Seq}
	s.mu.Lock()
	if s.closed {
		code := s.closeCode
		s.mu.Unlock()
		_ = c.Close(code, "")
		return ending{step: stepClosed}
	}
	s.conn = sc
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.conn = nil
		s.setReadyLocked(false)
		s.mu.Unlock()
	}()

	s.inflater.Reset()
	s.log.LogAttrs(ctx, slog.LevelDebug, "gateway: connected", slog.String(logKeyURL, redactURL(target)))

	connCtx, stopConn := context.WithCancel(ctx)
	var keepAlive sync.WaitGroup
	defer func() {
		stopConn()
		keepAlive.Wait()
	}()
	sc.read(ctx, hctx, q, func(interval time.Duration) {
		cancelHandshake()
		s.p.SendLimiter.Reset(interval)
		sc.startKeepAlive(connCtx, interval, &keepAlive)
		// The identify limiter is waited on here, after HELLO and with
		// heartbeats running, on a goroutine of its own so the reader
		// keeps handling ACKs: Discord spaces identifies by when they
		// arrive, so the 5 s per bucket must count from the IDENTIFY
		// itself, not from before a dial of unknown length. A dial that
		// fails therefore spends no identify turn and no session start.
		keepAlive.Go(func() {
			if !resume {
				if err := s.p.IdentifyLimiter.Wait(connCtx, s.p.ID); err != nil {
					if connCtx.Err() == nil {
						sc.end(ending{step: stepStop, cause: fmt.Errorf("identify limiter: %w", err)}, s.o.ReconnectCode, "")
					}
					return
				}
			}
			if err := sc.handshake(connCtx, sess); err != nil {
				if connCtx.Err() != nil {
					return
				}
				e := ending{step: stepResume, cause: err}
				var tooLarge *PayloadTooLargeError
				if errors.As(err, &tooLarge) {
					e.step = stepStop
				}
				sc.end(e, s.o.ReconnectCode, "")
			}
		})
	})
	// Ends the connection if ctx ended while the queue was full; otherwise
	// it has already ended.
	sc.end(ending{step: stepClosed}, s.o.ReconnectCode, "")
	e := sc.ending
	e.healthy = sc.healthy
	return e
}

// startKeepAlive runs the KeepAlive for the connection, on timers when
// it is a [protocols.KeepAliveStarter] (no goroutine while idle), else on
// a goroutine of its own; running counts it until it ended.
func (sc *shardConn) startKeepAlive(ctx context.Context, interval time.Duration, running *sync.WaitGroup) {
	if st, ok := sc.s.p.KeepAlive.(protocols.KeepAliveStarter); ok {
		running.Add(1)
		err := st.Start(ctx, interval, sc.beat, func(err error) {
			defer running.Done()
			sc.keepAliveEnded(ctx, interval, err)
		})
		if err != nil {
			running.Done()
			sc.keepAliveEnded(ctx, interval, err)
		}
		return
	}
	running.Go(func() { sc.keepAliveEnded(ctx, interval, sc.s.p.KeepAlive.Run(ctx, interval, sc.beat)) })
}

// keepAliveEnded drops the connection when the KeepAlive failed: a
// zombie, or a heartbeat that could not be written.
func (sc *shardConn) keepAliveEnded(ctx context.Context, interval time.Duration, err error) {
	if ctx.Err() != nil {
		return
	}
	if errors.Is(err, protocols.ErrZombieConnection) {
		sc.s.log.LogAttrs(ctx, slog.LevelWarn, "gateway: zombie connection: no heartbeat ACK", slog.Duration("interval", interval))
	}
	sc.end(ending{step: stepResume, cause: err}, sc.s.o.ReconnectCode, "")
}

// heartbeat is op 1's payload; D is null before the first dispatch.
type heartbeat struct {
	Op protocols.Opcode `json:"op"`
	D  *int64           `json:"d"`
}

// beat sends one heartbeat with the last sequence number.
func (sc *shardConn) beat(ctx context.Context) error {
	s := sc.s
	if err := s.p.SendLimiter.Wait(ctx, true); err != nil {
		return err
	}
	hb := heartbeat{Op: protocols.OpHeartbeat}
	s.mu.Lock()
	if seq := s.session.Seq; seq > 0 {
		hb.D = &seq
	}
	s.mu.Unlock()
	payload, err := s.p.Codec.Marshal(hb)
	if err != nil {
		return fmt.Errorf("encode heartbeat: %w", err)
	}
	// Take the time before writing: the ACK may be read before the write
	// returns.
	if err := sc.writeMu.lock(ctx); err != nil {
		return err
	}
	sc.mu.Lock()
	sc.beatAt = time.Now()
	sc.mu.Unlock()
	err = sc.c.Write(context.WithoutCancel(ctx), protocols.MessageText, payload)
	sc.writeMu.unlock()
	if err != nil {
		return err
	}
	// After the write, so a slow store never delays a heartbeat.
	s.saveProgress(ctx)
	return nil
}

// ack records a HEARTBEAT_ACK.
func (sc *shardConn) ack() {
	sc.s.p.KeepAlive.Ack()
	sc.mu.Lock()
	at := sc.beatAt
	sc.beatAt = time.Time{}
	sc.mu.Unlock()
	if !at.IsZero() {
		s := sc.s
		s.mu.Lock()
		s.latency = time.Since(at)
		s.mu.Unlock()
	}
}

// identify is IDENTIFY's d.
type identify struct {
	Token          string             `json:"token"`
	Properties     IdentifyProperties `json:"properties"`
	Compress       bool               `json:"compress,omitempty"`
	LargeThreshold int                `json:"large_threshold,omitempty"`
	Shard          [2]int             `json:"shard"`
	Presence       any                `json:"presence,omitempty"`
	Intents        protocols.Intents  `json:"intents"`
}

// resume is RESUME's d.
type resume struct {
	Token     string `json:"token"`
	SessionID string `json:"session_id"`
	Seq       int64  `json:"seq"`
}

// handshake sends IDENTIFY, or RESUME for sess.
func (sc *shardConn) handshake(ctx context.Context, sess protocols.Session) error {
	s := sc.s
	var msg outgoing
	if sc.resuming {
		msg = outgoing{Op: protocols.OpResume, D: resume{Token: s.p.Token.Reveal(), SessionID: sess.ID, Seq: sess.Seq}}
		s.log.LogAttrs(ctx, slog.LevelInfo, "gateway: resuming", slog.Int64(logKeySeq, sess.Seq))
	} else {
		msg = outgoing{Op: protocols.OpIdentify, D: identify{
			Token:          s.p.Token.Reveal(),
			Properties:     s.o.Properties,
			Compress:       s.p.Compression == protocols.CompressZlibPayload,
			LargeThreshold: s.p.LargeThreshold,
			Shard:          [2]int{s.p.ID, s.p.Count},
			Presence:       s.p.Presence,
			Intents:        s.p.Intents,
		}}
		s.log.LogAttrs(ctx, slog.LevelInfo, "gateway: identifying", slog.Int("count", s.p.Count))
	}
	payload, err := s.p.Codec.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encode %s: %w", msg.Op, err) // never the payload: it holds the token
	}
	if len(payload) > MaxPayloadSize {
		return &PayloadTooLargeError{Op: msg.Op, Size: len(payload)}
	}
	if err := s.p.SendLimiter.Wait(ctx, false); err != nil {
		return err
	}
	return sc.write(ctx, payload)
}

// read reads the connection until it ends. Until HELLO it reads with
// hctx, the handshake's deadline; at HELLO it calls hello with the
// heartbeat interval.
func (sc *shardConn) read(ctx, hctx context.Context, q *eventQueue, hello func(time.Duration)) {
	s := sc.s
	gotHello := false
	for {
		rctx := ctx
		if !gotHello {
			rctx = hctx
		}
		typ, frame, err := sc.c.Read(rctx)
		if err != nil {
			sc.end(sc.readFailed(ctx, err, gotHello), s.o.ReconnectCode, "")
			return
		}
		msg := frame
		if typ == protocols.MessageBinary {
			m, done, err := s.inflater.Inflate(frame)
			if err != nil {
				sc.end(ending{step: stepResume, cause: fmt.Errorf("inflate: %w", err)}, s.o.ReconnectCode, "corrupt stream")
				return
			}
			if !done {
				continue
			}
			msg = m
		}
		var env protocols.Envelope
		if err := s.p.Codec.DecodeEnvelope(msg, &env); err != nil {
			sc.end(ending{step: stepResume, cause: err}, s.o.ReconnectCode, "undecodable payload")
			return
		}
		if env.Op == protocols.OpHello && !gotHello {
			var d struct {
				Interval int64 `json:"heartbeat_interval"`
			}
			if err := s.p.Codec.Unmarshal(env.D, &d); err != nil || d.Interval <= 0 {
				sc.end(ending{step: stepResume, cause: fmt.Errorf("reference: bad HELLO %s: %v", bytes.TrimSpace(env.D), err)}, s.o.ReconnectCode, "bad hello")
				return
			}
			if !sc.queue(ctx, q, env, false) {
				return
			}
			gotHello = true
			hello(time.Duration(d.Interval) * time.Millisecond)
			continue
		}
		if !sc.handle(ctx, q, env) {
			return
		}
	}
}

// readFailed classifies a Read error.
func (sc *shardConn) readFailed(ctx context.Context, err error, gotHello bool) ending {
	if ctx.Err() != nil {
		return ending{step: stepClosed}
	}
	if !gotHello && errors.Is(err, context.DeadlineExceeded) {
		return ending{step: stepResume, cause: errNoHello}
	}
	var ce *protocols.CloseError
	if errors.As(err, &ce) && ce.Code != protocols.CloseAbnormal {
		sc.s.log.LogAttrs(ctx, slog.LevelInfo, "gateway: connection closed by Discord",
			slog.Int(logKeyCloseCode, int(ce.Code)), slog.String("reason", ce.Reason))
		switch ce.Code.Action() {
		case protocols.ActionStop:
			return ending{step: stepStop, cause: ce}
		case protocols.ActionIdentify:
			return ending{step: stepIdentify, cause: ce}
		}
		return ending{step: stepResume, cause: ce}
	}
	return ending{step: stepResume, cause: err}
}

// handle acts on one payload after HELLO. It reports false when the
// connection ends.
func (sc *shardConn) handle(ctx context.Context, q *eventQueue, env protocols.Envelope) bool {
	s := sc.s
	switch env.Op {
	case protocols.OpHeartbeatACK:
		sc.ack()
	case protocols.OpHeartbeat:
		s.p.KeepAlive.BeatNow()
	case protocols.OpReconnect:
		sc.queue(ctx, q, env, false)
		s.log.LogAttrs(ctx, slog.LevelInfo, "gateway: Discord asked to reconnect")
		sc.end(ending{step: stepResume, cause: ErrReconnectRequested}, s.o.ReconnectCode, "reconnect requested")
		return false
	case protocols.OpInvalidSession:
		sc.queue(ctx, q, env, false)
		var resumable bool
		_ = s.p.Codec.Unmarshal(env.D, &resumable)
		e := ending{step: stepInvalidSession, cause: fmt.Errorf("%w (resumable: %v)", protocols.ErrInvalidSession, resumable)}
		if resumable {
			e.step = stepResume
		}
		s.log.LogAttrs(ctx, slog.LevelInfo, "gateway: invalid session", slog.Bool("resumable", resumable))
		sc.end(e, s.o.ReconnectCode, "invalid session")
		return false
	case protocols.OpDispatch:
		return sc.dispatch(ctx, q, env)
	}
	return sc.queue(ctx, q, env, false)
}

// ready is the part of READY the shard needs.
type readyData struct {
	SessionID        string `json:"session_id"`
	ResumeGatewayURL string `json:"resume_gateway_url"`
}

// dispatch handles an op 0 payload.
func (sc *shardConn) dispatch(ctx context.Context, q *eventQueue, env protocols.Envelope) bool {
	s := sc.s
	switch env.T {
	case "READY":
		var d readyData
		if err := s.p.Codec.Unmarshal(env.D, &d); err != nil || d.SessionID == "" {
			sc.end(ending{step: stepResume, cause: fmt.Errorf("reference: READY without a session: %v", err)}, s.o.ReconnectCode, "bad ready")
			return false
		}
		s.mu.Lock()
		s.session = protocols.Session{ShardID: s.p.ID, ShardCount: s.p.Count, ID: d.SessionID, ResumeURL: d.ResumeGatewayURL}
		s.mu.Unlock()
		sc.lastSeq = 0
		if !sc.queue(ctx, q, env, true) {
			return false
		}
		sc.becameReady(ctx, q, "gateway: ready")
		return true
	case "RESUMED":
		if !sc.queue(ctx, q, env, true) {
			return false
		}
		sc.becameReady(ctx, q, "gateway: resumed")
		return true
	}
	if env.S > 0 && env.S <= sc.lastSeq {
		s.log.LogAttrs(ctx, slog.LevelDebug, "gateway: dropped a replayed dispatch", slog.Int64(logKeySeq, env.S))
		return true
	}
	return sc.queue(ctx, q, env, true)
}

// becameReady marks the shard ready after READY or RESUMED.
func (sc *shardConn) becameReady(ctx context.Context, q *eventQueue, msg string) {
	s := sc.s
	sc.healthy = true
	s.mu.Lock()
	if s.conn == sc {
		s.setReadyLocked(true)
	}
	sess := s.session
	s.mu.Unlock()
	s.saveSession(ctx)
	s.log.LogAttrs(ctx, slog.LevelInfo, msg, slog.String(logKeySession, sess.ID), slog.Int64(logKeySeq, sess.Seq))
	q.push(ctx, sc.done, queued{notify: true})
}

// queue hands a payload to the dispatching goroutine, then records its
// sequence number: a payload that could not be queued is not counted, so
// a resume replays it. It reports false when the connection ended while
// the queue was full.
func (sc *shardConn) queue(ctx context.Context, q *eventQueue, env protocols.Envelope, dispatch bool) bool {
	s := sc.s
	s.mu.Lock()
	sessionID := s.session.ID
	s.mu.Unlock()
	data := env.D
	var buf *[]byte
	if _, copied := s.p.Codec.(Codec); !copied {
		buf, data = copyData(data) // other codecs may alias the read buffer
	}
	ev := protocols.Event{Shard: s.p.ID, Op: env.Op, Seq: env.S, Name: env.T, Data: data}
	if !q.push(ctx, sc.done, queued{ev: ev, buf: buf, events: dispatch, session: sessionID}) {
		putData(buf)
		return false
	}
	if env.Op == protocols.OpDispatch && env.S > sc.lastSeq {
		sc.lastSeq = env.S
		s.mu.Lock()
		if s.session.ID == sessionID {
			s.session.Seq = env.S
		}
		s.mu.Unlock()
	}
	return true
}
