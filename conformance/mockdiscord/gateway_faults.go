package mockdiscord

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// GatewayFaultKind names a scripted gateway misbehaviour; see
// [GatewayFault].
type GatewayFaultKind string

// The gateway fault kinds.
const (
	// GatewayFaultDrop ends the connection without a close frame, like a
	// lost TCP connection. The session stays resumable.
	GatewayFaultDrop GatewayFaultKind = "drop"
	// GatewayFaultStopAck stops answering heartbeats with op 11: the next
	// Count heartbeats of the connection (0: all of them) go unacknowledged,
	// so the client should detect a zombie connection, close it with a
	// code other than 1000/1001 and resume.
	GatewayFaultStopAck GatewayFaultKind = "stop_ack"
	// GatewayFaultReconnect sends op 7 RECONNECT. The connection stays
	// open until the client closes it (or stops heartbeating).
	GatewayFaultReconnect GatewayFaultKind = "reconnect"
	// GatewayFaultInvalidSession sends op 9 INVALID_SESSION with d =
	// Resumable. With Resumable false the session is invalidated.
	// Options.InvalidSessionCloseCode decides whether the mock then closes.
	GatewayFaultInvalidSession GatewayFaultKind = "invalid_session"
	// GatewayFaultClose closes with Code (default 4000) and Reason. Codes
	// 4003, 4004, 4007, 4009 and 4010-4014 also invalidate the session
	// (the docs tell clients to identify anew, or stop); others, 1000 and
	// 1001 included (UNVERIFIED), leave it resumable.
	GatewayFaultClose GatewayFaultKind = "close"
	// GatewayFaultMalformed sends a payload that is not valid JSON (a
	// truncated dispatch), through the connection's compression if any.
	GatewayFaultMalformed GatewayFaultKind = "malformed"
	// GatewayFaultTruncated sends a text frame whose header announces 64
	// bytes more than follow, then ends the connection.
	GatewayFaultTruncated GatewayFaultKind = "truncated"
	// GatewayFaultBadFrame sends a frame with a reserved opcode (0x3): a
	// websocket protocol error, which the client should answer with close
	// 1002. The mock keeps the connection otherwise.
	GatewayFaultBadFrame GatewayFaultKind = "bad_frame"
	// GatewayFaultSplit sends the next payload in Parts frames (default 3).
	// With compress=zlib-stream they are separate websocket messages, only
	// the last ending with 00 00 FF FF, as Discord allows; otherwise
	// (zstd-stream included, where one message is one payload) they are
	// fragments (continuation frames) of one message.
	GatewayFaultSplit GatewayFaultKind = "split"
	// GatewayFaultRequestHeartbeat sends op 1: the client must heartbeat
	// at once.
	GatewayFaultRequestHeartbeat GatewayFaultKind = "request_heartbeat"
	// GatewayFaultRefuseResume makes the resume path (/gateway-resume)
	// refuse the next Count upgrades (0: one; negative: all until Reset)
	// with HTTP 503, so clients must fall back to the gateway URL. Shard,
	// AfterDispatches, Next and BeforeHello do not apply.
	GatewayFaultRefuseResume GatewayFaultKind = "refuse_resume"
)

// AllShards, as GatewayFault.Shard, targets every connection.
const AllShards = -1

// ErrInvalidGatewayFault is wrapped by the error [Server.InjectGateway]
// returns for a fault it cannot apply.
var ErrInvalidGatewayFault = errors.New("mockdiscord: invalid gateway fault")

// GatewayFault is a scripted gateway misbehaviour, applied by
// [Server.InjectGateway]. By default it applies at once to every
// connection serving Shard; Next and BeforeHello make it wait for a
// connection instead.
type GatewayFault struct {
	// Kind says what happens.
	Kind GatewayFaultKind
	// Shard is the shard ID whose connections the fault targets, or
	// AllShards (-1) for every connection, identified or not. Zero is
	// shard 0.
	Shard int
	// AfterDispatches delays the fault until that many more dispatches
	// have been queued to the connection (counted in send order, replayed
	// ones included), so that it lands between two known events. Zero
	// means at once, after what is already queued.
	AfterDispatches int
	// Next applies the fault to the next connection that completes
	// IDENTIFY (after READY and the GUILD_CREATEs) or RESUME (after
	// RESUMED) on Shard, instead of the current ones; it applies once.
	Next bool
	// BeforeHello applies the fault to the next new connection, before
	// HELLO (Shard is ignored): for example op 7 before HELLO, which
	// Discord may send. It applies once.
	BeforeHello bool
	// Code is the close code of GatewayFaultClose; it defaults to 4000.
	Code int
	// Reason is the close reason of GatewayFaultClose.
	Reason string
	// Resumable is the d of GatewayFaultInvalidSession.
	Resumable bool
	// Parts is how many frames GatewayFaultSplit uses (default 3; at
	// least 2).
	Parts int
	// Count is how many heartbeats GatewayFaultStopAck ignores (0: all)
	// or how many upgrades GatewayFaultRefuseResume refuses (0: one;
	// negative: all until Reset).
	Count int
}

// armedFault is a fault waiting for dispatches on one connection.
type armedFault struct {
	f    GatewayFault
	left int
}

// InjectGateway applies f and returns how many connections it was armed
// on (0 when it waits, with Next or BeforeHello, or for refuse_resume).
// A fault with neither Next nor BeforeHello that matches no connection is
// dropped and returns 0. The error wraps ErrInvalidGatewayFault, and
// nothing changes, for an unknown Kind, a Shard below -1, a negative
// AfterDispatches or (for stop_ack) Count, Next with BeforeHello, a close
// Code that cannot be sent, or Parts of 1 or less than 0.
func (s *Server) InjectGateway(f GatewayFault) (int, error) {
	bad := func(format string, args ...any) (int, error) {
		return 0, fmt.Errorf("%w: "+format, append([]any{ErrInvalidGatewayFault}, args...)...)
	}
	switch f.Kind {
	case GatewayFaultDrop, GatewayFaultReconnect, GatewayFaultInvalidSession, GatewayFaultMalformed,
		GatewayFaultTruncated, GatewayFaultBadFrame, GatewayFaultRequestHeartbeat:
	case GatewayFaultStopAck:
		if f.Count < 0 {
			return bad("stop_ack Count %d is negative", f.Count)
		}
	case GatewayFaultClose:
		if f.Code == 0 {
			f.Code = 4000
		}
		if !sendableCloseCode(f.Code) {
			return bad("close code %d cannot be sent", f.Code)
		}
	case GatewayFaultSplit:
		if f.Parts == 0 {
			f.Parts = 3
		}
		if f.Parts < 2 {
			return bad("split needs Parts >= 2, got %d", f.Parts)
		}
	case GatewayFaultRefuseResume:
		gw := s.gw
		gw.mu.Lock()
		defer gw.mu.Unlock()
		switch {
		case f.Count < 0:
			gw.refuse = -1
		case gw.refuse >= 0:
			gw.refuse += max(f.Count, 1)
		}
		return 0, nil
	default:
		return bad("unknown kind %q", f.Kind)
	}
	switch {
	case f.Shard < AllShards:
		return bad("shard %d", f.Shard)
	case f.AfterDispatches < 0:
		return bad("negative AfterDispatches")
	case f.Next && f.BeforeHello:
		return bad("Next and BeforeHello together")
	}
	gw := s.gw
	gw.mu.Lock()
	defer gw.mu.Unlock()
	if f.Next || f.BeforeHello {
		fc := f
		gw.pending = append(gw.pending, &fc)
		return 0, nil
	}
	var targets []*gwConn
	for c := range gw.conns {
		if c.closing {
			continue
		}
		if f.Shard == AllShards || (c.sess != nil && c.sess.shard == f.Shard) {
			targets = append(targets, c)
		}
	}
	for _, c := range targets {
		c.armLocked(f)
	}
	return len(targets), nil
}

// takeRefusal reports whether a resume upgrade must be refused, using up
// one refusal.
func (gw *gateway) takeRefusal() bool {
	gw.mu.Lock()
	defer gw.mu.Unlock()
	switch {
	case gw.refuse < 0:
		return true
	case gw.refuse > 0:
		gw.refuse--
		return true
	}
	return false
}

// takePendingLocked removes and returns the pending faults match selects.
func (gw *gateway) takePendingLocked(match func(*GatewayFault) bool) []*GatewayFault {
	var out []*GatewayFault
	kept := gw.pending[:0]
	for _, f := range gw.pending {
		if match(f) {
			out = append(out, f)
		} else {
			kept = append(kept, f)
		}
	}
	for i := len(kept); i < len(gw.pending); i++ {
		gw.pending[i] = nil
	}
	gw.pending = kept
	return out
}

// armNextLocked arms the pending Next faults for c's shard.
func (gw *gateway) armNextLocked(c *gwConn) {
	shard := c.sess.shard
	for _, f := range gw.takePendingLocked(func(f *GatewayFault) bool {
		return f.Next && (f.Shard == AllShards || f.Shard == shard)
	}) {
		c.armLocked(*f)
	}
}

// armLocked fires f now or arms it to fire after its dispatches.
func (c *gwConn) armLocked(f GatewayFault) {
	if c.closing {
		return
	}
	if f.AfterDispatches <= 0 {
		c.fireLocked(f)
		return
	}
	c.armed = append(c.armed, &armedFault{f: f, left: f.AfterDispatches})
}

// fireLocked applies a fault to c, in order with what is queued.
func (c *gwConn) fireLocked(f GatewayFault) {
	if c.closing {
		return
	}
	c.gw.recordLocked(GatewayObservation{Time: time.Now(), Kind: ObserveFault, Conn: c.id, Shard: c.shardLocked(), Reason: string(f.Kind)})
	switch f.Kind {
	case GatewayFaultDrop:
		c.dropLocked("fault: drop")
	case GatewayFaultStopAck:
		c.stopAck = f.Count
		if f.Count == 0 {
			c.stopAck = -1
		}
	case GatewayFaultReconnect:
		c.sendLocked(7, "")
	case GatewayFaultInvalidSession:
		if !f.Resumable && c.sess != nil {
			c.sess.invalid = true
		}
		c.invalidSessionLocked(f.Resumable)
	case GatewayFaultClose:
		c.closeLocked(f.Code, f.Reason, false)
	case GatewayFaultMalformed:
		seq := int64(1)
		if c.sess != nil {
			seq = c.sess.seq + 1
		}
		c.enqueueLocked(outItem{kind: itemPayload, data: []byte(`{"t":"MESSAGE_CREATE","s":` + strconv.FormatInt(seq, 10) + `,"op":0,"d":{"id":`)})
	case GatewayFaultTruncated:
		c.closing, c.closeRecorded = true, true
		c.gw.recordLocked(GatewayObservation{Time: time.Now(), Kind: ObserveClose, Conn: c.id, Shard: c.shardLocked(), By: "server", Reason: "fault: truncated frame"})
		c.detachLocked(time.Now())
		c.enqueueLocked(outItem{kind: itemTruncated, data: []byte(`{"t":"MESSAGE_CREATE","s":1,"op":0,"d":{"content":"`)})
		c.startGraceLocked()
	case GatewayFaultBadFrame:
		c.enqueueLocked(outItem{kind: itemBadFrame})
	case GatewayFaultSplit:
		c.enqueueLocked(outItem{kind: itemSplit, parts: f.Parts})
	case GatewayFaultRequestHeartbeat:
		c.sendLocked(1, "")
	}
}
