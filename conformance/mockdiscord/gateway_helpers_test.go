package mockdiscord_test

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/klauspost/compress/zstd"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
)

// gwc is a minimal gateway client written for these tests on gobwas/ws
// directly: it reads frames itself, so that tests can see how payloads
// were framed, compressed and closed.
type gwc struct {
	t    *testing.T
	conn net.Conn
	r    io.Reader
	zlib bool   // compress=zlib-stream
	zstd bool   // compress=zstd-stream
	zall []byte // the zlib or zstd stream so far
	zout int    // inflated bytes already returned
	seq  int64  // last s seen
}

// gwPayload is one received gateway payload.
type gwPayload struct {
	Op int             `json:"op"`
	D  json.RawMessage `json:"d"`
	S  *int64          `json:"s"`
	T  *string         `json:"t"`

	binary   bool   // carried by binary frames
	messages int    // websocket messages that carried it
	frames   int    // websocket frames that carried it
	raw      []byte // the JSON text
}

// name returns t, or "".
func (p gwPayload) name() string {
	if p.T == nil {
		return ""
	}
	return *p.T
}

// obj decodes d as an object.
func (p gwPayload) obj(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(p.D, &m); err != nil {
		t.Fatalf("decode d %s: %v", p.D, err)
	}
	return m
}

// closeErr is a close frame from the server.
type closeErr struct {
	code   int
	reason string
}

func (e closeErr) Error() string { return fmt.Sprintf("closed %d %q", e.code, e.reason) }

// closeCodeOf returns the close code in err, or 0.
func closeCodeOf(err error) int {
	var ce closeErr
	if errors.As(err, &ce) {
		return ce.code
	}
	return 0
}

const pipeHost = "ws://mockdiscord.test"

// tryDialGateway dials path (with its query) in memory.
func tryDialGateway(t *testing.T, s *mockdiscord.Server, path string) (*gwc, error) {
	t.Helper()
	return dialWith(t, ws.Dialer{NetDial: s.NetDial}, pipeHost+path)
}

// dialGateway dials path in memory and fails the test on error.
func dialGateway(t *testing.T, s *mockdiscord.Server, path string) *gwc {
	t.Helper()
	c, err := tryDialGateway(t, s, path)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	return c
}

// dialTCP dials path on the server's loopback address.
func dialTCP(t *testing.T, s *mockdiscord.Server, path string) *gwc {
	t.Helper()
	base := strings.TrimSuffix(s.GatewayURL(), "/gateway")
	c, err := dialWith(t, ws.Dialer{Timeout: 10 * time.Second}, base+path)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	return c
}

func dialWith(t *testing.T, d ws.Dialer, url string) (*gwc, error) {
	conn, br, _, err := d.Dial(t.Context(), url)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = conn.Close() })
	c := &gwc{t: t, conn: conn, r: conn, zlib: strings.Contains(url, "compress=zlib-stream"), zstd: strings.Contains(url, "compress=zstd-stream")}
	if br != nil {
		c.r = br
	}
	return c, nil
}

// recv reads the next payload. A close frame is answered and returned
// as a closeErr.
func (c *gwc) recv() (gwPayload, error) {
	var p gwPayload
	var msg []byte
	for {
		f, err := readFrame(c.r)
		if err != nil {
			return p, err
		}
		switch op := f.Header.OpCode; {
		case op == ws.OpClose:
			code, reason := ws.ParseCloseFrameData(f.Payload)
			_ = ws.WriteFrame(c.conn, ws.MaskFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(code, ""))))
			return p, closeErr{code: int(code), reason: reason}
		case op == ws.OpPing:
			_ = wsutil.WriteClientMessage(c.conn, ws.OpPong, f.Payload)
			continue
		case op == ws.OpPong:
			continue
		case op.IsReserved():
			return p, fmt.Errorf("frame with reserved opcode %#x", byte(op))
		case op != ws.OpContinuation:
			p.binary = op == ws.OpBinary
		}
		p.frames++
		msg = append(msg, f.Payload...)
		if !f.Header.Fin {
			continue
		}
		p.messages++
		if c.zlib {
			if !p.binary {
				return p, errors.New("zlib-stream: text message")
			}
			c.zall = append(c.zall, msg...)
			if !bytes.HasSuffix(msg, []byte{0, 0, 0xff, 0xff}) {
				msg = nil
				continue // the payload goes on in the next message
			}
			if c.zall[0] != 0x78 {
				return p, fmt.Errorf("zlib-stream: header %#x", c.zall[0])
			}
			// One inflate context over the whole stream: inflate it all
			// and keep what is new.
			out, err := io.ReadAll(flate.NewReader(bytes.NewReader(c.zall[2:])))
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				return p, fmt.Errorf("zlib-stream: inflate: %v", err)
			}
			p.raw = out[c.zout:]
			c.zout = len(out)
		} else if c.zstd {
			if !p.binary {
				return p, errors.New("zstd-stream: text message")
			}
			// One message is one payload. One decompression context over
			// the whole stream: decode it all, which stops where the
			// stream does (inside the never-ended frame), and keep what is
			// new.
			c.zall = append(c.zall, msg...)
			if !bytes.HasPrefix(c.zall, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
				return p, fmt.Errorf("zstd-stream: magic % x", c.zall[:min(4, len(c.zall))])
			}
			zr, err := zstd.NewReader(bytes.NewReader(c.zall), zstd.WithDecoderConcurrency(1))
			if err != nil {
				return p, err
			}
			out, err := io.ReadAll(zr)
			zr.Close()
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				return p, fmt.Errorf("zstd-stream: decode: %v, want io.ErrUnexpectedEOF where the frame goes on", err)
			}
			p.raw = out[c.zout:]
			c.zout = len(out)
		} else if p.binary {
			zr, err := zlib.NewReader(bytes.NewReader(msg))
			if err != nil {
				return p, fmt.Errorf("payload compression: %w", err)
			}
			if p.raw, err = io.ReadAll(zr); err != nil {
				return p, fmt.Errorf("payload compression: %w", err)
			}
		} else {
			p.raw = msg
		}
		break
	}
	if err := json.Unmarshal(p.raw, &p); err != nil {
		return p, fmt.Errorf("invalid JSON %q: %w", p.raw, err)
	}
	if p.S != nil {
		c.seq = *p.S
	}
	return p, nil
}

// next reads a payload and fails the test on error.
func (c *gwc) next() gwPayload {
	c.t.Helper()
	p, err := c.recv()
	if err != nil {
		c.t.Fatalf("recv: %v", err)
	}
	return p
}

// expect reads a payload and checks its op.
func (c *gwc) expect(op int) gwPayload {
	c.t.Helper()
	p := c.next()
	if p.Op != op {
		c.t.Fatalf("got op %d %s %s, want op %d", p.Op, p.name(), p.D, op)
	}
	return p
}

// dispatch reads a payload and checks it is dispatch name.
func (c *gwc) dispatch(name string) gwPayload {
	c.t.Helper()
	p := c.next()
	if p.Op != 0 || p.name() != name {
		c.t.Fatalf("got op %d %s %s, want dispatch %s", p.Op, p.name(), p.D, name)
	}
	return p
}

// expectClose reads, skipping dispatches and ACKs, until the server's
// close frame, and checks its code.
func (c *gwc) expectClose(code int) closeErr {
	c.t.Helper()
	for {
		p, err := c.recv()
		if err == nil && (p.Op == 0 || p.Op == 11) {
			continue
		}
		var ce closeErr
		if !errors.As(err, &ce) {
			c.t.Fatalf("got payload op %d %s / error %v, want close %d", p.Op, p.D, err, code)
		}
		if ce.code != code {
			c.t.Fatalf("close code: got %d (%q), want %d", ce.code, ce.reason, code)
		}
		return ce
	}
}

// expectEOF reads until the connection ends without a close frame.
func (c *gwc) expectEOF() {
	c.t.Helper()
	for {
		p, err := c.recv()
		switch {
		case err == nil:
			continue
		case closeCodeOf(err) != 0:
			c.t.Fatalf("got close frame %v, want the connection to drop", err)
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed), errors.Is(err, io.ErrClosedPipe):
			return
		default:
			c.t.Fatalf("got %v (payload %s), want EOF", err, p.raw)
		}
	}
}

// expectNothing checks that nothing arrives within d.
func (c *gwc) expectNothing(d time.Duration) {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	p, err := c.recv()
	_ = c.conn.SetReadDeadline(time.Time{})
	if err == nil {
		c.t.Fatalf("got op %d %s %s, want nothing", p.Op, p.name(), p.D)
	}
	if !errors.Is(err, errTimeout) && !isTimeout(err) {
		c.t.Fatalf("got %v, want a timeout", err)
	}
}

var errTimeout = errors.New("timeout")

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// send writes v as a JSON text message.
func (c *gwc) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatalf("marshal: %v", err)
	}
	c.sendRaw(string(b))
}

// sendRaw writes a text message.
func (c *gwc) sendRaw(s string) {
	c.t.Helper()
	if err := wsutil.WriteClientText(c.conn, []byte(s)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// op builds a payload.
func op(code int, d any) map[string]any { return map[string]any{"op": code, "d": d} }

// heartbeat sends op 1 with the last seq seen.
func (c *gwc) heartbeat() {
	c.t.Helper()
	var d any
	if c.seq > 0 {
		d = c.seq
	}
	c.send(op(1, d))
}

// closeWith sends a close frame with code and waits for the server's
// reply (or the end of the connection).
func (c *gwc) closeWith(code int) {
	c.t.Helper()
	f := ws.MaskFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusCode(code), "bye")))
	if err := ws.WriteFrame(c.conn, f); err != nil {
		c.t.Fatalf("close: %v", err)
	}
	for {
		fr, err := readFrame(c.r)
		if err != nil || fr.Header.OpCode == ws.OpClose {
			break
		}
	}
	_ = c.conn.Close()
}

// identifyData is an IDENTIFY d with the defaults the tests use.
func identifyData(s *mockdiscord.Server, shard, count int, intents uint64) map[string]any {
	return map[string]any{
		"token":      s.Token(),
		"properties": map[string]string{"os": "linux", "browser": "cordkit-test", "device": "cordkit-test"},
		"intents":    intents,
		"shard":      []int{shard, count},
	}
}

// identify sends IDENTIFY and returns READY's d, after reading HELLO.
func (c *gwc) identify(s *mockdiscord.Server, shard, count int, intents uint64) readyD {
	c.t.Helper()
	c.expect(10)
	c.send(op(2, identifyData(s, shard, count, intents)))
	return c.ready()
}

// readyD is the part of READY the tests read.
type readyD struct {
	V                int    `json:"v"`
	SessionID        string `json:"session_id"`
	ResumeGatewayURL string `json:"resume_gateway_url"`
	Shard            []int  `json:"shard"`
	User             struct {
		ID  string `json:"id"`
		Bot bool   `json:"bot"`
	} `json:"user"`
	Guilds []struct {
		ID          string `json:"id"`
		Unavailable bool   `json:"unavailable"`
	} `json:"guilds"`
	Application struct {
		ID    string `json:"id"`
		Flags int    `json:"flags"`
	} `json:"application"`
}

// ready reads READY and the GUILD_CREATEs that follow it.
func (c *gwc) ready() readyD {
	c.t.Helper()
	p := c.dispatch("READY")
	var r readyD
	if err := json.Unmarshal(p.D, &r); err != nil {
		c.t.Fatalf("READY: %v", err)
	}
	return r
}

// skipGuildCreates reads n GUILD_CREATEs.
func (c *gwc) skipGuildCreates(n int) {
	c.t.Helper()
	for range n {
		c.dispatch("GUILD_CREATE")
	}
}

// resume sends RESUME after HELLO.
func (c *gwc) resume(s *mockdiscord.Server, session string, seq int64) {
	c.t.Helper()
	c.expect(10)
	c.send(op(6, map[string]any{"token": s.Token(), "session_id": session, "seq": seq}))
}

// streamNs reads dispatches name until RESUMED (or count events) and
// returns their n values and s values.
func (c *gwc) streamNs(name string, count int) (ns []int, seqs []int64) {
	c.t.Helper()
	for len(ns) < count {
		p := c.next()
		if p.Op != 0 || p.name() != name {
			c.t.Fatalf("got op %d %s %s, want %s", p.Op, p.name(), p.D, name)
		}
		var d struct{ N int }
		if err := json.Unmarshal(p.D, &d); err != nil {
			c.t.Fatal(err)
		}
		ns = append(ns, d.N)
		seqs = append(seqs, *p.S)
	}
	return ns, seqs
}

// obsOf returns the observations of kind.
func obsOf(s *mockdiscord.Server, kind mockdiscord.GatewayObservationKind) []mockdiscord.GatewayObservation {
	var out []mockdiscord.GatewayObservation
	for _, o := range s.GatewayObservations() {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// hour is a heartbeat interval long enough not to matter.
const hour = time.Hour

func parseUint(s string) (uint64, error) { return strconv.ParseUint(s, 10, 64) }

// readFrame reads one server frame, at most 16 MiB.
func readFrame(r io.Reader) (ws.Frame, error) {
	h, err := ws.ReadHeader(r)
	if err != nil {
		return ws.Frame{}, err
	}
	if h.Length > 16<<20 {
		return ws.Frame{}, fmt.Errorf("frame of %d bytes", h.Length)
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(r, p); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return ws.Frame{}, err
	}
	if h.Masked {
		ws.Cipher(p, h.Mask, 0)
	}
	return ws.Frame{Header: h, Payload: p}, nil
}
