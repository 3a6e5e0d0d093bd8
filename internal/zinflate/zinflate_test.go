package zinflate_test

import (
	"bytes"
	stdflate "compress/flate"
	stdzlib "compress/zlib"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	kpflate "github.com/klauspost/compress/flate"
	kpzlib "github.com/klauspost/compress/zlib"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cordkit/cordkit/conformance"
	"github.com/cordkit/cordkit/internal/zinflate"
	"github.com/cordkit/cordkit/protocols"
)

// libraries are the two DEFLATE libraries the implementations use, set up
// as impl/default and impl/fast do.
var libraries = []struct {
	name  string
	flate zinflate.Flate
}{
	{"std", zinflate.Flate{NewReader: stdflate.NewReader, NewZlibReader: stdzlib.NewReader, ErrHeader: stdzlib.ErrHeader, ErrDictionary: stdzlib.ErrDictionary}},
	{"klauspost", zinflate.Flate{NewReader: kpflate.NewReader, NewZlibReader: kpzlib.NewReader, ErrHeader: kpzlib.ErrHeader, ErrDictionary: kpzlib.ErrDictionary}},
}

// configs are the libraries crossed with both buffer reuse choices.
func configs() []zinflate.Config {
	var cs []zinflate.Config
	for _, lib := range libraries {
		for _, shrink := range []bool{false, true} {
			cs = append(cs, zinflate.Config{
				Name:              fmt.Sprintf("%s/shrink=%t", lib.name, shrink),
				MaxMessageSize:    64 << 20,
				Flate:             lib.flate,
				ShrinkEachMessage: shrink,
			})
		}
	}
	return cs
}

func TestConformance(t *testing.T) {
	for _, c := range configs() {
		t.Run(c.Name, func(t *testing.T) {
			conformance.TestInflater(t, func(_ *testing.T, mode protocols.Compression) (protocols.Inflater, error) {
				return zinflate.New(c, mode)
			})
		})
	}
}

// messages returns n JSON-like messages of random text, mostly small, one
// in 25 from 40 to 140 KiB: over the 32 KiB window and the initial buffer.
func messages(rng *rand.Rand, n int) [][]byte {
	const alphabet = `abcdefghij0123 "{}:,`
	msgs := make([][]byte, n)
	for i := range msgs {
		size := rng.IntN(2 << 10)
		if rng.IntN(25) == 0 {
			size = 40<<10 + rng.IntN(100<<10)
		}
		m := fmt.Appendf(make([]byte, 0, size+32), `{"op":0,"s":%d,"d":"`, i+1)
		for len(m) < size {
			m = append(m, alphabet[rng.IntN(len(alphabet))])
		}
		msgs[i] = append(m, `"}`...)
	}
	return msgs
}

// Every configuration inflates the same stream, whole, split and at window
// boundaries, to the same messages.
func TestZlibStream(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	block := make([]byte, 32<<10)
	for i := range block {
		block[i] = "abcdefghij"[rng.IntN(10)]
	}
	msgs := append(messages(rng, 200),
		block, // output ends exactly where the window wraps
		[]byte{},
		block[:32<<10-9],
		[]byte{},
		bytes.Repeat(block, 3),
		[]byte(`{"op":11}`),
	)
	msgs = append(msgs, messages(rng, 50)...)
	stream := conformance.ZlibStream(msgs)
	for _, c := range configs() {
		for _, split := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/split=%t", c.Name, split), func(t *testing.T) {
				frames := stream
				if split {
					frames = conformance.SplitFrames(stream, rand.New(rand.NewPCG(3, 4)))
				}
				got, err := conformance.InflateFrames(zinflate.NewZlibStream(c), frames)
				require.NoError(t, err)
				require.Len(t, got, len(msgs))
				for i := range msgs {
					require.True(t, bytes.Equal(msgs[i], got[i]), "message %d", i)
				}
			})
		}
	}
}

// Errors start with Config.Name, wrap ErrTooLarge over the limit, and use
// the library's zlib sentinels for a bad header.
func TestErrors(t *testing.T) {
	for _, lib := range libraries {
		c := zinflate.Config{Name: "impl", MaxMessageSize: 100, Flate: lib.flate}
		t.Run(lib.name, func(t *testing.T) {
			tests := []struct {
				name   string
				in     protocols.Inflater
				frames [][]byte
				want   error
			}{
				{"PlainTooLarge", zinflate.NewPlain(c), [][]byte{make([]byte, 101)}, zinflate.ErrTooLarge},
				{"PayloadTooLarge", zinflate.NewZlibPayload(c), conformance.ZlibPayloads([][]byte{make([]byte, 101)}), zinflate.ErrTooLarge},
				{"PayloadJSONTooLarge", zinflate.NewZlibPayload(c), [][]byte{append([]byte("{"), make([]byte, 100)...)}, zinflate.ErrTooLarge},
				{"PayloadBadHeader", zinflate.NewZlibPayload(c), [][]byte{{0x12, 0x34, 0x00}}, lib.flate.ErrHeader},
				{"StreamTooLarge", zinflate.NewZlibStream(c), conformance.ZlibStream([][]byte{make([]byte, 101)}), zinflate.ErrTooLarge},
				{"StreamBuffered", zinflate.NewZlibStream(c), [][]byte{make([]byte, 60), make([]byte, 60)}, zinflate.ErrTooLarge},
				{"StreamBadHeader", zinflate.NewZlibStream(c), [][]byte{{0x12, 0x34, 0x00, 0x00, 0xff, 0xff}}, lib.flate.ErrHeader},
				{"StreamDictionary", zinflate.NewZlibStream(c), [][]byte{{0x78, 0xbb, 0x00, 0x00, 0xff, 0xff}}, lib.flate.ErrDictionary},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					var err error
					for _, f := range tt.frames {
						if _, _, err = tt.in.Inflate(f); err != nil {
							break
						}
					}
					require.ErrorIs(t, err, tt.want)
					assert.True(t, strings.HasPrefix(err.Error(), "impl: inflate"), "got %q, want the prefix %q", err, "impl: inflate")
				})
			}
		})
	}
}

// ShrinkEachMessage drops a buffer left by a huge message when the next
// message starts; without it the buffer stays until Reset.
func TestShrinkEachMessage(t *testing.T) {
	huge := bytes.Repeat([]byte("0123456789abcdef"), 2*zinflate.MaxKeptBuf/16)
	small := []byte(`{"op":11}`)
	for _, shrink := range []bool{false, true} {
		c := zinflate.Config{Name: "impl", MaxMessageSize: 64 << 20, Flate: libraries[0].flate, ShrinkEachMessage: shrink}
		tests := []struct {
			name   string
			in     protocols.Inflater
			frames [][]byte
		}{
			{"Plain", zinflate.NewPlain(c), [][]byte{huge, small}},
			{"ZlibPayload", zinflate.NewZlibPayload(c), conformance.ZlibPayloads([][]byte{huge, small})},
		}
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/shrink=%t", tt.name, shrink), func(t *testing.T) {
				msg, done, err := tt.in.Inflate(tt.frames[0])
				require.NoError(t, err)
				require.True(t, done)
				require.Greater(t, cap(msg), zinflate.MaxKeptBuf)
				msg, _, err = tt.in.Inflate(tt.frames[1])
				require.NoError(t, err)
				assert.Equal(t, string(small), string(msg))
				assert.Equal(t, !shrink, cap(msg) > zinflate.MaxKeptBuf, "got cap %d", cap(msg))
				tt.in.Reset()
				msg, _, err = tt.in.Inflate(tt.frames[1])
				require.NoError(t, err)
				assert.LessOrEqual(t, cap(msg), zinflate.MaxKeptBuf, "after Reset")
			})
		}
	}
}

// PayloadGrowth sets the first size of ZlibPayload's output buffer.
func TestPayloadGrowth(t *testing.T) {
	frames := conformance.ZlibPayloads([][]byte{[]byte(`{"op":11}`)})
	tests := []struct {
		growth, want int
	}{
		{0, 512},
		{4 << 10, 4 << 10},
	}
	for _, tt := range tests {
		c := zinflate.Config{Name: "impl", MaxMessageSize: 64 << 20, Flate: libraries[1].flate, PayloadGrowth: tt.growth}
		msg, _, err := zinflate.NewZlibPayload(c).Inflate(frames[0])
		require.NoError(t, err)
		assert.Equal(t, tt.want, cap(msg), "PayloadGrowth %d", tt.growth)
	}
}

// Once its buffers have grown, a zlib-stream inflater allocates nothing
// per message, with either library.
func TestZlibStreamSteadyStateAllocs(t *testing.T) {
	frames := conformance.ZlibStream(messages(rand.New(rand.NewPCG(5, 6)), 400))
	for _, c := range configs() {
		t.Run(c.Name, func(t *testing.T) {
			in := zinflate.NewZlibStream(c)
			half := len(frames) / 2
			_, err := conformance.InflateFrames(in, frames[:half])
			require.NoError(t, err)
			i := half
			allocs := testing.AllocsPerRun(len(frames)-half-1, func() {
				if _, done, err := in.Inflate(frames[i]); err != nil || !done {
					t.Fatalf("message %d: done=%t, %v", i, done, err)
				}
				i++
			})
			assert.Zero(t, allocs, "allocations per message")
		})
	}
}

// A corrupt stream's error sticks until Reset, after which a new stream
// inflates.
func TestZlibStreamStickyError(t *testing.T) {
	good := conformance.ZlibStream([][]byte{[]byte(`{"op":10}`), []byte(`{"op":11}`)})
	for _, c := range configs() {
		t.Run(c.Name, func(t *testing.T) {
			in := zinflate.NewZlibStream(c)
			_, _, err := in.Inflate([]byte{0x78, 0x9c, 0xff, 0x00, 0x00, 0xff, 0xff})
			require.Error(t, err)
			_, _, again := in.Inflate(good[1])
			assert.Equal(t, err, again, "the first error, until Reset")
			in.Reset()
			got, err := conformance.InflateFrames(in, good)
			require.NoError(t, err)
			assert.Equal(t, []string{`{"op":10}`, `{"op":11}`}, []string{string(got[0]), string(got[1])})
		})
	}
}
