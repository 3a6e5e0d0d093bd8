package reference_test

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	reference "github.com/cordkit/cordkit/impl/default"
	"github.com/cordkit/cordkit/protocols"
)

// zsMarker is the sync-flush marker that ends every zlib-stream message.
var zsMarker = []byte{0, 0, 0xff, 0xff}

// zsCompress compresses msgs the way Discord (and the mock) does: one zlib
// writer for the connection, Write then Flush per message. It returns each
// message's compressed bytes.
func zsCompress(t testing.TB, msgs [][]byte) [][]byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	out := make([][]byte, len(msgs))
	for i, m := range msgs {
		_, err := zw.Write(m)
		require.NoError(t, err)
		require.NoError(t, zw.Flush())
		out[i] = bytes.Clone(buf.Bytes())
		require.True(t, bytes.HasSuffix(out[i], zsMarker), "a flushed message ends with the marker")
		buf.Reset()
	}
	return out
}

// zsMessages returns n gateway-like JSON payloads of varied sizes, some
// over the 32 KiB window, with repeats so that back references matter.
func zsMessages(rng *rand.Rand, n int) [][]byte {
	words := []string{"hello ", "discord ", "gateway ", "shard ", "guild ", "member ", "presence ", "\u00e9t\u00e9 ", "\U0001F600 ", "zlib "}
	msgs := make([][]byte, n)
	for i := range msgs {
		var b strings.Builder
		fmt.Fprintf(&b, `{"op":0,"s":%d,"t":"MESSAGE_CREATE","d":{"id":"%d","content":"`, i+1, rng.Uint64())
		count := rng.IntN(40)
		if rng.IntN(50) == 0 {
			count = 5000 + rng.IntN(20000) // a GUILD_CREATE-sized one
		}
		for range count {
			if rng.IntN(10) == 0 {
				fmt.Fprintf(&b, "%x ", rng.Uint32()) // some entropy
			} else {
				b.WriteString(words[rng.IntN(len(words))])
			}
		}
		b.WriteString(`"}}`)
		msgs[i] = []byte(b.String())
	}
	return msgs
}

// zsSplit cuts a compressed message into frames at the given offsets,
// skipping any cut after which the frames so far would end with the marker:
// the framing rule says a message ends there, so no sender cuts there.
func zsSplit(comp []byte, cuts []int) [][]byte {
	var frames [][]byte
	last := 0
	for _, c := range cuts {
		if c <= last || c >= len(comp) || bytes.HasSuffix(comp[:c], zsMarker) {
			continue
		}
		frames = append(frames, comp[last:c])
		last = c
	}
	return append(frames, comp[last:])
}

// zsFeed feeds frames and returns the completed message, failing if a
// frame other than the last completes one.
func zsFeed(t testing.TB, inf protocols.Inflater, frames [][]byte) []byte {
	t.Helper()
	for i, f := range frames {
		msg, done, err := inf.Inflate(bytes.Clone(f))
		require.NoError(t, err)
		if i < len(frames)-1 {
			require.False(t, done, "frame %d of %d completed a message", i+1, len(frames))
			continue
		}
		require.True(t, done, "the last frame did not complete the message")
		return msg
	}
	return nil
}

func newStreamInflater(t testing.TB) protocols.Inflater {
	t.Helper()
	inf, err := reference.NewInflater(protocols.CompressZlibStream)
	require.NoError(t, err)
	return inf
}

func TestInflaterZlibStream(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	msgs := zsMessages(rng, 1000)
	comp := zsCompress(t, msgs)

	tests := []struct {
		name string
		cuts func(n int) []int
	}{
		{"WholeFrames", func(int) []int { return nil }},
		{"SplitFrames", func(n int) []int {
			cuts := make([]int, rng.IntN(5))
			for i := range cuts {
				cuts[i] = 1 + rng.IntN(n)
			}
			slices.Sort(cuts)
			return cuts
		}},
		{"ByteAtATime", func(n int) []int {
			cuts := make([]int, n)
			for i := range cuts {
				cuts[i] = i + 1
			}
			return cuts
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inf := newStreamInflater(t)
			for i, c := range comp {
				got := zsFeed(t, inf, zsSplit(c, tt.cuts(len(c))))
				if !bytes.Equal(got, msgs[i]) {
					t.Fatalf("message %d: got %d bytes %.60q, want %d bytes %.60q", i, len(got), got, len(msgs[i]), msgs[i])
				}
			}
		})
	}
}

// TestInflaterZlibStreamWindowBoundary covers messages whose output ends
// exactly where the decompressor's 32 KiB window wraps, and empty
// messages: the decompressor has nothing left to hand over when it reads
// the marker. Later messages refer back into the earlier ones.
func TestInflaterZlibStreamWindowBoundary(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	block := make([]byte, 32<<10)
	for i := range block {
		block[i] = "abcdefghij"[rng.IntN(10)]
	}
	msgs := [][]byte{
		block,                           // ends exactly at the window boundary
		{},                              // empty
		[]byte(`{"op":11}`),             // small
		block[:32<<10-len(`{"op":11}`)], // back to a boundary, all back references
		{},
		{},
		bytes.Repeat(block, 3), // three windows
		block[100:200],
		[]byte(`{"op":11}`),
	}
	comp := zsCompress(t, msgs)
	for _, name := range []string{"WholeFrames", "ByteAtATime"} {
		t.Run(name, func(t *testing.T) {
			inf := newStreamInflater(t)
			for i, c := range comp {
				frames := [][]byte{c}
				if name == "ByteAtATime" {
					cuts := make([]int, len(c))
					for j := range cuts {
						cuts[j] = j + 1
					}
					frames = zsSplit(c, cuts)
				}
				got := zsFeed(t, inf, frames)
				require.Equal(t, len(msgs[i]), len(got), "message %d length", i)
				require.True(t, bytes.Equal(msgs[i], got), "message %d content", i)
			}
		})
	}
}

func TestInflaterZlibStreamReset(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	inf := newStreamInflater(t)
	for conn := range 3 {
		msgs := zsMessages(rng, 50)
		comp := zsCompress(t, msgs)
		for i, c := range comp {
			assert.Equal(t, msgs[i], zsFeed(t, inf, [][]byte{c}), "connection %d message %d", conn, i)
		}
		// Leave half a message behind: Reset must drop it.
		_, done, err := inf.Inflate(comp[0][:3])
		require.NoError(t, err)
		require.False(t, done)
		inf.Reset()
	}
}

func TestInflaterZlibStreamMessageIsOwned(t *testing.T) {
	msgs := [][]byte{[]byte(`{"op":10,"d":{"heartbeat_interval":41250}}`)}
	comp := zsCompress(t, msgs)
	inf := newStreamInflater(t)
	frame := bytes.Clone(comp[0])
	msg, done, err := inf.Inflate(frame)
	require.NoError(t, err)
	require.True(t, done)
	for i := range frame {
		frame[i] = 0xAA // the caller reuses its frame buffer
	}
	assert.Equal(t, msgs[0], msg)
}

func TestInflaterZlibStreamCorrupt(t *testing.T) {
	good := zsCompress(t, [][]byte{[]byte(`{"op":10}`), []byte(`{"op":11}`)})
	tests := []struct {
		name   string
		frames [][]byte
	}{
		{"BadHeader", [][]byte{append([]byte{0x12, 0x34}, good[0][2:]...)}},
		{"PresetDictionary", [][]byte{append([]byte{0x78, 0xBB}, good[0][2:]...)}},
		{"BadBlockType", [][]byte{{0x78, 0x9c, 0xff, 0x00, 0x00, 0xff, 0xff}}},
		{"BadStoredLength", [][]byte{good[0], {0x00, 0x05, 0x00, 0x00, 0xff, 0xff}}},
		{"OnlyMarker", [][]byte{zsMarker}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inf := newStreamInflater(t)
			var err error
			for _, f := range tt.frames {
				if _, _, err = inf.Inflate(f); err != nil {
					break
				}
			}
			require.Error(t, err)
			_, _, again := inf.Inflate(good[1])
			assert.Error(t, again, "an error sticks until Reset")

			inf.Reset()
			for _, f := range good {
				_, done, err := inf.Inflate(f)
				require.NoError(t, err, "after Reset")
				assert.True(t, done)
			}
		})
	}
}

func TestInflaterZlibStreamSizeLimit(t *testing.T) {
	big := bytes.Repeat([]byte("a"), 1<<20)
	comp := zsCompress(t, [][]byte{[]byte("small"), big})
	inf, err := reference.InflaterOptions{MaxMessageSize: 1 << 16}.New(protocols.CompressZlibStream)
	require.NoError(t, err)
	_, done, err := inf.Inflate(comp[0])
	require.NoError(t, err)
	require.True(t, done)
	_, _, err = inf.Inflate(comp[1])
	assert.Error(t, err, "a message over MaxMessageSize")
}

func TestInflaterZlibStreamFinalBlock(t *testing.T) {
	comp := zsCompress(t, [][]byte{[]byte(`{"op":11}`)})
	inf := newStreamInflater(t)
	msg, done, err := inf.Inflate(comp[0])
	require.NoError(t, err)
	require.True(t, done)
	require.Equal(t, `{"op":11}`, string(msg))
	// An empty final stored block (BFINAL=1) ends the stream.
	msg, done, err = inf.Inflate([]byte{0x01, 0x00, 0x00, 0xff, 0xff})
	require.NoError(t, err)
	assert.True(t, done)
	assert.Empty(t, msg)
	_, _, err = inf.Inflate(zsMarker)
	assert.Error(t, err, "data after the end of the stream")
}

func TestInflaterZlibStreamBufferedLimit(t *testing.T) {
	inf, err := reference.InflaterOptions{MaxMessageSize: 100}.New(protocols.CompressZlibStream)
	require.NoError(t, err)
	_, done, err := inf.Inflate(make([]byte, 60))
	require.NoError(t, err)
	require.False(t, done)
	_, _, err = inf.Inflate(make([]byte, 60))
	assert.Error(t, err, "frames of one message over MaxMessageSize")
}

func TestInflaterZlibPayload(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	inf, err := reference.NewInflater(protocols.CompressZlibPayload)
	require.NoError(t, err)
	for i, m := range zsMessages(rng, 200) {
		var buf bytes.Buffer
		zw := zlib.NewWriter(&buf)
		_, _ = zw.Write(m)
		require.NoError(t, zw.Close())
		got, done, err := inf.Inflate(buf.Bytes())
		require.NoError(t, err, "message %d", i)
		require.True(t, done)
		require.Equal(t, m, got, "message %d", i)
		if i == 100 {
			inf.Reset()
		}
	}

	t.Run("Uncompressed", func(t *testing.T) {
		got, done, err := inf.Inflate([]byte(`{"op":11}`))
		require.NoError(t, err)
		assert.True(t, done)
		assert.Equal(t, `{"op":11}`, string(got))
	})
	t.Run("Corrupt", func(t *testing.T) {
		var buf bytes.Buffer
		zw := zlib.NewWriter(&buf)
		_, _ = zw.Write([]byte(`{"op":0,"t":"READY"}`))
		require.NoError(t, zw.Close())
		bad := bytes.Clone(buf.Bytes())
		bad[len(bad)-1] ^= 0xff // Adler-32
		_, _, err := inf.Inflate(bad)
		assert.Error(t, err, "bad checksum")
		_, _, err = inf.Inflate(buf.Bytes()[:len(buf.Bytes())/2])
		assert.Error(t, err, "truncated")
		_, _, err = inf.Inflate([]byte{0x78})
		assert.Error(t, err, "header only")
		got, _, err := inf.Inflate(buf.Bytes())
		require.NoError(t, err, "each frame stands alone")
		assert.Equal(t, `{"op":0,"t":"READY"}`, string(got))
	})
}

func TestInflaterNone(t *testing.T) {
	inf, err := reference.NewInflater(protocols.CompressNone)
	require.NoError(t, err)
	frame := []byte(`{"op":11}`)
	msg, done, err := inf.Inflate(frame)
	require.NoError(t, err)
	require.True(t, done)
	frame[2] = 'X'
	assert.Equal(t, `{"op":11}`, string(msg), "the message does not alias the frame")
}

func TestInflaterUnsupported(t *testing.T) {
	for _, mode := range []protocols.Compression{protocols.CompressZstdStream, protocols.Compression(42)} {
		_, err := reference.NewInflater(mode)
		assert.ErrorIs(t, err, protocols.ErrNotSupported, "mode %v", mode)
	}
}

// FuzzInflater feeds a zlib stream of messages taken from data, cut into
// frames at random places, and checks every message comes back whole; then
// it feeds data itself, raw, to every mode, which must not panic.
func FuzzInflater(f *testing.F) {
	f.Add([]byte(`{"op":10,"d":{"heartbeat_interval":41250}}|{"op":11}||{"op":0,"t":"READY"}`), uint64(1))
	f.Add([]byte("a|b|c|\x00\x00\xff\xff|d"), uint64(2))
	f.Add(bytes.Repeat([]byte("0123456789abcdef"), 5000), uint64(3))
	f.Add([]byte{0x78, 0x9c, 0x00, 0x00, 0x00, 0xff, 0xff}, uint64(4))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		rng := rand.New(rand.NewPCG(seed, seed>>1))
		msgs := bytes.Split(data, []byte("|"))
		comp := zsCompress(t, msgs)
		inf := newStreamInflater(t)
		for i, c := range comp {
			cuts := make([]int, rng.IntN(8))
			for j := range cuts {
				cuts[j] = 1 + rng.IntN(len(c))
			}
			slices.Sort(cuts)
			got := zsFeed(t, inf, zsSplit(c, cuts))
			if !bytes.Equal(got, msgs[i]) {
				t.Fatalf("message %d: got %q, want %q", i, got, msgs[i])
			}
		}

		for _, mode := range []protocols.Compression{protocols.CompressZlibStream, protocols.CompressZlibPayload, protocols.CompressNone} {
			inf, err := reference.NewInflater(mode)
			require.NoError(t, err)
			for _, frame := range [][]byte{data, append(bytes.Clone(data), zsMarker...), data} {
				msg, done, err := inf.Inflate(frame)
				if err != nil && (msg != nil || done) {
					t.Fatalf("%v: an error with a message", mode)
				}
			}
		}
	})
}

func BenchmarkInflateZlibStream(b *testing.B) {
	rng := rand.New(rand.NewPCG(9, 10))
	msgs := zsMessages(rng, 4096)
	comp := zsCompress(b, msgs)
	var total int
	for _, m := range msgs {
		total += len(m)
	}
	inf := newStreamInflater(b)
	b.SetBytes(int64(total / len(msgs)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == len(comp) {
			inf.Reset()
			i = 0
		}
		if _, _, err := inf.Inflate(comp[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkInflateZlibPayload(b *testing.B) {
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	_, _ = zw.Write(zsMessages(rand.New(rand.NewPCG(11, 12)), 1)[0])
	_ = zw.Close()
	inf, err := reference.NewInflater(protocols.CompressZlibPayload)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := inf.Inflate(buf.Bytes()); err != nil {
			b.Fatal(err)
		}
	}
}

func ExampleNewInflater() {
	// What the gateway sends with ?compress=zlib-stream: one zlib context
	// for the connection, each payload flushed with Z_SYNC_FLUSH.
	var wire bytes.Buffer
	zw := zlib.NewWriter(&wire)
	_, _ = zw.Write([]byte(`{"op":10,"d":{"heartbeat_interval":41250}}`))
	_ = zw.Flush()
	frame := wire.Bytes()

	inf, err := reference.NewInflater(protocols.CompressZlibStream)
	if err != nil {
		panic(err)
	}
	// The payload arrives in two websocket frames.
	_, done, err := inf.Inflate(frame[:5])
	fmt.Println(done, err)
	msg, done, err := inf.Inflate(frame[5:])
	fmt.Println(done, err, string(msg))

	_, err = reference.NewInflater(protocols.CompressZstdStream)
	fmt.Println(errors.Is(err, protocols.ErrNotSupported))
	// Output:
	// false <nil>
	// true <nil> {"op":10,"d":{"heartbeat_interval":41250}}
	// true
}
