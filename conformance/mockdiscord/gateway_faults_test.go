package mockdiscord_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
)

// identified returns a connection with a session on shard 0 of 1 and the
// session's ID.
func identified(t *testing.T, e *env, path string) (*gwc, string) {
	t.Helper()
	c := dialGateway(t, e.s, path)
	r := c.identify(e.s, 0, 1, mockdiscord.IntentGuilds)
	c.skipGuildCreates(len(e.s.Guilds()))
	return c, r.SessionID
}

func inject(t *testing.T, e *env, f mockdiscord.GatewayFault, want int) {
	t.Helper()
	n, err := e.s.InjectGateway(f)
	if err != nil {
		t.Fatalf("InjectGateway: %v", err)
	}
	if n != want {
		t.Fatalf("InjectGateway: armed on %d connections, want %d", n, want)
	}
}

func TestGatewayFaults(t *testing.T) {
	opts := &mockdiscord.Options{Guilds: 1, HeartbeatInterval: hour, IdentifyInterval: -1}
	run := func(name string, f func(t *testing.T, e *env)) {
		t.Run(name, func(t *testing.T) { bubble(t, opts, f) })
	}
	run("Reconnect", func(t *testing.T, e *env) {
		c, sid := identified(t, e, "/gateway?v=10")
		inject(t, e, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultReconnect}, 1)
		p := c.expect(7)
		if p.S != nil || p.T != nil {
			t.Errorf("op 7 with s/t")
		}
		c.closeWith(4000)
		c2 := dialGateway(t, e.s, "/gateway-resume?v=10")
		c2.resume(e.s, sid, c.seq)
		c2.dispatch("RESUMED")
		wantEqual(t, "faults observed", len(obsOf(e.s, mockdiscord.ObserveFault)), 1)
	})
	run("InvalidSessionResumable", func(t *testing.T, e *env) {
		c, _ := identified(t, e, "/gateway?v=10")
		inject(t, e, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultInvalidSession, Resumable: true}, 1)
		wantEqual(t, "d", string(c.expect(9).D), "true")
		wantEqual(t, "sessions", len(e.s.Sessions()), 1)
	})
	run("InvalidSessionNotResumable", func(t *testing.T, e *env) {
		c, sid := identified(t, e, "/gateway?v=10")
		inject(t, e, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultInvalidSession}, 1)
		wantEqual(t, "d", string(c.expect(9).D), "false")
		wantEqual(t, "sessions", len(e.s.Sessions()), 0)
		c.closeWith(4000)
		c2 := dialGateway(t, e.s, "/gateway-resume?v=10")
		c2.resume(e.s, sid, c.seq)
		wantEqual(t, "resume", string(c2.expect(9).D), "false")
	})
	run("CloseResumable", func(t *testing.T, e *env) {
		c, sid := identified(t, e, "/gateway?v=10")
		inject(t, e, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultClose, Reason: "test"}, 1)
		wantEqual(t, "reason", c.expectClose(4000).reason, "test")
		c2 := dialGateway(t, e.s, "/gateway-resume?v=10")
		c2.resume(e.s, sid, c.seq)
		c2.dispatch("RESUMED")
	})
	run("Close4009Invalidates", func(t *testing.T, e *env) {
		c, sid := identified(t, e, "/gateway?v=10")
		inject(t, e, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultClose, Code: 4009}, 1)
		c.expectClose(4009)
		c2 := dialGateway(t, e.s, "/gateway-resume?v=10")
		c2.resume(e.s, sid, c.seq)
		wantEqual(t, "resume", string(c2.expect(9).D), "false")
	})
	run("Malformed", func(t *testing.T, e *env) {
		c, _ := identified(t, e, "/gateway?v=10&compress=zlib-stream")
		inject(t, e, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultMalformed}, 1)
		_, err := c.recv()
		if err == nil || !strings.Contains(err.Error(), "invalid JSON") {
			t.Fatalf("got %v, want invalid JSON", err)
		}
		c.heartbeat() // the connection goes on
		c.expect(11)
	})
	run("Truncated", func(t *testing.T, e *env) {
		c, _ := identified(t, e, "/gateway?v=10")
		inject(t, e, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultTruncated}, 1)
		_, err := c.recv()
		if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			t.Fatalf("got %v, want an unexpected EOF", err)
		}
	})
	run("BadFrame", func(t *testing.T, e *env) {
		c, _ := identified(t, e, "/gateway?v=10")
		inject(t, e, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultBadFrame}, 1)
		_, err := c.recv()
		if err == nil || !strings.Contains(err.Error(), "reserved opcode") {
			t.Fatalf("got %v, want a reserved opcode", err)
		}
		c.closeWith(int(ws.StatusProtocolError))
		cl := obsOf(e.s, mockdiscord.ObserveClose)
		wantEqual(t, "client close", cl[len(cl)-1].Code, 1002)
		wantEqual(t, "still resumable", len(e.s.Sessions()), 1)
	})
	run("StopAck", func(t *testing.T, e *env) {
		c, _ := identified(t, e, "/gateway?v=10")
		inject(t, e, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultStopAck, Count: 2}, 1)
		c.heartbeat()
		c.heartbeat()
		c.expectNothing(time.Second)
		c.heartbeat()
		c.expect(11)
		var acked []bool
		for _, o := range obsOf(e.s, mockdiscord.ObserveHeartbeat) {
			acked = append(acked, o.Acked)
		}
		wantEqual(t, "acked", acked, []bool{false, false, true})
	})
	run("StopAckForever", func(t *testing.T, e *env) {
		c, _ := identified(t, e, "/gateway?v=10")
		inject(t, e, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultStopAck}, 1)
		for range 5 {
			c.heartbeat()
		}
		c.expectNothing(time.Minute)
	})
	run("RequestHeartbeat", func(t *testing.T, e *env) {
		c, _ := identified(t, e, "/gateway?v=10")
		inject(t, e, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultRequestHeartbeat}, 1)
		c.expect(1)
	})
	run("BeforeHello", func(t *testing.T, e *env) {
		inject(t, e, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultReconnect, BeforeHello: true}, 0)
		c := dialGateway(t, e.s, "/gateway?v=10")
		c.expect(7)
		c.expect(10)
		c2 := dialGateway(t, e.s, "/gateway?v=10")
		c2.expect(10) // once only
	})
	run("NextSession", func(t *testing.T, e *env) {
		inject(t, e, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultClose, Code: 4000, Next: true}, 0)
		c := dialGateway(t, e.s, "/gateway?v=10")
		c.identify(e.s, 0, 1, mockdiscord.IntentGuilds)
		c.dispatch("GUILD_CREATE")
		c.expectClose(4000)
	})
	run("AfterDispatches", func(t *testing.T, e *env) {
		c, _ := identified(t, e, "/gateway?v=10")
		inject(t, e, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultClose, Code: 4000, AfterDispatches: 3}, 1)
		_, _ = e.s.Stream(0, 5, "N")
		ns, _ := c.streamNs("N", 3)
		wantEqual(t, "before the close", ns, []int{1, 2, 3})
		c.expectClose(4000)
	})
	run("AllShards", func(t *testing.T, e *env) {
		a, _ := identified(t, e, "/gateway?v=10")
		b := dialGateway(t, e.s, "/gateway?v=10") // not identified
		b.expect(10)
		inject(t, e, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultDrop, Shard: mockdiscord.AllShards}, 2)
		a.expectEOF()
		b.expectEOF()
	})
	run("OtherShard", func(t *testing.T, e *env) {
		identified(t, e, "/gateway?v=10")
		inject(t, e, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultDrop, Shard: 1}, 0)
	})
	run("RefuseResume", func(t *testing.T, e *env) {
		c, sid := identified(t, e, "/gateway?v=10")
		inject(t, e, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultRefuseResume}, 0)
		c.closeWith(4000)
		if _, err := tryDialGateway(t, e.s, "/gateway-resume?v=10"); err == nil || !strings.Contains(err.Error(), "503") {
			t.Fatalf("resume dial: got %v, want 503", err)
		}
		c2 := dialGateway(t, e.s, "/gateway?v=10") // the fallback
		c2.resume(e.s, sid, c.seq)
		c2.dispatch("RESUMED")
		wantEqual(t, "refused", obsOf(e.s, mockdiscord.ObserveRefused)[0].Path, "/gateway-resume")
	})
	run("Invalid", func(t *testing.T, e *env) {
		for _, f := range []mockdiscord.GatewayFault{
			{Kind: "nope"},
			{Kind: mockdiscord.GatewayFaultSplit, Parts: 1},
			{Kind: mockdiscord.GatewayFaultClose, Code: 1005},
			{Kind: mockdiscord.GatewayFaultDrop, Shard: -2},
			{Kind: mockdiscord.GatewayFaultDrop, AfterDispatches: -1},
			{Kind: mockdiscord.GatewayFaultDrop, Next: true, BeforeHello: true},
			{Kind: mockdiscord.GatewayFaultStopAck, Count: -1},
		} {
			if _, err := e.s.InjectGateway(f); !errors.Is(err, mockdiscord.ErrInvalidGatewayFault) {
				t.Errorf("%+v: got %v, want ErrInvalidGatewayFault", f, err)
			}
		}
	})
}

func TestGatewayZlibStream(t *testing.T) {
	bubble(t, &mockdiscord.Options{Guilds: 2, HeartbeatInterval: hour}, func(t *testing.T, e *env) {
		c := dialGateway(t, e.s, "/gateway?v=10&encoding=json&compress=zlib-stream")
		hello := c.expect(10)
		wantEqual(t, "binary", hello.binary, true)
		d := identifyData(e.s, 0, 1, mockdiscord.IntentGuilds)
		d["compress"] = true // ignored: transport compression wins
		c.send(op(2, d))
		c.ready()
		c.skipGuildCreates(2)
		wantEqual(t, "stream header", c.zall[:2], []byte{0x78, 0x9c})
		inject(t, e, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultSplit, Parts: 3}, 1)
		_, _ = e.s.Stream(0, 2, "N")
		p := c.dispatch("N")
		wantEqual(t, "messages of the split payload", p.messages, 3)
		p = c.dispatch("N")
		wantEqual(t, "messages of the next payload", p.messages, 1)
		c.heartbeat()
		c.expect(11)
	})
}

func TestGatewayZstdStream(t *testing.T) {
	bubble(t, &mockdiscord.Options{Guilds: 2, HeartbeatInterval: hour}, func(t *testing.T, e *env) {
		c := dialGateway(t, e.s, "/gateway?v=10&encoding=json&compress=zstd-stream")
		hello := c.expect(10)
		wantEqual(t, "binary", hello.binary, true)
		wantEqual(t, "messages of HELLO", hello.messages, 1)
		// Discord's frame header: no checksum, no content size, a 256 KiB
		// window (descriptor 0x40).
		wantEqual(t, "frame header", c.zall[:6], []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x40})
		d := identifyData(e.s, 0, 1, mockdiscord.IntentGuilds)
		d["compress"] = true // ignored: transport compression wins
		c.send(op(2, d))
		c.ready()
		c.skipGuildCreates(2)
		// A split payload is still one websocket message, in fragments.
		inject(t, e, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultSplit, Parts: 3}, 1)
		_, _ = e.s.Stream(0, 2, "N")
		p := c.dispatch("N")
		wantEqual(t, "messages of the split payload", p.messages, 1)
		wantEqual(t, "frames of the split payload", p.frames, 3)
		p = c.dispatch("N")
		wantEqual(t, "frames of the next payload", p.frames, 1)
		wantEqual(t, "binary", p.binary, true)
		c.heartbeat()
		c.expect(11)
	})
}

func TestGatewayPayloadCompression(t *testing.T) {
	bubble(t, &mockdiscord.Options{Guilds: 1, HeartbeatInterval: hour}, func(t *testing.T, e *env) {
		c := dialGateway(t, e.s, "/gateway?v=10&encoding=json")
		wantEqual(t, "HELLO binary", c.expect(10).binary, false)
		d := identifyData(e.s, 0, 1, mockdiscord.IntentGuilds)
		d["compress"] = true
		c.send(op(2, d))
		p := c.dispatch("READY")
		wantEqual(t, "READY binary", p.binary, true)
		c.dispatch("GUILD_CREATE")
		c.heartbeat()
		wantEqual(t, "ACK binary", c.expect(11).binary, false)
		inject(t, e, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultSplit, Parts: 4}, 1)
		_, _ = e.s.Stream(0, 1, "N")
		p = c.dispatch("N")
		wantEqual(t, "fragments", p.frames, 4)
		wantEqual(t, "messages", p.messages, 1)
		wantEqual(t, "compress observed", obsOf(e.s, mockdiscord.ObserveIdentify)[0].Compress, true)
	})
	bubble(t, &mockdiscord.Options{Guilds: 1, PayloadCompressThreshold: 1 << 20}, func(t *testing.T, e *env) {
		c := dialGateway(t, e.s, "/gateway?v=10&encoding=json")
		c.expect(10)
		d := identifyData(e.s, 0, 1, mockdiscord.IntentGuilds)
		d["compress"] = true
		c.send(op(2, d))
		wantEqual(t, "small READY binary", c.dispatch("READY").binary, false)
	})
}

func TestGatewayFragmentedClientMessage(t *testing.T) {
	bubble(t, nil, func(t *testing.T, e *env) {
		c := dialGateway(t, e.s, "/gateway?v=10")
		c.expect(10)
		msg := []byte(`{"op":1,"d":null}`)
		for i, part := range [][]byte{msg[:5], msg[5:9], msg[9:]} {
			opc := ws.OpText
			if i > 0 {
				opc = ws.OpContinuation
			}
			f := ws.NewFrame(opc, i == 2, bytes.Clone(part))
			if err := ws.WriteFrame(c.conn, ws.MaskFrame(f)); err != nil {
				t.Fatal(err)
			}
		}
		c.expect(11)
	})
}
