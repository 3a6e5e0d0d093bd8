package mockdiscord

import (
	"encoding/json"
	"fmt"
	"time"
)

// GatewayObservationKind says what a [GatewayObservation] records.
type GatewayObservationKind string

// The kinds of gateway observations.
const (
	// ObserveConnect is an accepted websocket upgrade: Path, Query,
	// Version, Transport.
	ObserveConnect GatewayObservationKind = "connect"
	// ObserveRefused is an upgrade the mock refused (Reason): a fault, an
	// unsupported encoding or compression, or a bad handshake.
	ObserveRefused GatewayObservationKind = "refused"
	// ObserveReceive is a payload the client sent: Op (-1 when it did not
	// decode) and Size in bytes.
	ObserveReceive GatewayObservationKind = "receive"
	// ObserveHeartbeat is an op 1: Seq (-1 for null), Acked, Session.
	ObserveHeartbeat GatewayObservationKind = "heartbeat"
	// ObserveIdentify is an op 2: Shard, ShardCount, Bucket, Intents,
	// Compress, Accepted, Session, and Reason when rejected.
	ObserveIdentify GatewayObservationKind = "identify"
	// ObserveResume is an op 6: Session, Seq, Accepted, Replayed (how
	// many dispatches were replayed), Reason when rejected.
	ObserveResume GatewayObservationKind = "resume"
	// ObservePresence is a valid op 3, with its d in Data.
	ObservePresence GatewayObservationKind = "presence"
	// ObserveVoiceState is a valid op 4, with its d in Data.
	ObserveVoiceState GatewayObservationKind = "voice_state"
	// ObserveRequestMembers is a valid op 8, with its d in Data; Replayed
	// holds the number of chunks sent, Reason says why none were.
	ObserveRequestMembers GatewayObservationKind = "request_members"
	// ObserveClose is the end of a connection: By "client" (its close
	// frame's Code, or 1006 when the connection was lost without one) or
	// "server" (the mock's close Code, or 0 when it dropped the connection
	// without a close frame, Reason saying why). Only the side that
	// started the close is recorded.
	ObserveClose GatewayObservationKind = "close"
	// ObserveViolation is something a well-behaved client never causes:
	// an IDENTIFY too fast for its bucket or past the session start
	// limit, more than SendLimit payloads, a missed heartbeat, more than
	// 5 presence updates in 20 s, or any payload the mock closed the
	// connection for (Code). Reason says what happened.
	ObserveViolation GatewayObservationKind = "violation"
	// ObserveFault is a gateway fault firing on a connection (Reason is
	// its kind).
	ObserveFault GatewayObservationKind = "fault"
)

// GatewayObservation records one thing that happened on the gateway. Only
// the fields its Kind names are set.
type GatewayObservation struct {
	// Time is when it happened.
	Time time.Time `json:"time"`
	// Kind says what it is.
	Kind GatewayObservationKind `json:"kind"`
	// Conn numbers the connection, from 1 in connection order (0 for a
	// refused upgrade).
	Conn int `json:"conn"`
	// Path is the upgrade request's path.
	Path string `json:"path,omitempty"`
	// Query is the upgrade request's raw query, without "?".
	Query string `json:"query,omitempty"`
	// Version is the API version from ?v= (10 when absent).
	Version int `json:"version,omitempty"`
	// Transport is the ?compress= value ("zlib-stream" or "").
	Transport string `json:"transport,omitempty"`
	// Shard is the connection's shard ID, -1 when it has no session (or
	// the IDENTIFY's shard was invalid).
	Shard int `json:"shard"`
	// ShardCount is the session's (or IDENTIFY's) number of shards.
	ShardCount int `json:"shard_count,omitempty"`
	// Bucket is an IDENTIFY's concurrency bucket: shard_id %
	// max_concurrency.
	Bucket int `json:"bucket"`
	// Intents is an IDENTIFY's intents.
	Intents uint64 `json:"intents,omitempty"`
	// Compress reports that an IDENTIFY asked for payload compression.
	Compress bool `json:"compress,omitempty"`
	// Accepted reports that an IDENTIFY, RESUME or other request was
	// answered normally.
	Accepted bool `json:"accepted"`
	// Reason explains a rejection, a close or a violation.
	Reason string `json:"reason,omitempty"`
	// Session is the session ID concerned.
	Session string `json:"session,omitempty"`
	// Seq is a heartbeat's or RESUME's sequence number, -1 for null.
	Seq int64 `json:"seq"`
	// Acked reports that a heartbeat was answered with op 11.
	Acked bool `json:"acked,omitempty"`
	// Op is a received payload's op, -1 when it did not decode.
	Op int `json:"op"`
	// Size is a received payload's length in bytes.
	Size int `json:"size,omitempty"`
	// By says who started a close: "client" or "server".
	By string `json:"by,omitempty"`
	// Code is a close's code (0 for none), or the close code a violation
	// led to.
	Code int `json:"code,omitempty"`
	// Replayed is how many dispatches a RESUME replayed, or how many
	// chunks a member request got.
	Replayed int `json:"replayed,omitempty"`
	// Data is the d of a presence, voice state or member request.
	Data json.RawMessage `json:"data,omitempty"`
}

// GatewayObservations returns a copy of what the gateway has observed
// since New or the last Reset, in order.
func (s *Server) GatewayObservations() []GatewayObservation {
	gw := s.gw
	gw.mu.Lock()
	defer gw.mu.Unlock()
	out := make([]GatewayObservation, len(gw.obs))
	for i, o := range gw.obs {
		o.Data = append(json.RawMessage(nil), o.Data...)
		out[i] = o
	}
	return out
}

// GatewayViolations lists, one line each, the ObserveViolation
// observations: everything a well-behaved gateway client never causes. An
// empty result asserts that a client respected the identify spacing, the
// session start limit, the send limit and the heartbeat deadline, and sent
// nothing the mock had to close the connection for. Lines read like
// "00:00:05.000 conn 3 shard 2: identify too fast: bucket 2 ...".
func (s *Server) GatewayViolations() []string {
	gw := s.gw
	gw.mu.Lock()
	defer gw.mu.Unlock()
	var out []string
	for _, o := range gw.obs {
		if o.Kind != ObserveViolation {
			continue
		}
		line := fmt.Sprintf("%s conn %d shard %d: %s", o.Time.UTC().Format("15:04:05.000"), o.Conn, o.Shard, o.Reason)
		if o.Code != 0 {
			line += fmt.Sprintf(" (close %d)", o.Code)
		}
		out = append(out, line)
	}
	return out
}
