package mockdiscord

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gobwas/ws"
)

// Gateway paths. The websocket is served at /gateway and /gateway/
// (discordgo appends a slash); READY's resume_gateway_url names
// /gateway-resume, which behaves the same but is observed separately and
// can be made to refuse connections (GatewayFaultRefuseResume).
const (
	gatewayPath       = "/gateway"
	gatewayResumePath = "/gateway-resume"
)

// closeGrace is how long the mock waits, once a close started, for the
// close handshake to complete before it closes the connection.
const closeGrace = time.Second

// gatewayVersions are the accepted values of ?v=.
var gatewayVersions = map[string]int{"": 10, "9": 9, "10": 10}

// gateway is the state of the gateway half. mu is never held while
// taking Server.mu.
type gateway struct {
	s       *Server
	members []Member // immutable after New

	mu        sync.Mutex
	conns     map[*gwConn]struct{}
	nextConn  int
	sessions  []*session // creation order; dead ones are pruned lazily
	nextSess  int
	identAt   map[int]time.Time // bucket -> last accepted IDENTIFY
	obs       []GatewayObservation
	pending   []*GatewayFault // Next and BeforeHello faults
	refuse    int             // resume upgrades left to refuse; negative: all
	membersAt map[string]time.Time
}

func newGateway(s *Server) *gateway {
	gw := &gateway{
		s:         s,
		members:   newMembers(&s.cfg, s.world.botID),
		conns:     map[*gwConn]struct{}{},
		identAt:   map[int]time.Time{},
		membersAt: map[string]time.Time{},
	}
	s.Subscribe(gw.onEvent)
	return gw
}

// reset clears what Reset clears on the gateway side: observations,
// pending faults and refusals, identify and member-request timing.
// Connections and sessions stay.
func (gw *gateway) reset() {
	gw.mu.Lock()
	defer gw.mu.Unlock()
	gw.obs = nil
	gw.pending = nil
	gw.refuse = 0
	gw.identAt = map[int]time.Time{}
	gw.membersAt = map[string]time.Time{}
}

// isGatewayPath reports whether path is a websocket path, and whether it
// is the resume one.
func isGatewayPath(path string) (ok, resume bool) {
	switch path {
	case gatewayPath, gatewayPath + "/":
		return true, false
	case gatewayResumePath, gatewayResumePath + "/":
		return true, true
	}
	return false, false
}

// GatewayURL returns the websocket URL: Options.GatewayURL when set, else
// "ws://127.0.0.1:PORT/gateway" after Start, else
// "ws://mockdiscord.test/gateway" (reachable through [Server.DialGateway]).
// It is what GET /gateway returns to a client that reached the mock at
// that host.
func (s *Server) GatewayURL() string {
	if s.cfg.GatewayURL != "" {
		return s.cfg.GatewayURL
	}
	return "ws" + strings.TrimPrefix(s.URL(), "http") + gatewayPath
}

// ResumeGatewayURL returns the resume_gateway_url READY carries for a
// connection made to [Server.GatewayURL]: Options.ResumeGatewayURL when
// set, else the same host with the path /gateway-resume.
func (s *Server) ResumeGatewayURL() string {
	if s.cfg.ResumeGatewayURL != "" {
		return s.cfg.ResumeGatewayURL
	}
	return "ws" + strings.TrimPrefix(s.URL(), "http") + gatewayResumePath
}

// DialGateway opens an in-memory connection to the mock: it returns the
// client end of a net.Pipe whose server end is served like a TCP
// connection, so the caller writes the websocket upgrade request for
// /gateway (or /gateway-resume) itself, typically through a websocket
// dialer whose network dial function calls DialGateway. rawURL is not used
// (every address reaches the mock; the path and query come from the
// upgrade request); it is there so that a dialer's URL or address can be
// passed through. Like [Server.Client], it works inside a testing/synctest
// bubble when the Server was created in the same bubble. After Close it
// returns an error wrapping net.ErrClosed; when ctx ends first, one
// wrapping ctx.Err().
func (s *Server) DialGateway(ctx context.Context, rawURL string) (net.Conn, error) {
	_ = rawURL
	c, err := s.dialPipe(ctx)
	if err != nil {
		return nil, fmt.Errorf("mockdiscord: dial gateway: %w", err)
	}
	return &pipeClientConn{Conn: c, s: s}, nil
}

// NetDial is DialGateway with the signature of net.Dialer.DialContext and
// of ws.Dialer.NetDial: set a websocket dialer's NetDial to it to reach the
// mock in memory. network and addr are not used.
func (s *Server) NetDial(ctx context.Context, network, addr string) (net.Conn, error) {
	_ = network
	return s.DialGateway(ctx, addr)
}

// pipeClientConn is the client end of an in-memory gateway connection;
// closing it stops Close from tracking it.
type pipeClientConn struct {
	net.Conn
	s    *Server
	once sync.Once
}

// Close closes the connection. It is idempotent.
func (c *pipeClientConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.s.forgetClientConn(c.Conn) })
	return err
}

// enterGateway counts the calling handler in the Server's WaitGroup, so
// that Close waits for it after the connection is hijacked. It reports
// false after Close.
func (s *Server) enterGateway() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// trackHijacked records a hijacked connection for Close; it reports false
// (and the caller closes c) after Close.
func (s *Server) trackHijacked(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.hijacked[c] = struct{}{}
	return true
}

func (s *Server) untrackHijacked(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.hijacked, c)
}

// refusal is the JSON body of a refused upgrade.
type refusal struct {
	Message string `json:"message"`
	Code    int    `json:"code"`
}

// serveGateway upgrades a request to the gateway websocket and serves
// the connection until it ends.
func (s *Server) serveGateway(w http.ResponseWriter, r *http.Request, resumePath bool) {
	if !s.enterGateway() {
		http.Error(w, "mockdiscord: closed", http.StatusServiceUnavailable)
		return
	}
	defer s.wg.Done()
	gw := s.gw
	now := time.Now()
	q := r.URL.Query()
	obs := GatewayObservation{Time: now, Kind: ObserveConnect, Path: r.URL.Path, Query: r.URL.RawQuery, Shard: -1, Transport: q.Get("compress")}
	refuse := func(status int, msg string) {
		obs.Kind, obs.Reason = ObserveRefused, msg
		gw.record(obs)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(refusal{Message: msg})
	}
	switch {
	case resumePath && gw.takeRefusal():
		refuse(http.StatusServiceUnavailable, "resume URL refused (fault refuse_resume)")
		return
	case q.Get("encoding") == "etf":
		refuse(http.StatusBadRequest, "mockdiscord: encoding=etf is not supported (JSON only)")
		return
	}
	nc, rw, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		if nc != nil {
			_ = nc.Close()
		}
		obs.Kind, obs.Reason = ObserveRefused, "upgrade: "+err.Error()
		gw.record(obs)
		return
	}
	if !s.trackHijacked(nc) {
		_ = nc.Close()
		return
	}
	defer s.untrackHijacked(nc)

	c := &gwConn{
		s: s, gw: gw, nc: nc, br: rw.Reader,
		host: r.Host, resumePath: resumePath,
		lastBeat: now,
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	// Validate the query the way Discord does: after the upgrade, with a
	// close code.
	var code int
	var reason string
	v, okV := gatewayVersions[q.Get("v")]
	switch enc, comp := q.Get("encoding"), q.Get("compress"); {
	case !okV:
		code, reason = 4012, "v="+strconv.Quote(q.Get("v"))
	case enc != "" && enc != "json":
		code, reason = 4002, "unknown encoding "+strconv.Quote(enc)
	case comp != "" && comp != "zlib-stream" && comp != "zstd-stream":
		code, reason = 4002, "unknown compress "+strconv.Quote(comp)
	}
	c.version = v
	if code == 0 {
		switch q.Get("compress") {
		case "zlib-stream":
			c.zw = zlib.NewWriter(&c.zbuf)
		case "zstd-stream":
			c.zstd = newZstdStream(&c.zbuf)
		}
	}
	c.serve(obs, code, reason)
}

// gwConn is one gateway websocket connection. Fields marked "mu" are
// guarded by gateway.mu; the writer goroutine owns the zlib state.
type gwConn struct {
	s          *Server
	gw         *gateway
	nc         net.Conn
	br         *bufio.Reader
	host       string
	resumePath bool
	version    int

	id              int           // mu (set once at registration)
	out             []outItem     // mu
	sess            *session      // mu
	authed          bool          // mu: identified or resumed
	closing         bool          // mu: a close (or drop) has started
	closeRecorded   bool          // mu
	payloadCompress bool          // mu
	armed           []*armedFault // mu
	stopAck         int           // mu: heartbeats left unacknowledged; negative: all
	lastBeat        time.Time     // mu
	sends           []time.Time   // mu: payloads in the last SendLimitWindow
	presences       []time.Time   // mu: presence updates in the last 20 s
	grace           *time.Timer   // mu: ends the connection after a close started

	wake     chan struct{}
	done     chan struct{}
	doneOnce sync.Once

	// Owned by the writer goroutine.
	zw        *zlib.Writer // compress=zlib-stream
	zstd      *zstdStream  // compress=zstd-stream
	zbuf      bytes.Buffer
	splitNext int
	wbuf      bytes.Buffer
}

// itemKind says what the writer does with an outItem.
type itemKind int

const (
	itemPayload   itemKind = iota // a gateway payload (JSON)
	itemPong                      // a pong with data
	itemClose                     // our close frame, then wait for the peer's
	itemEcho                      // the reply to the peer's close frame, then end
	itemDrop                      // end the connection without a close frame
	itemSplit                     // split the next payload into parts frames
	itemBadFrame                  // a frame with a reserved opcode
	itemTruncated                 // a frame cut short, then end the connection
)

// outItem is one thing the writer goroutine sends, in order.
type outItem struct {
	kind     itemKind
	data     []byte
	dispatch bool // op 0: may be payload-compressed
	compress bool
	code     int
	reason   string
	parts    int
}

// record appends an observation.
func (gw *gateway) record(o GatewayObservation) {
	gw.mu.Lock()
	defer gw.mu.Unlock()
	gw.recordLocked(o)
}

func (gw *gateway) recordLocked(o GatewayObservation) {
	gw.obs = append(gw.obs, o)
}

// serve runs the connection: it registers it, sends HELLO (or closes
// with code when the query was invalid), starts the writer and reads
// until the connection ends.
func (c *gwConn) serve(obs GatewayObservation, code int, reason string) {
	gw := c.gw
	gw.mu.Lock()
	gw.nextConn++
	c.id = gw.nextConn
	gw.conns[c] = struct{}{}
	obs.Conn, obs.Accepted, obs.Version = c.id, true, c.version
	gw.recordLocked(obs)
	if code != 0 {
		c.violateLocked(code, reason)
	} else {
		for _, f := range gw.takePendingLocked(func(f *GatewayFault) bool { return f.BeforeHello }) {
			c.armLocked(*f)
		}
		iv := c.s.cfg.HeartbeatInterval.Milliseconds()
		c.enqueueLocked(outItem{kind: itemPayload, data: envelope(10, []byte(`{"heartbeat_interval":`+strconv.FormatInt(iv, 10)+`}`), 0, "")})
	}
	gw.mu.Unlock()

	if c.s.goTracked(c.writeLoop) {
		c.readLoop()
	}
	c.finish()
	c.end()
}

// startGraceLocked makes sure the connection ends closeGrace after a
// close started, even if the peer never completes the handshake.
func (c *gwConn) startGraceLocked() {
	if c.grace == nil {
		c.grace = time.AfterFunc(closeGrace, c.finish)
	}
}

// finish ends the connection: the writer stops and the socket closes. It
// is idempotent and never blocks.
func (c *gwConn) finish() {
	c.doneOnce.Do(func() {
		close(c.done)
		_ = c.nc.Close()
	})
}

// end detaches the connection from its session and from the gateway.
func (c *gwConn) end() {
	gw := c.gw
	gw.mu.Lock()
	defer gw.mu.Unlock()
	delete(gw.conns, c)
	if c.grace != nil {
		c.grace.Stop()
	}
	now := time.Now()
	if !c.closeRecorded {
		c.closeRecorded = true
		o := GatewayObservation{Time: now, Kind: ObserveClose, Conn: c.id, Shard: c.shardLocked(), By: "client", Code: 1006, Reason: "connection lost without a close frame"}
		select {
		case <-c.s.done:
			o.By, o.Code, o.Reason = "server", 0, "server closed"
		default:
		}
		gw.recordLocked(o)
	}
	c.detachLocked(now)
}

// detachLocked disconnects the connection from its session: from now on
// the session's dispatches are only kept for replay. The session stays
// resumable unless something invalidated it.
func (c *gwConn) detachLocked(now time.Time) {
	if sess := c.sess; sess != nil && sess.conn == c {
		sess.conn = nil
		sess.disconnectedAt = now
	}
}

// shardLocked returns the connection's shard, or -1.
func (c *gwConn) shardLocked() int {
	if c.sess == nil {
		return -1
	}
	return c.sess.shard
}

// enqueueLocked queues an item for the writer.
func (c *gwConn) enqueueLocked(it outItem) {
	c.out = append(c.out, it)
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// sendLocked queues a non-dispatch payload (op 1, 7, 9, 11).
func (c *gwConn) sendLocked(op int, d string) {
	if c.closing {
		return
	}
	c.enqueueLocked(outItem{kind: itemPayload, data: envelope(op, []byte(d), 0, "")})
}

// sendDispatchLocked queues a dispatch already numbered by its session
// and counts it toward armed faults.
func (c *gwConn) sendDispatchLocked(p []byte) {
	if c.closing {
		return
	}
	compress := c.payloadCompress && len(p) >= c.s.cfg.PayloadCompressThreshold
	c.enqueueLocked(outItem{kind: itemPayload, data: p, dispatch: true, compress: compress})
	armed := c.armed[:0]
	var due []*armedFault
	for _, a := range c.armed {
		a.left--
		if a.left <= 0 {
			due = append(due, a)
		} else {
			armed = append(armed, a)
		}
	}
	c.armed = armed
	for _, a := range due {
		c.fireLocked(a.f)
	}
}

// invalidatingCode reports whether a server close with code ends the
// session (the docs tell the client to start a new one, or the close is
// fatal).
func invalidatingCode(code int) bool {
	switch code {
	case 4003, 4004, 4007, 4009, 4010, 4011, 4012, 4013, 4014:
		return true
	}
	return false
}

// closeLocked starts a server close with code; keepSession overrides
// invalidatingCode.
func (c *gwConn) closeLocked(code int, reason string, keepSession bool) {
	if c.closing {
		return
	}
	c.closing = true
	c.closeRecorded = true
	c.gw.recordLocked(GatewayObservation{Time: time.Now(), Kind: ObserveClose, Conn: c.id, Shard: c.shardLocked(), By: "server", Code: code, Reason: reason})
	if c.sess != nil && !keepSession && invalidatingCode(code) {
		c.sess.invalid = true
	}
	c.detachLocked(time.Now())
	c.enqueueLocked(outItem{kind: itemClose, code: code, reason: reason})
	c.startGraceLocked()
}

// dropLocked ends the connection, in order with what is queued, without
// a close frame. The session stays resumable.
func (c *gwConn) dropLocked(reason string) {
	if c.closing {
		return
	}
	c.closing = true
	c.closeRecorded = true
	c.gw.recordLocked(GatewayObservation{Time: time.Now(), Kind: ObserveClose, Conn: c.id, Shard: c.shardLocked(), By: "server", Reason: reason})
	c.detachLocked(time.Now())
	c.enqueueLocked(outItem{kind: itemDrop})
	c.startGraceLocked() // in case the writer is stuck behind a peer that does not read
}

// violateLocked records a client violation and closes with code.
func (c *gwConn) violateLocked(code int, detail string) {
	c.gw.recordLocked(GatewayObservation{Time: time.Now(), Kind: ObserveViolation, Conn: c.id, Shard: c.shardLocked(), Code: code, Reason: detail})
	c.closeLocked(code, closeReason(code, detail), false)
}

// invalidSessionLocked sends op 9 and, with Options.InvalidSessionCloseCode,
// closes.
func (c *gwConn) invalidSessionLocked(resumable bool) {
	c.sendLocked(9, strconv.FormatBool(resumable))
	if code := c.s.cfg.InvalidSessionCloseCode; code != 0 {
		c.closeLocked(code, closeReason(code, "after INVALID_SESSION"), resumable)
	}
}

// heartbeatWindow is how long a connection may go without heartbeating.
func (c *gwConn) heartbeatWindow() time.Duration {
	cfg := &c.s.cfg
	return time.Duration(float64(cfg.HeartbeatInterval) * (1 + cfg.HeartbeatTolerance))
}

// checkHeartbeat closes the connection when its heartbeat is overdue and
// returns 0, or returns how long until it would be.
func (c *gwConn) checkHeartbeat() time.Duration {
	gw := c.gw
	gw.mu.Lock()
	defer gw.mu.Unlock()
	if c.closing {
		return 0
	}
	now := time.Now()
	deadline := c.lastBeat.Add(c.heartbeatWindow())
	if now.Before(deadline) {
		return deadline.Sub(now)
	}
	reason := fmt.Sprintf("no heartbeat for %v", now.Sub(c.lastBeat))
	code := c.s.cfg.MissedHeartbeatCode
	gw.recordLocked(GatewayObservation{Time: now, Kind: ObserveViolation, Conn: c.id, Shard: c.shardLocked(), Code: max(code, 0), Reason: "missed heartbeat: " + reason})
	if code < 0 {
		c.dropLocked("missed heartbeat (dropped): " + reason)
	} else {
		c.closeLocked(code, closeReason(code, ""), true)
	}
	return 0
}

// writeLoop is the connection's only writer. It also watches the
// heartbeat deadline.
func (c *gwConn) writeLoop() {
	hb := time.NewTimer(c.heartbeatWindow())
	defer hb.Stop()
	sentClose := false
	for {
		select {
		case <-c.wake:
		case <-hb.C:
			if d := c.checkHeartbeat(); d > 0 {
				hb.Reset(d)
			}
		case <-c.done:
			return
		case <-c.s.done:
			c.finish()
			return
		}
		if sentClose {
			continue // our close frame is out: send nothing more
		}
		c.gw.mu.Lock()
		items := c.out
		c.out = nil
		c.gw.mu.Unlock()
		for _, it := range items {
			end, err := c.write(it)
			if err != nil || end {
				c.finish()
				return
			}
			if it.kind == itemClose {
				sentClose = true
				break
			}
		}
	}
}

// write sends one item; end reports that the connection must end now.
func (c *gwConn) write(it outItem) (end bool, err error) {
	switch it.kind {
	case itemPayload:
		return false, c.writePayload(it)
	case itemPong:
		return false, c.writeFrame(ws.OpPong, true, it.data)
	case itemClose, itemEcho:
		var body []byte
		if it.code != 0 && it.code != int(ws.StatusNoStatusRcvd) {
			reason := it.reason
			if len(reason) > 123 {
				reason = reason[:123]
			}
			body = ws.NewCloseFrameBody(ws.StatusCode(it.code), reason)
		}
		err := c.writeFrame(ws.OpClose, true, body)
		return it.kind == itemEcho, err
	case itemDrop:
		return true, nil
	case itemSplit:
		c.splitNext = it.parts
		return false, nil
	case itemBadFrame:
		return false, c.writeFrame(ws.OpCode(0x3), true, nil)
	case itemTruncated:
		c.wbuf.Reset()
		_ = ws.WriteHeader(&c.wbuf, ws.Header{Fin: true, OpCode: ws.OpText, Length: int64(len(it.data)) + 64})
		c.wbuf.Write(it.data)
		_, err := c.nc.Write(c.wbuf.Bytes())
		return true, err
	}
	return false, nil
}

// writePayload sends a payload, compressed as the connection asks, as
// one frame (or split by a fault).
func (c *gwConn) writePayload(it outItem) error {
	data, op := it.data, ws.OpText
	switch {
	case c.zw != nil:
		c.zbuf.Reset()
		if _, err := c.zw.Write(data); err != nil {
			return err
		}
		if err := c.zw.Flush(); err != nil { // Z_SYNC_FLUSH: ends with 00 00 FF FF
			return err
		}
		data, op = bytes.Clone(c.zbuf.Bytes()), ws.OpBinary
	case c.zstd != nil:
		c.zbuf.Reset()
		if err := c.zstd.write(data); err != nil { // ends with a flushed block
			return err
		}
		data, op = bytes.Clone(c.zbuf.Bytes()), ws.OpBinary
	case it.compress:
		data, op = zlibPayload(data), ws.OpBinary
	}
	if parts := c.splitNext; parts > 1 {
		c.splitNext = 0
		cuts := splitPoints(data, parts, c.zw != nil)
		if c.zw != nil {
			// zlib-stream: several websocket messages make one payload.
			// (zstd-stream falls through: one websocket message is one
			// payload, so its parts are fragments.)
			prev := 0
			for _, cut := range cuts {
				if err := c.writeFrame(op, true, data[prev:cut]); err != nil {
					return err
				}
				prev = cut
			}
			return nil
		}
		// Otherwise: one message in several websocket fragments.
		prev := 0
		for i, cut := range cuts {
			fop := op
			if i > 0 {
				fop = ws.OpContinuation
			}
			if err := c.writeFrame(fop, i == len(cuts)-1, data[prev:cut]); err != nil {
				return err
			}
			prev = cut
		}
		return nil
	}
	return c.writeFrame(op, true, data)
}

// writeFrame writes one unmasked frame with one Write call.
func (c *gwConn) writeFrame(op ws.OpCode, fin bool, p []byte) error {
	c.wbuf.Reset()
	if err := ws.WriteHeader(&c.wbuf, ws.Header{Fin: fin, OpCode: op, Length: int64(len(p))}); err != nil {
		return err
	}
	c.wbuf.Write(p)
	_, err := c.nc.Write(c.wbuf.Bytes())
	return err
}

// readLoop reads frames until the connection ends. After a protocol
// error or a close it keeps reading, and discarding, until the end of the
// connection, so that the peer is never blocked writing (net.Pipe has no
// buffer) and gets to read the close frame.
func (c *gwConn) readLoop() {
	var msg []byte
	inMsg, discard, broken := false, false, false
	for {
		h, err := ws.ReadHeader(c.br)
		if err != nil {
			return
		}
		bad := ""
		switch {
		case !h.Masked:
			bad = "unmasked client frame"
		case h.Rsv != 0:
			bad = "reserved bits set"
		case h.OpCode.IsReserved():
			bad = "reserved opcode"
		case h.OpCode.IsControl() && (h.Length > 125 || !h.Fin):
			bad = "invalid control frame"
		case h.OpCode == ws.OpContinuation && !inMsg:
			bad = "continuation frame without a message"
		case (h.OpCode == ws.OpText || h.OpCode == ws.OpBinary) && inMsg:
			bad = "new message inside a fragmented one"
		}
		if bad != "" && !broken {
			broken = true
			c.fail(int(ws.StatusProtocolError), bad)
		}
		if broken {
			if _, err := io.CopyN(io.Discard, c.br, h.Length); err != nil {
				return
			}
			if h.OpCode == ws.OpClose {
				c.finish() // the peer's close frame: the handshake is over
			}
			continue
		}
		if h.OpCode.IsControl() {
			p := make([]byte, h.Length)
			if _, err := io.ReadFull(c.br, p); err != nil {
				return
			}
			ws.Cipher(p, h.Mask, 0)
			switch h.OpCode {
			case ws.OpPing:
				c.gw.mu.Lock()
				if !c.closing {
					c.enqueueLocked(outItem{kind: itemPong, data: p})
				}
				c.gw.mu.Unlock()
			case ws.OpClose:
				c.onClientClose(p)
				broken = true // read (and drop) whatever follows until the end
			}
			continue
		}
		if h.OpCode != ws.OpContinuation {
			inMsg, discard, msg = true, false, msg[:0]
		}
		if !discard && int64(len(msg))+h.Length > MaxPayloadSize {
			discard = true
			c.fail(4002, fmt.Sprintf("payload larger than %d bytes", MaxPayloadSize))
		}
		if discard {
			if _, err := io.CopyN(io.Discard, c.br, h.Length); err != nil {
				return
			}
		} else {
			start := len(msg)
			msg = append(msg, make([]byte, h.Length)...)
			if _, err := io.ReadFull(c.br, msg[start:]); err != nil {
				return
			}
			ws.Cipher(msg[start:], h.Mask, 0)
		}
		if h.Fin {
			inMsg = false
			if !discard {
				c.handle(msg)
			}
		}
	}
}

// onClientClose handles the peer's close frame.
func (c *gwConn) onClientClose(p []byte) {
	code := int(ws.StatusNoStatusRcvd)
	reason := ""
	if len(p) >= 2 {
		sc, r := ws.ParseCloseFrameData(p)
		code, reason = int(sc), r
	}
	gw := c.gw
	gw.mu.Lock()
	if c.closing {
		gw.mu.Unlock()
		c.finish() // the reply to our close frame: the handshake is over
		return
	}
	c.closing = true
	c.closeRecorded = true
	gw.recordLocked(GatewayObservation{Time: time.Now(), Kind: ObserveClose, Conn: c.id, Shard: c.shardLocked(), By: "client", Code: code, Reason: reason})
	if (code == 1000 || code == 1001) && c.sess != nil && c.sess.conn == c {
		c.sess.invalid = true // a deliberate shutdown ends the session
	}
	c.detachLocked(time.Now())
	c.enqueueLocked(outItem{kind: itemEcho, code: code})
	c.startGraceLocked()
	gw.mu.Unlock()
}

// envelope renders a gateway payload; seq 0 and t "" render as null.
func envelope(op int, d []byte, seq int64, t string) []byte {
	var b bytes.Buffer
	b.Grow(len(d) + 48)
	b.WriteString(`{"t":`)
	if t == "" {
		b.WriteString("null")
	} else {
		q, _ := json.Marshal(t)
		b.Write(q)
	}
	b.WriteString(`,"s":`)
	if seq == 0 {
		b.WriteString("null")
	} else {
		b.WriteString(strconv.FormatInt(seq, 10))
	}
	b.WriteString(`,"op":`)
	b.WriteString(strconv.Itoa(op))
	b.WriteString(`,"d":`)
	if len(d) == 0 {
		b.WriteString("null")
	} else {
		b.Write(d)
	}
	b.WriteByte('}')
	return b.Bytes()
}
