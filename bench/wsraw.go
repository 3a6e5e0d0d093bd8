package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
	"github.com/cordkit/cordkit/protocols"
)

// rawConn is a bare gobwas/ws client of the mock's gateway: it sends
// IDENTIFY and reads frames, and nothing else (no heartbeat, no
// inflating, no JSON). It measures the mock and the transport: as the
// floor reader of the gateway scenario, and as the baseline of the idle
// scenario, where it holds nothing but its net.Conn.
type rawConn struct {
	nc net.Conn
	r  io.Reader
}

// dialRaw connects, reads HELLO, identifies as shard [id, count] and
// reads READY (the next frame: the mock sends nothing else before it, and
// the world of these scenarios has no guilds, so no GUILD_CREATE
// follows).
func dialRaw(ctx context.Context, srv *mockdiscord.Server, mode protocols.Compression, id, count int, intents protocols.Intents) (*rawConn, error) {
	u := srv.GatewayURL() + "?v=10&encoding=json"
	payload := mode == protocols.CompressZlibPayload
	if t := transport(mode); t != protocols.CompressNone {
		u += "&compress=" + t.String()
	}
	d := ws.Dialer{Timeout: 10 * time.Second}
	nc, br, _, err := d.Dial(ctx, u)
	if err != nil {
		return nil, err
	}
	c := &rawConn{nc: nc, r: nc}
	if br != nil {
		c.r = io.MultiReader(br, nc)
	}
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.frame(nil); err != nil { // HELLO
		_ = nc.Close()
		return nil, fmt.Errorf("HELLO: %w", err)
	}
	ident, _ := json.Marshal(map[string]any{"op": 2, "d": map[string]any{
		"token": srv.Token(), "intents": uint64(intents), "compress": payload, "large_threshold": 250, "shard": []int{id, count},
		"properties": map[string]string{"os": "linux", "browser": "bench", "device": "bench"},
	}})
	if err := wsutil.WriteClientText(nc, ident); err != nil {
		_ = nc.Close()
		return nil, err
	}
	if _, err := c.frame(nil); err != nil { // READY
		_ = nc.Close()
		return nil, fmt.Errorf("READY: %w", err)
	}
	_ = nc.SetDeadline(time.Time{})
	c.r = nc // nothing is buffered: the mock sent HELLO, then READY after our IDENTIFY
	return c, nil
}

// frame reads one whole message (all its fragments), into buf when it
// fits, and returns its length. Control frames are skipped.
func (c *rawConn) frame(buf []byte) (int, error) {
	n := 0
	for {
		h, err := ws.ReadHeader(c.r)
		if err != nil {
			return n, err
		}
		if h.OpCode.IsControl() {
			if _, err := io.CopyN(io.Discard, c.r, h.Length); err != nil {
				return n, err
			}
			if h.OpCode == ws.OpClose {
				return n, io.EOF
			}
			continue
		}
		l := int(h.Length)
		if l <= len(buf)-n {
			_, err = io.ReadFull(c.r, buf[n:n+l])
		} else {
			_, err = io.CopyN(io.Discard, c.r, h.Length)
		}
		if err != nil {
			return n, err
		}
		n += l
		if h.Fin {
			return n, nil
		}
	}
}

func (c *rawConn) close() { _ = c.nc.Close() }

// readFrames reads n messages through a 64 KiB buffered reader, calling
// saw for each.
func (c *rawConn) readFrames(n int, saw func(size int)) error {
	c.r = bufio.NewReaderSize(c.nc, 64<<10)
	buf := make([]byte, 64<<10)
	for range n {
		size, err := c.frame(buf)
		if err != nil {
			return err
		}
		saw(size)
	}
	return nil
}
