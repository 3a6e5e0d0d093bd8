package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
	"github.com/cordkit/cordkit/protocols"
)

// ---- idle: memory and goroutines of many connected, idle shards ----

// idleLibs are the idle scenario's rows. The bare reader is the baseline:
// the mock's own cost per connection, subtracted from the others.
var idleLibs = []gwLib{
	{"cordkit reference", cordkitRefModes, cordkitGateway(cordkitRef, false)},
	{"cordkit fast", cordkitFastModes, cordkitGateway(cordkitFast, false)},
	{"discordgo", peerModes, discordgoGateway},
	{"disgo", peerModes, disgoGateway},
}

const idleBaselineName = "mock per connection (bare gobwas/ws client, subtracted)"

// idleOptions: identify limits out of the way (max_concurrency n, no
// identify spacing, session starts to spare), no guilds (READY only), no
// REST limits (discordgo asks GET /gateway per shard), no replay buffer,
// and a heartbeat interval of 10 minutes, so that shards stay idle while
// measured (discordgo still sends its first heartbeat at once).
func idleOptions(n int) *mockdiscord.Options {
	return &mockdiscord.Options{
		Guilds: -1, DisableRateLimits: true, InvalidRequestLimit: -1, ReplayBuffer: -1,
		HeartbeatInterval: 10 * time.Minute, IdentifyInterval: -1, MaxConcurrency: n, Shards: n,
		SessionStartTotal: 10*n + 100,
	}
}

type idleRow struct {
	lib, mode         string
	shards            int
	heap, stack       float64 // bytes per shard, medians, mock subtracted
	goroutines        float64 // per shard, mock subtracted
	rawHeap, rawStack float64 // before subtraction
	rawGoroutines     float64
	spread            float64 // half the range of heap + stack over the runs, before subtraction
	baseline          bool
	baselineFor       string // the baseline subtracted (for payload modes: none)
	connectSeconds    float64
}

// idleMeasure is one run: per-connection deltas.
type idleMeasure struct {
	heap, stack, goroutines, connect float64
	spread                           float64 // half the range of heap + stack over the runs
}

func benchIdle(cfg config) ([]idleRow, error) {
	n := cfg.shards
	// Baselines: bare clients, one per transport (the mock keeps a zlib
	// or zstd compressor per transport-compressed connection). Payload
	// mode costs the mock nothing per connection, so it shares the
	// uncompressed one. Runs are interleaved (run 1 of every row, then
	// run 2, ...), as in the gateway scenario.
	type key struct {
		lib  gwLib
		mode protocols.Compression
	}
	var keys []key
	for _, mode := range idleBaselines() {
		keys = append(keys, key{gwLib{name: idleBaselineName, connect: rawGateway}, mode})
	}
	for _, lib := range idleLibs {
		for _, mode := range lib.modes {
			keys = append(keys, key{lib, mode})
		}
	}
	runs := make([][]idleMeasure, len(keys))
	for range cfg.runs {
		for i, k := range keys {
			m, err := idleChild(n, k.lib, k.mode, cfg.idleSettle)
			if err != nil {
				return nil, fmt.Errorf("idle %s, %s: %w", k.lib.name, k.mode, err)
			}
			runs[i] = append(runs[i], m)
		}
	}
	base := map[protocols.Compression]idleMeasure{}
	var rows []idleRow
	for i, k := range keys {
		m := medians(runs[i])
		row := idleRow{lib: k.lib.name, mode: k.mode.String(), shards: n, heap: m.heap, stack: m.stack, goroutines: m.goroutines,
			rawHeap: m.heap, rawStack: m.stack, rawGoroutines: m.goroutines, spread: m.spread, connectSeconds: m.connect}
		if k.lib.name == idleBaselineName {
			base[k.mode] = m
			row.baseline = true
		} else {
			b := base[transport(k.mode)]
			row.baselineFor = transport(k.mode).String()
			row.heap, row.stack, row.goroutines = m.heap-b.heap, m.stack-b.stack, m.goroutines-b.goroutines
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// idleChildEnv, when set in the environment, makes the bench binary (or
// the test binary, see TestMain) run one idle measurement and print it as
// JSON instead of doing anything else: "library|mode|shards|pause".
const idleChildEnv = "CORDKIT_BENCH_IDLE_CHILD"

// idleChild runs idleOnce in a fresh process (this executable again),
// so that no run sees memory an earlier run of the same process left
// behind: with in-process runs, a row following a transport-compressed
// row (whose mock keeps hundreds of MB of compressors) sometimes read a
// negative heap delta, memory of the previous run being freed during
// the measurement.
func idleChild(n int, lib gwLib, mode protocols.Compression, pause time.Duration) (idleMeasure, error) {
	exe, err := os.Executable()
	if err != nil {
		return idleMeasure{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), idleChildEnv+"="+strings.Join([]string{lib.name, mode.String(), strconv.Itoa(n), pause.String()}, "|"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return idleMeasure{}, fmt.Errorf("idle child: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var r idleResult
	if err := json.Unmarshal(out, &r); err != nil {
		return idleMeasure{}, fmt.Errorf("idle child output %q: %w", out, err)
	}
	return idleMeasure{heap: r.Heap, stack: r.Stack, goroutines: r.Goroutines, connect: r.Connect}, nil
}

type idleResult struct {
	Heap, Stack, Goroutines, Connect float64
}

// runIdleChild is the child's side: it reports whether it was asked to
// run, and then has printed the result (or the error, on stderr, with a
// failing exit status).
func runIdleChild() (ran bool, err error) {
	spec := os.Getenv(idleChildEnv)
	if spec == "" {
		return false, nil
	}
	parts := strings.Split(spec, "|")
	if len(parts) != 4 {
		return true, fmt.Errorf("bad %s %q", idleChildEnv, spec)
	}
	var lib *gwLib
	if parts[0] == idleBaselineName {
		lib = &gwLib{name: idleBaselineName, connect: rawGateway}
	}
	for i := range idleLibs {
		if idleLibs[i].name == parts[0] {
			lib = &idleLibs[i]
		}
	}
	mode := protocols.Compression(-1)
	for _, m := range []protocols.Compression{protocols.CompressNone, protocols.CompressZlibStream, protocols.CompressZlibPayload, protocols.CompressZstdStream} {
		if m.String() == parts[1] {
			mode = m
		}
	}
	n, nerr := strconv.Atoi(parts[2])
	pause, perr := time.ParseDuration(parts[3])
	if lib == nil || mode < 0 || nerr != nil || perr != nil {
		return true, errors.New("bad idle child spec " + strconv.Quote(spec))
	}
	m, err := idleOnce(n, *lib, mode, pause)
	if err != nil {
		return true, err
	}
	return true, json.NewEncoder(os.Stdout).Encode(idleResult{Heap: m.heap, Stack: m.stack, Goroutines: m.goroutines, Connect: m.connect})
}

// idleBaselines: the transports of the idle rows' modes.
func idleBaselines() []protocols.Compression {
	var out []protocols.Compression
	for _, m := range allModes(idleLibs) {
		if t := transport(m); !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// medians returns the medians of runs, and half the range of heap +
// stack.
func medians(runs []idleMeasure) idleMeasure {
	var heap, stack, gs, conn, total []float64
	for _, m := range runs {
		heap, stack, gs, conn = append(heap, m.heap), append(stack, m.stack), append(gs, m.goroutines), append(conn, m.connect)
		total = append(total, m.heap+m.stack)
	}
	return idleMeasure{heap: median(heap), stack: median(stack), goroutines: median(gs), connect: median(conn),
		spread: (slices.Max(total) - slices.Min(total)) / 2}
}

// settle runs the GC until the heap in use stops shrinking: objects
// kept alive by a finalizer are freed only by a cycle after the
// finalizer goroutine ran, so two back-to-back cycles can leave an
// earlier run's connections (and the buffers they reach) counted.
func settle(ms *runtime.MemStats) {
	runtime.GC()
	runtime.ReadMemStats(ms)
	for range 10 {
		time.Sleep(20 * time.Millisecond) // let finalizers run
		prev := ms.HeapInuse
		runtime.GC()
		runtime.ReadMemStats(ms)
		if ms.HeapInuse >= prev-prev/200 {
			return
		}
	}
}

// idleOnce (in a fresh process, see idleChild): a fresh mock, a baseline
// (heap in use after GC, stacks in use, goroutines), n shards connected
// and READY, a pause (3 s by default: heartbeat loops start after HELLO,
// and cordkit's dispatching goroutine ends after a second without
// events), the same readings again; then everything is closed.
func idleOnce(n int, lib gwLib, mode protocols.Compression, pause time.Duration) (idleMeasure, error) {
	srv, err := startMock(idleOptions(n))
	if err != nil {
		return idleMeasure{}, err
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ids := make([]int, n)
	for i := range ids {
		ids[i] = i
	}

	var before, after runtime.MemStats
	settle(&before)
	g0 := runtime.NumGoroutine()
	start := time.Now()
	stop, err := lib.connect(ctx, srv, mode, ids, n, nil)
	if err != nil {
		return idleMeasure{}, err
	}
	connect := time.Since(start)
	time.Sleep(pause)
	if err := checkSessions(srv, n); err != nil {
		stop()
		return idleMeasure{}, err
	}
	settle(&after)
	g1 := runtime.NumGoroutine()
	stop()
	fn := float64(n)
	return idleMeasure{
		heap:       (float64(after.HeapInuse) - float64(before.HeapInuse)) / fn,
		stack:      (float64(after.StackInuse) - float64(before.StackInuse)) / fn,
		goroutines: float64(g1-g0) / fn,
		connect:    connect.Seconds(),
	}, nil
}

// checkSessions: the mock serves exactly n connected sessions, one per
// shard.
func checkSessions(srv *mockdiscord.Server, n int) error {
	seen := map[int]bool{}
	for _, s := range srv.Sessions() {
		if s.Connected {
			seen[s.Shard] = true
		}
	}
	if len(seen) != n {
		return fmt.Errorf("%d of %d shards connected and READY", len(seen), n)
	}
	if v := srv.GatewayViolations(); len(v) > 0 {
		return fmt.Errorf("mock violations: %v", v[0])
	}
	return nil
}

func printIdle(w io.Writer, cfg config, rows []idleRow) {
	fmt.Fprintf(w, "### Idle shards (%d shards connected and READY, no guilds, no traffic, measured %v after the last READY; medians of %d run(s))\n\n", cfg.shards, cfg.idleSettle, cfg.runs)
	fmt.Fprintln(w, "Each measurement runs in a fresh child process (this binary again), so that no run sees memory an earlier one left. Per shard: heap = runtime.MemStats HeapInuse after runtime.GC() (repeated, with pauses for finalizers, until it stops shrinking), minus the same reading taken before connecting; stack = StackInuse, likewise; goroutines = runtime.NumGoroutine() delta. The mock runs in the same process, so its per-connection cost is measured the same way with bare gobwas/ws clients that only dial, read HELLO, IDENTIFY, read READY and then hold the socket (no goroutine, no buffer), and subtracted from every library row of the same transport (zlib-stream and zstd-stream rows: the baseline of that transport, as the mock keeps a compressor per such connection; the rest, per-payload zlib included: the uncompressed one). Library rows are therefore the library's own cost beyond one bare TCP socket. \"connect\" is the time from the first dial until all shards were READY.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| library | compression | heap/shard | stack/shard | total/shard | ± | goroutines/shard | before subtraction (heap + stack, goroutines) | connect |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %.2f | %s, %.2f | %.2fs |\n",
			r.lib, r.mode, kib(r.heap), kib(r.stack), kib(r.heap+r.stack), kib(r.spread), r.goroutines, kib(r.rawHeap+r.rawStack), r.rawGoroutines, r.connectSeconds)
	}
	fmt.Fprintln(w)
}

func kib(b float64) string { return fmt.Sprintf("%.1f KiB", b/1024) }
