package fast_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cordkit/cordkit/conformance"
	"github.com/cordkit/cordkit/conformance/mockdiscord"
	reference "github.com/cordkit/cordkit/impl/default"
	"github.com/cordkit/cordkit/impl/fast"
	"github.com/cordkit/cordkit/protocols"
)

func TestInflaterConformance(t *testing.T) {
	conformance.TestInflater(t, func(_ *testing.T, mode protocols.Compression) (protocols.Inflater, error) {
		return fast.NewInflater(mode)
	})
}

// messages returns n gateway-like payloads of varied sizes, a few over the
// 32 KiB DEFLATE window and the 128 KiB zstd block.
func messages(rng *rand.Rand, n int) [][]byte {
	words := []string{"hello ", "discord ", "gateway ", "shard ", "guild ", "member ", "presence ", "\u00e9t\u00e9 ", "\U0001F600 "}
	msgs := make([][]byte, n)
	for i := range msgs {
		var b strings.Builder
		fmt.Fprintf(&b, `{"op":0,"s":%d,"t":"MESSAGE_CREATE","d":{"id":"%d","content":"`, i+1, rng.Uint64())
		count := rng.IntN(60)
		if rng.IntN(40) == 0 {
			count = 10000 + rng.IntN(30000)
		}
		for range count {
			if rng.IntN(8) == 0 {
				fmt.Fprintf(&b, "%x ", rng.Uint32())
			} else {
				b.WriteString(words[rng.IntN(len(words))])
			}
		}
		b.WriteString(`"}}`)
		msgs[i] = []byte(b.String())
	}
	return msgs
}

func feedAll(t testing.TB, in protocols.Inflater, frames [][]byte) [][]byte {
	t.Helper()
	msgs, err := conformance.InflateFrames(in, frames)
	require.NoError(t, err)
	return msgs
}

// The fast zlib-stream inflater returns what the reference one does.
func TestInflaterZlibStreamMatchesReference(t *testing.T) {
	msgs := messages(rand.New(rand.NewPCG(1, 2)), 300)
	frames := conformance.SplitFrames(conformance.ZlibStream(msgs), rand.New(rand.NewPCG(3, 4)))
	ref, err := reference.NewInflater(protocols.CompressZlibStream)
	require.NoError(t, err)
	in, err := fast.NewInflater(protocols.CompressZlibStream)
	require.NoError(t, err)
	want := feedAll(t, ref, frames)
	got := feedAll(t, in, frames)
	require.Equal(t, len(want), len(got))
	for i := range want {
		require.Equal(t, string(want[i]), string(got[i]), "message %d", i)
	}
}

// zstdFrames compresses msgs as one zstd stream with enc's options, one
// flush per message, and returns each message's bytes.
func zstdFrames(t testing.TB, msgs [][]byte, opts ...zstd.EOption) [][]byte {
	t.Helper()
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(&buf, append([]zstd.EOption{zstd.WithEncoderConcurrency(1)}, opts...)...)
	require.NoError(t, err)
	out := make([][]byte, len(msgs))
	for i, m := range msgs {
		_, err := enc.Write(m)
		require.NoError(t, err)
		require.NoError(t, enc.Flush())
		out[i] = bytes.Clone(buf.Bytes())
		buf.Reset()
	}
	return out
}

func TestInflaterZstdStream(t *testing.T) {
	msgs := messages(rand.New(rand.NewPCG(5, 6)), 200)
	tests := []struct {
		name string
		opts []zstd.EOption
	}{
		{"Discord", []zstd.EOption{zstd.WithWindowSize(256 << 10), zstd.WithEncoderCRC(false)}},
		{"Checksum", []zstd.EOption{zstd.WithEncoderCRC(true)}},
		{"SmallWindow", []zstd.EOption{zstd.WithWindowSize(zstd.MinWindowSize)}},
		{"Fastest", []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedFastest)}},
		{"Best", []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedBestCompression)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := fast.NewInflater(protocols.CompressZstdStream)
			require.NoError(t, err)
			got := feedAll(t, in, zstdFrames(t, msgs, tt.opts...))
			require.Len(t, got, len(msgs))
			for i := range msgs {
				require.Equal(t, string(msgs[i]), string(got[i]), "message %d", i)
			}
		})
	}
}

// A stream may end a frame and start another (with a skippable frame in
// between): each frame's last block, checksum included, ends a message.
func TestInflaterZstdStreamSeveralFrames(t *testing.T) {
	msgs := messages(rand.New(rand.NewPCG(7, 8)), 20)
	var frames [][]byte
	var want [][]byte
	for part := range 3 {
		var buf bytes.Buffer
		enc, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(true))
		require.NoError(t, err)
		for i, m := range msgs {
			_, err := enc.Write(m)
			require.NoError(t, err)
			if i == len(msgs)-1 {
				require.NoError(t, enc.Close()) // the last block, then the checksum
			} else {
				require.NoError(t, enc.Flush())
			}
			f := bytes.Clone(buf.Bytes())
			buf.Reset()
			if part == 1 && i == 0 { // a skippable frame before the frame
				f = append([]byte{0x5a, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 'a', 'b', 'c'}, f...)
			}
			frames = append(frames, f)
			want = append(want, m)
		}
	}
	in, err := fast.NewInflater(protocols.CompressZstdStream)
	require.NoError(t, err)
	got := feedAll(t, in, frames)
	require.Len(t, got, len(want))
	for i := range want {
		require.Equal(t, string(want[i]), string(got[i]), "message %d", i)
	}
}

func TestInflaterZstdLimits(t *testing.T) {
	msgs := messages(rand.New(rand.NewPCG(9, 10)), 5)
	msgs = append(msgs, bytes.Repeat([]byte("x"), 1<<20))
	t.Run("MaxMessageSize", func(t *testing.T) {
		in, err := fast.InflaterOptions{MaxMessageSize: 1 << 19}.New(protocols.CompressZstdStream)
		require.NoError(t, err)
		_, err = conformance.InflateFrames(in, zstdFrames(t, msgs))
		require.Error(t, err)
		_, _, err2 := in.Inflate(zstdFrames(t, msgs[:1])[0])
		assert.Error(t, err2, "the error is sticky")
	})
	t.Run("MaxZstdWindow", func(t *testing.T) {
		in, err := fast.InflaterOptions{MaxZstdWindow: 64 << 10}.New(protocols.CompressZstdStream)
		require.NoError(t, err)
		_, err = conformance.InflateFrames(in, zstdFrames(t, msgs[:1], zstd.WithWindowSize(1<<20)))
		require.Error(t, err)
		in.Reset()
		feedAll(t, in, zstdFrames(t, msgs[:2], zstd.WithWindowSize(64<<10)))
	})
}

// Once its buffers have grown, an inflater allocates nothing per message.
func TestInflaterSteadyStateAllocs(t *testing.T) {
	msgs := messages(rand.New(rand.NewPCG(11, 12)), 400)
	tests := []struct {
		mode   protocols.Compression
		frames [][]byte
	}{
		{protocols.CompressZlibStream, conformance.ZlibStream(msgs)},
		{protocols.CompressZstdStream, conformance.ZstdStream(msgs)},
		{protocols.CompressZlibPayload, conformance.ZlibPayloads(msgs)},
		{protocols.CompressNone, msgs},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String(), func(t *testing.T) {
			in, err := fast.NewInflater(tt.mode)
			require.NoError(t, err)
			half := len(tt.frames) / 2
			feedAll(t, in, tt.frames[:half]) // warm up: the big messages come in both halves
			i := half
			allocs := testing.AllocsPerRun(len(tt.frames)-half-1, func() {
				if _, done, err := in.Inflate(tt.frames[i]); err != nil || !done {
					t.Fatalf("message %d: done=%t, %v", i, done, err)
				}
				i++
			})
			assert.Zero(t, allocs, "allocations per message")
		})
	}
}

func TestInflaterUnknownMode(t *testing.T) {
	_, err := fast.NewInflater(protocols.Compression(99))
	assert.ErrorIs(t, err, protocols.ErrNotSupported)
	// The reference has no zstd; the fast one does.
	_, err = reference.NewInflater(protocols.CompressZstdStream)
	assert.ErrorIs(t, err, protocols.ErrNotSupported)
}

func FuzzInflaterZstd(f *testing.F) {
	msgs := messages(rand.New(rand.NewPCG(13, 14)), 8)
	stream := bytes.Join(conformance.ZstdStream(msgs), nil)
	f.Add(stream, uint64(1))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		in, err := fast.NewInflater(protocols.CompressZstdStream)
		require.NoError(t, err)
		rnd := rand.New(rand.NewPCG(seed, seed))
		for len(data) > 0 {
			n := 1 + rnd.IntN(len(data))
			if _, _, err := in.Inflate(data[:n]); err != nil {
				break
			}
			data = data[n:]
		}
		in.Reset()
		_ = feedAll(t, in, conformance.ZstdStream(msgs[:2]))
	})
}

// recorder keeps the events a dispatcher delivers, with copied data.
type recorder struct {
	mu     sync.Mutex
	events []protocols.Event
}

func (r *recorder) add(ev protocols.Event) {
	ev.Data = append(json.RawMessage(nil), ev.Data...)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *recorder) all() []protocols.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]protocols.Event(nil), r.events...)
}

// End to end: a reference shard with the fast inflater, connected to the
// mock with compress=zstd-stream, gets every event, across a payload split
// in fragments, a GUILD_CREATE bigger than one zstd block, and a reconnect
// (a new zstd stream).
func TestShardZstdStreamEndToEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := mockdiscord.New(&mockdiscord.Options{Guilds: 3, HeartbeatInterval: time.Hour})
		defer func() { _ = srv.Close() }()
		events, raw := fast.NewDispatcher(), fast.NewDispatcher()
		var evs, guilds recorder
		defer events.Listen("TEST_EVENT", evs.add)()
		defer events.Listen("GUILD_CREATE", guilds.add)()
		limiter, err := reference.NewIdentifyLimiter(protocols.IdentifyLimiterParams{MaxConcurrency: 1})
		require.NoError(t, err)
		sh, err := reference.NewShard(protocols.ShardParams{
			ID: 0, Count: 1,
			Token:           protocols.BotToken(mockdiscord.DefaultToken),
			URL:             srv.GatewayURL(),
			Intents:         protocols.IntentGuilds | protocols.IntentGuildMessages,
			Compression:     protocols.CompressZstdStream,
			Dialer:          &reference.Dialer{NetDial: srv.NetDial},
			Codec:           fast.Codec{},
			NewInflater:     fast.NewInflater,
			KeepAlive:       reference.NewKeepAlive(),
			SendLimiter:     reference.NewSendLimiter(),
			IdentifyLimiter: limiter,
			Sessions:        reference.NewSessionStore(),
			Events:          events,
			Raw:             raw,
			Logger:          slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
		})
		require.NoError(t, err)
		ready := make(chan struct{}, 10)
		done := make(chan error, 1)
		go func() { done <- sh.Run(t.Context(), func() { ready <- struct{}{} }) }()
		<-ready
		for i := range 10 {
			_, err := srv.InjectGateway(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultSplit, Shard: 0, Parts: 2 + i%3, AfterDispatches: 1 + 4*i})
			require.NoError(t, err)
		}
		for i := range 50 {
			pad := strings.Repeat("y", i*50)
			if i == 25 { // bigger than a zstd block (128 KiB)
				pad = strings.Repeat("0123456789abcdef", 20000)
			}
			_, err := srv.DispatchToShard(0, "TEST_EVENT", map[string]any{"n": i + 1, "pad": pad})
			require.NoError(t, err)
		}
		synctest.Wait()
		_, err = srv.InjectGateway(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultDrop, Shard: 0})
		require.NoError(t, err)
		<-ready // resumed on a new connection: a new zstd stream
		_, err = srv.DispatchToShard(0, "TEST_EVENT", map[string]any{"n": 51})
		require.NoError(t, err)
		synctest.Wait()

		got := evs.all()
		require.Len(t, got, 51)
		for i, ev := range got {
			var d struct{ N int }
			require.NoError(t, json.Unmarshal(ev.Data, &d))
			assert.Equal(t, i+1, d.N)
		}
		assert.Greater(t, len(got[25].Data), 128<<10, "an event that spans several zstd blocks")
		assert.Len(t, guilds.all(), 3)
		for _, o := range srv.GatewayObservations() {
			if o.Kind == mockdiscord.ObserveConnect {
				assert.Equal(t, "zstd-stream", o.Transport)
			}
		}
		assert.Empty(t, srv.GatewayViolations())
		require.NoError(t, sh.Close(protocols.CloseNormal))
		if err := <-done; err != nil && !errors.Is(err, io.EOF) {
			t.Logf("Run: %v", err)
		}
	})
}
