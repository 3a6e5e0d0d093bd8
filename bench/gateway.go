package main

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
	"github.com/cordkit/cordkit/impl/fast"
	"github.com/cordkit/cordkit/protocols"
)

// ---- gateway: dispatch throughput of one shard ----

// gwLibs are the gateway scenario's rows, in table order. The frames-only
// reader is the floor of what the mock and the websocket deliver.
var gwLibs = func() []gwLib {
	libs := []gwLib{
		{"cordkit reference, raw", cordkitRefModes, cordkitGateway(cordkitRef, false)},
		{"cordkit reference, typed", cordkitRefModes, cordkitGateway(cordkitRef, true)},
		{"cordkit fast, raw", cordkitFastModes, cordkitGateway(cordkitFast, false)},
		{"cordkit fast, typed", cordkitFastModes, cordkitGateway(cordkitFast, true)},
		{"discordgo (typed)", peerModes, discordgoGateway},
		{"disgo (typed)", peerModes, disgoGateway},
	}
	return append(libs, gwLib{rawFloorName, allModes(libs), rawGateway})
}()

const rawFloorName = "mock + websocket, frames only"

// gwOptions: one shard, no guilds of the mock's own (the mix brings its
// GUILD_CREATEs), no REST limits (discordgo asks GET /gateway), no replay
// buffer (nobody resumes; it would only keep the stream alive in the
// heap), and a heartbeat interval no run reaches.
func gwOptions() *mockdiscord.Options {
	return &mockdiscord.Options{
		Guilds: -1, DisableRateLimits: true, InvalidRequestLimit: -1, ReplayBuffer: -1,
		HeartbeatInterval: 10 * time.Minute, IdentifyInterval: -1, MaxConcurrency: 1,
	}
}

// gwData is the mix and what the mock makes of it.
type gwData struct {
	warm       []gwEvent // untimed, before events: one of each kind, then the start of the mix
	events     []gwEvent
	frames     [][]byte // each payload as the mock sends it, seq 2.. (READY is 1)
	jsonBytes  int      // total of frames
	stream     []byte   // frames through one zlib-stream context, flushed after each
	zstream    []byte   // frames through one zstd-stream frame, as the mock makes it
	payloads   [][]byte // frames zlib-compressed one by one
	payloadLen int
	counts     map[string]int
}

var (
	gwDataCache map[int]*gwData
	gwDataMu    sync.Mutex
)

func loadGWData(n int) *gwData {
	gwDataMu.Lock()
	defer gwDataMu.Unlock()
	if d, ok := gwDataCache[n]; ok {
		return d
	}
	d := &gwData{events: genEvents(n), counts: map[string]int{}}
	for _, e := range d.events {
		if !json.Valid(e.data) { // the mock is told they are (DispatchTrustedToShard)
			panic("bench: generated invalid JSON for " + e.name)
		}
	}
	seen := map[string]bool{}
	for _, e := range d.events {
		if !seen[e.name] {
			seen[e.name] = true
			d.warm = append(d.warm, e)
		}
	}
	d.warm = append(d.warm, d.events[:min(len(d.events), 200)]...)
	var zbuf, zsbuf bytes.Buffer
	zw := zlib.NewWriter(&zbuf)
	zs, err := zstd.NewWriter(&zsbuf, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(256<<10),
		zstd.WithEncoderCRC(false), zstd.WithLowerEncoderMem(true))
	if err != nil {
		panic(err)
	}
	for i, e := range d.events {
		d.counts[e.name]++
		f := envelopeLike(e.data, int64(len(d.warm)+i+2), e.name)
		d.frames = append(d.frames, f)
		d.jsonBytes += len(f)
		_, _ = zw.Write(f)
		_ = zw.Flush()
		_, _ = zs.Write(f)
		_ = zs.Flush()
		var pb bytes.Buffer
		pw := zlib.NewWriter(&pb)
		_, _ = pw.Write(f)
		_ = pw.Close()
		d.payloads = append(d.payloads, pb.Bytes())
		d.payloadLen += pb.Len()
	}
	d.stream, d.zstream = zbuf.Bytes(), zsbuf.Bytes()
	if gwDataCache == nil {
		gwDataCache = map[int]*gwData{}
	}
	gwDataCache[n] = d
	return d
}

// envelopeLike renders a dispatch as the mock does.
func envelopeLike(d []byte, seq int64, t string) []byte {
	q, _ := json.Marshal(t)
	b := make([]byte, 0, len(d)+48)
	b = append(b, `{"t":`...)
	b = append(b, q...)
	b = append(b, `,"s":`...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, `,"op":0,"d":`...)
	b = append(b, d...)
	return append(b, '}')
}

type gwRow struct {
	lib, mode          string
	events             int
	evPerSec, mbPerSec float64 // medians
	allocsPerEv        float64
	bytesPerEv         float64
}

// gwFloor is one offline floor: the client-side work alone, over the
// pre-generated frames, without mock or socket.
type gwFloor struct {
	name                string
	evPerSec, mbPerSec  float64
	allocsPerEv, bPerEv float64
}

func benchGateway(cfg config) ([]gwRow, []gwFloor, []decodeRow, error) {
	data := loadGWData(cfg.events)
	// Runs are interleaved (run 1 of every row, then run 2, ...), so that
	// a busy spell of the machine spreads over the rows instead of
	// landing on one library's runs.
	type key struct {
		lib  gwLib
		mode protocols.Compression
	}
	var keys []key
	for _, lib := range gwLibs {
		for _, mode := range lib.modes {
			keys = append(keys, key{lib, mode})
		}
	}
	eps, mbs := make([][]float64, len(keys)), make([][]float64, len(keys))
	allocs, bytes := make([][]float64, len(keys)), make([][]float64, len(keys))
	for range cfg.runs {
		for i, k := range keys {
			r, err := gatewayOnce(data, k.lib, k.mode)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("gateway %s, %s: %w", k.lib.name, k.mode, err)
			}
			eps[i], mbs[i] = append(eps[i], r.evPerSec), append(mbs[i], r.mbPerSec)
			allocs[i], bytes[i] = append(allocs[i], r.allocsPerEv), append(bytes[i], r.bytesPerEv)
		}
	}
	var rows []gwRow
	for i, k := range keys {
		rows = append(rows, gwRow{lib: k.lib.name, mode: k.mode.String(), events: len(data.events),
			evPerSec: median(eps[i]), mbPerSec: median(mbs[i]), allocsPerEv: median(allocs[i]), bytesPerEv: median(bytes[i])})
	}
	floors := gatewayFloors(data, cfg.runs)
	decode, err := benchDecode(data, cfg.runs)
	if err != nil {
		return nil, nil, nil, err
	}
	return rows, floors, decode, nil
}

// gatewayOnce runs one library in one mode against a fresh mock: connect
// one shard, wait for READY, dispatch the warm-up events and wait for
// them (JIT-compiled decoders, grown buffers), then (timed) dispatch the
// whole mix to the shard, from the first dispatch until the handler has
// counted the last event. Every event must arrive. The events go through
// DispatchTrustedToShard: DispatchToShard would run json.Valid over every
// payload, in the timed part, on the CPUs the client needs (it was half
// of the process's CPU time with cordkit fast).
func gatewayOnce(data *gwData, lib gwLib, mode protocols.Compression) (gwRow, error) {
	srv, err := startMock(gwOptions())
	if err != nil {
		return gwRow{}, err
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sink := newSink(len(data.warm), len(data.events))
	dgBefore, _ := dgErrorCount()
	stop, err := lib.connect(ctx, srv, mode, []int{0}, 1, sink)
	if err != nil {
		return gwRow{}, err
	}
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()

	dispatch := func(events []gwEvent) error {
		for _, e := range events {
			n, err := srv.DispatchTrustedToShard(0, e.name, e.data)
			if err != nil {
				return err
			}
			if n != 1 {
				return fmt.Errorf("DispatchTrustedToShard reached %d sessions, want 1", n)
			}
		}
		return nil
	}
	if err := dispatch(data.warm); err != nil {
		return gwRow{}, err
	}
	select {
	case <-sink.warmed:
	case <-ctx.Done():
		return gwRow{}, fmt.Errorf("received %d of %d warm-up events before the timeout (%w)", sink.got.Load(), sink.warm, sink.err())
	}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	if err := dispatch(data.events); err != nil {
		return gwRow{}, err
	}
	select {
	case <-sink.done:
	case <-ctx.Done():
		return gwRow{}, fmt.Errorf("received %d of %d events before the timeout (%w)", sink.got.Load()-sink.warm, sink.want-sink.warm, sink.err())
	}
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	stop()
	stopped = true
	if err := sink.err(); err != nil {
		return gwRow{}, err
	}
	if n, first := dgErrorCount(); n > dgBefore {
		return gwRow{}, fmt.Errorf("discordgo logged %d decode errors, first: %s", n-dgBefore, first)
	}
	if got := sink.got.Load(); got != sink.want {
		return gwRow{}, fmt.Errorf("received %d of %d events", got-sink.warm, sink.want-sink.warm)
	}
	n := float64(len(data.events))
	return gwRow{
		evPerSec: n / elapsed.Seconds(), mbPerSec: float64(data.jsonBytes) / elapsed.Seconds() / 1e6,
		allocsPerEv: float64(after.Mallocs-before.Mallocs) / n, bytesPerEv: float64(after.TotalAlloc-before.TotalAlloc) / n,
	}, nil
}

// gatewayFloors times the client-side work alone over the pre-generated
// frames: scanning each payload (fast's DecodeEnvelope, which validates
// all of it), inflating the zlib-stream, and both; and inflating the
// per-payload zlib frames (one reused reader).
func gatewayFloors(data *gwData, runs int) []gwFloor {
	codec := fast.Codec{}
	buf := make([]byte, 0, 1<<20)
	scan := func(f []byte) {
		var env protocols.Envelope
		if err := codec.DecodeEnvelope(f, &env); err != nil || env.Op != 0 {
			panic(fmt.Sprintf("bench: scanning a generated frame: %v", err))
		}
	}
	readEach := func(zr io.Reader, each func([]byte)) {
		for i, f := range data.frames {
			if cap(buf) < len(f) {
				buf = make([]byte, 0, len(f))
			}
			b := buf[:len(f)]
			if _, err := io.ReadFull(zr, b); err != nil {
				panic(fmt.Sprintf("bench: inflating message %d: %v", i, err))
			}
			if each != nil {
				each(b)
			}
		}
	}
	inflateStream := func(each func([]byte)) {
		zr, err := zlib.NewReader(bytes.NewReader(data.stream))
		if err != nil {
			panic(err)
		}
		readEach(zr, each)
	}
	inflateZstd := func(each func([]byte)) {
		zr, err := zstd.NewReader(bytes.NewReader(data.zstream), zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			panic(err)
		}
		defer zr.Close()
		readEach(zr, each)
	}
	var zr io.ReadCloser
	inflatePayloads := func() {
		for _, p := range data.payloads {
			var err error
			if zr == nil {
				zr, err = zlib.NewReader(bytes.NewReader(p))
			} else {
				err = zr.(zlib.Resetter).Reset(bytes.NewReader(p), nil)
			}
			if err != nil {
				panic(err)
			}
			b := bytes.NewBuffer(buf[:0])
			if _, err := b.ReadFrom(zr); err != nil {
				panic(err)
			}
		}
	}
	floors := []struct {
		name string
		f    func()
	}{
		{"scan (fast.Codec DecodeEnvelope), uncompressed", func() {
			for _, f := range data.frames {
				scan(f)
			}
		}},
		{"inflate zlib-stream (compress/zlib, one context)", func() { inflateStream(nil) }},
		{"inflate zlib-stream + scan", func() { inflateStream(scan) }},
		{"decompress zstd-stream (klauspost/compress/zstd, one stream)", func() { inflateZstd(nil) }},
		{"decompress zstd-stream + scan", func() { inflateZstd(scan) }},
		{"inflate zlib payloads (compress/zlib, one reused reader)", inflatePayloads},
	}
	var out []gwFloor
	n := float64(len(data.frames))
	for _, fl := range floors {
		fl.f() // warm-up
		var eps, allocs, bs []float64
		for range runs {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			fl.f()
			el := time.Since(start)
			runtime.ReadMemStats(&after)
			eps = append(eps, n/el.Seconds())
			allocs = append(allocs, float64(after.Mallocs-before.Mallocs)/n)
			bs = append(bs, float64(after.TotalAlloc-before.TotalAlloc)/n)
		}
		e := median(eps)
		out = append(out, gwFloor{name: fl.name, evPerSec: e, mbPerSec: e * float64(data.jsonBytes) / n / 1e6, allocsPerEv: median(allocs), bPerEv: median(bs)})
	}
	return out
}

func printGateway(w io.Writer, cfg config, rows []gwRow, floors []gwFloor, decode []decodeRow) {
	data := loadGWData(cfg.events)
	fmt.Fprintf(w, "### Gateway throughput, one shard (%d dispatches per run: ", len(data.events))
	first := true
	for _, m := range gwMixPerMille {
		if !first {
			fmt.Fprint(w, ", ")
		}
		first = false
		fmt.Fprintf(w, "%d %s", data.counts[m.name], m.name)
	}
	fmt.Fprintf(w, "; %.1f MB of JSON, %.1f MB as zlib-stream, %.1f MB as zstd-stream, %.1f MB as zlib payloads; loopback TCP)\n\n",
		float64(data.jsonBytes)/1e6, float64(len(data.stream))/1e6, float64(len(data.zstream))/1e6, float64(data.payloadLen)/1e6)
	fmt.Fprintf(w, "After READY and %d untimed warm-up events, timed from the first dispatch (mockdiscord's DispatchTrustedToShard, which skips re-validating the pre-generated JSON) until the handler counted the last event; every event must arrive (a short count fails the run). MB/s are of uncompressed JSON. Allocations are whole-process MemStats deltas per event (the mock, which encodes, compresses and writes every payload, runs in the same process); \"client\" columns subtract the frames-only row of the same compression, i.e. what the library allocates beyond a websocket reader that decodes nothing. \"of floor\" is events/s as a share of that frames-only row. raw: the handler gets d as bytes; typed: the handler (cordkit) or the library (discordgo, disgo) decodes d into structs.\n", len(data.warm))
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| library | compression | events/s | MB/s | allocs/event | B/event | client allocs/event | client B/event | of floor |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|")
	floor := map[string]gwRow{}
	for _, r := range rows {
		if r.lib == rawFloorName {
			floor[r.mode] = r
		}
	}
	for _, r := range rows {
		f := floor[r.mode]
		share := "-"
		if f.evPerSec > 0 {
			share = fmt.Sprintf("%.0f%%", 100*r.evPerSec/f.evPerSec)
		}
		fmt.Fprintf(w, "| %s | %s | %.0f | %.1f | %.1f | %.0f | %+.1f | %+.0f | %s |\n",
			r.lib, r.mode, r.evPerSec, r.mbPerSec, r.allocsPerEv, r.bytesPerEv, r.allocsPerEv-f.allocsPerEv, r.bytesPerEv-f.bytesPerEv, share)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Floors, same run: the client-side work alone over the pre-generated payloads, no mock and no socket.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| floor | time for all events | events/s | MB/s (JSON) | allocs/event | B/event |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	for _, f := range floors {
		fmt.Fprintf(w, "| %s | %.1f ms | %.0f | %.1f | %.2f | %.0f |\n", f.name, 1e3*float64(len(data.events))/f.evPerSec, f.evPerSec, f.mbPerSec, f.allocsPerEv, f.bPerEv)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Decoding alone, same run: each library's decode of one uncompressed payload (envelope, then d into its structs), replayed over the same payloads on one goroutine, without mock, socket or dispatcher. \"speed vs\" is discordgo's (disgo's) time per event divided by the row's: above 1, faster.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| decode path | ns/event | MB/s | allocs/event | B/event | speed vs discordgo | speed vs disgo |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|")
	var dg, ds float64
	for _, d := range decode {
		switch {
		case strings.HasPrefix(d.name, "discordgo "):
			dg = d.nsPerEv
		case strings.HasPrefix(d.name, "disgo "):
			ds = d.nsPerEv
		}
	}
	for _, d := range decode {
		fmt.Fprintf(w, "| %s | %.0f | %.1f | %.1f | %.0f | %.2f× | %.2f× |\n", d.name, d.nsPerEv, d.mbPerSec, d.allocsPerEv, d.bytesPEv, dg/d.nsPerEv, ds/d.nsPerEv)
	}
	fmt.Fprintln(w)
}
