package fast_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/stretchr/testify/require"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
	reference "github.com/cordkit/cordkit/impl/default"
	"github.com/cordkit/cordkit/impl/fast"
	"github.com/cordkit/cordkit/protocols"
)

// dialers are the Dialers the benchmarks compare.
var dialers = []struct {
	name string
	d    protocols.Dialer
}{
	{"Reference", &reference.Dialer{}},
	{"Fast", &fast.Dialer{}},
}

// idleConns is how many connections the idle measurement holds.
const idleConns = 200

// mockEnv, when set, makes TestIdleMockServer serve: it is the child
// process of measureIdle.
const mockEnv = "CORDKIT_IDLE_MOCK"

// TestIdleMockServer is not a test: run by measureIdle in a child process
// (the same test binary, with mockEnv set), it starts a mock Discord on
// 127.0.0.1, prints its gateway URL and serves until stdin closes. It
// skips otherwise.
func TestIdleMockServer(t *testing.T) {
	if os.Getenv(mockEnv) == "" {
		t.Skip("the child process of the idle-memory measurement")
	}
	srv := mockdiscord.New(&mockdiscord.Options{HeartbeatInterval: time.Hour, IdentifyInterval: -1})
	defer srv.Close()
	require.NoError(t, srv.Start("127.0.0.1:0"))
	fmt.Println(srv.GatewayURL() + "?v=10&encoding=json")
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// startMockProcess runs the mock in a child process and returns its
// gateway URL; the child ends with the test.
func startMockProcess(tb testing.TB) string {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleMockServer$", "-test.count=1")
	cmd.Env = append(os.Environ(), mockEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(tb, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(tb, err)
	require.NoError(tb, cmd.Start())
	tb.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(tb, err, "the mock process printed no URL")
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return strings.TrimSpace(line)
}

// inUse is the memory the runtime holds for live objects and goroutine
// stacks, after two collections (the second one empties the sync.Pools'
// victim caches and shrinks stacks that shrank).
func inUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// measureIdle opens n connections with d to the mock at url, has each read
// HELLO and a few more messages (IDENTIFY → READY, then heartbeats →
// ACKs), then leaves each with a goroutine blocked in Read, as a shard's
// reader is; it returns the memory this process holds per connection.
//
// The mock runs in another process, so everything this process gains is
// the client's: the Conn with its buffers, the net.Conn and the reader
// goroutine's stack. Only the test's own bookkeeping (a slice and a
// channel) is counted with it.
func measureIdle(tb testing.TB, d protocols.Dialer, n int) float64 {
	tb.Helper()
	// A mock of its own: the mock's session_start_limit allows 1000
	// identifies.
	url := startMockProcess(tb)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conns := make([]protocols.Conn, n)
	var wg sync.WaitGroup
	ready := make(chan error, n)
	before := inUse()
	for i := range conns {
		c, err := d.Dial(ctx, url)
		require.NoError(tb, err)
		conns[i] = c
		wg.Go(func() {
			ready <- greet(ctx, c, i, n)
			for {
				if _, _, err := c.Read(ctx); err != nil {
					return
				}
			}
		})
	}
	for range n {
		require.NoError(tb, <-ready)
	}
	time.Sleep(50 * time.Millisecond) // let every reader block again
	after := inUse()
	for _, c := range conns {
		_ = c.Close(protocols.CloseNormal, "")
	}
	wg.Wait()
	return (float64(after) - float64(before)) / float64(n)
}

// greet reads HELLO, identifies as shard i of n, reads up to READY, and
// does three heartbeats.
func greet(ctx context.Context, c protocols.Conn, i, n int) error {
	next := func(op string) error {
		for {
			_, msg, err := c.Read(ctx)
			if err != nil {
				return err
			}
			if bytes.Contains(msg, []byte(op)) {
				return nil
			}
		}
	}
	if err := next(`"op":10`); err != nil {
		return fmt.Errorf("HELLO: %w", err)
	}
	identify := fmt.Sprintf(`{"op":2,"d":{"token":"Bot %s","intents":513,"properties":{"os":"linux","browser":"cordkit","device":"cordkit"},"shard":[%d,%d]}}`, mockdiscord.DefaultToken, i, n)
	if err := c.Write(ctx, protocols.MessageText, []byte(identify)); err != nil {
		return err
	}
	if err := next(`"READY"`); err != nil {
		return fmt.Errorf("READY: %w", err)
	}
	for range 3 {
		if err := c.Write(ctx, protocols.MessageText, []byte(`{"op":1,"d":1}`)); err != nil {
			return err
		}
		if err := next(`"op":11`); err != nil {
			return fmt.Errorf("heartbeat ACK: %w", err)
		}
	}
	return nil
}

// TestIdleMemory checks the fast Dialer's target: at most 8 KiB per idle
// connection, everything included, and less than the reference's.
func TestIdleMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens hundreds of connections")
	}
	got := map[string]float64{}
	for _, dd := range dialers {
		got[dd.name] = measureIdle(t, dd.d, idleConns)
		t.Logf("%s Dialer: %.0f bytes per idle connection (heap+stack, %d connections)", dd.name, got[dd.name], idleConns)
	}
	if raceEnabled {
		t.Skip("memory targets are checked without -race")
	}
	if got["Fast"] > 8<<10 {
		t.Errorf("fast Dialer: %.0f bytes per idle connection, want at most 8 KiB", got["Fast"])
	}
	if got["Fast"] >= got["Reference"] {
		t.Errorf("fast Dialer: %.0f bytes per idle connection, want less than the reference's %.0f", got["Fast"], got["Reference"])
	}
}

// BenchmarkDialerIdle reports the bytes an idle connection holds (idle-B/conn).
func BenchmarkDialerIdle(b *testing.B) {
	for _, dd := range dialers {
		b.Run(dd.name, func(b *testing.B) {
			var sum float64
			runs := 0
			for b.Loop() {
				sum += measureIdle(b, dd.d, idleConns)
				runs++
			}
			b.ReportMetric(sum/float64(runs), "idle-B/conn")
		})
	}
}

// streamServer serves one websocket connection on loopback that sends
// frame over and over until the client goes away, and returns its URL.
func streamServer(b testing.TB, payload []byte) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	var frames bytes.Buffer
	for frames.Len() < 256<<10 {
		require.NoError(b, ws.WriteFrame(&frames, ws.NewTextFrame(payload)))
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		if _, err := (ws.Upgrader{}).Upgrade(nc); err != nil {
			return
		}
		go func() { // stop at the client's close frame
			for {
				h, err := ws.ReadHeader(nc)
				if err == nil {
					_, err = io.CopyN(io.Discard, nc, h.Length)
				}
				if err != nil || h.OpCode == ws.OpClose {
					_ = nc.Close()
					return
				}
			}
		}()
		for {
			if _, err := nc.Write(frames.Bytes()); err != nil {
				return
			}
		}
	}()
	b.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	return "ws://" + ln.Addr().String() + "/"
}

// BenchmarkDialerRead measures Read: one message per op, with the same
// ctx each time, as a shard's reader calls it.
func BenchmarkDialerRead(b *testing.B) {
	for _, size := range []int{256, 4 << 10, 64 << 10} {
		payload := bytes.Repeat([]byte("x"), size)
		for _, dd := range dialers {
			b.Run(fmt.Sprintf("%s/%dB", dd.name, size), func(b *testing.B) {
				url := streamServer(b, payload)
				ctx, cancel := context.WithCancel(b.Context())
				defer cancel()
				c, err := dd.d.Dial(ctx, url)
				require.NoError(b, err)
				defer func() { _ = c.Close(protocols.CloseNormal, "") }()
				for range 100 { // warm up: buffers, pools, the ctx watch
					if _, _, err := c.Read(ctx); err != nil {
						b.Fatal(err)
					}
				}
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					if _, msg, err := c.Read(ctx); err != nil || len(msg) != size {
						b.Fatalf("Read: %d bytes, %v", len(msg), err)
					}
				}
			})
		}
	}
}

// TestFastReadAllocatesNothing checks that, in steady state, the fast
// Dialer's Read allocates nothing per message.
func TestFastReadAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	for _, size := range []int{256, 64 << 10} {
		url := streamServer(t, bytes.Repeat([]byte("x"), size))
		ctx, cancel := context.WithCancel(t.Context())
		c, err := (&fast.Dialer{}).Dial(ctx, url)
		require.NoError(t, err)
		read := func() {
			if _, msg, err := c.Read(ctx); err != nil || len(msg) != size {
				t.Fatalf("Read: %d bytes, %v", len(msg), err)
			}
		}
		for range 100 {
			read()
		}
		if a := testing.AllocsPerRun(1000, read); a != 0 {
			t.Errorf("fast Dialer Read of %d bytes: %.2f allocs per message, want 0", size, a)
		}
		_ = c.Close(protocols.CloseNormal, "")
		cancel()
	}
}
