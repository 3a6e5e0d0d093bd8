package conformance

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/cordkit/cordkit/protocols"
)

// Rule sentences of the Inflater suite, quoted from package protocols.
const (
	ruleSplitWhole       = "A message split over several frames is returned whole when its last frame arrives."
	ruleResetNew         = "Reset starts a new stream, for a new connection."
	ruleOneContext       = "One Inflater serves one connection at a time: for zlib-stream, a single inflate context spans all the connection's messages, and one message may span several websocket frames."
	ruleZlibStream       = "CompressZlibStream is transport compression (?compress=zlib-stream): one zlib context spans the whole connection, and a message ends with the sync-flush marker 00 00 FF FF, possibly after several frames."
	ruleZlibPayload      = "CompressZlibPayload is payload compression (IDENTIFY compress:true): some payloads arrive as binary frames, each a whole zlib stream."
	ruleMessageValid     = "When the frame completes a message it returns the message and done=true; the message is valid until the next call."
	ruleFrameNotRetained = "Otherwise it returns done=false and keeps what it needs of frame (it must copy: frame is not retained past the call)."
	ruleCorrupt          = "A corrupt stream returns an error, after which only Reset helps."
	rulePlain            = "CompressNone sends every payload as plain text."
	ruleZstdStream       = "CompressZstdStream is transport compression (?compress=zstd-stream): one zstd stream spans the whole connection, and a message is complete when the decoder has used up all the input received since the last message and that input ends at a block boundary."
)

// syncFlush is the marker that ends every zlib-stream message.
var syncFlush = []byte{0x00, 0x00, 0xff, 0xff}

// TestInflater tests a [protocols.Inflater] implementation. newInflater is
// called once or more per subtest, inside the subtest's synctest bubble,
// and must return a new Inflater for mode, or an error wrapping
// [protocols.ErrNotSupported] when the implementation lacks the mode: the
// subtests of that mode are then skipped (a subtest that covers several
// modes checks those supported). The suite asks for
// [protocols.CompressZlibStream], [protocols.CompressZlibPayload],
// [protocols.CompressNone] and [protocols.CompressZstdStream]. zstd is
// optional (the reference inflater lacks it): the zstd subtests
// (ZstdStream...) run only when newInflater accepts
// [protocols.CompressZstdStream], and are skipped, saying so, when it
// returns [protocols.ErrNotSupported].
//
// The frames come from [ZlibStream], [ZlibPayloads], [ZstdStream],
// [SplitFrames] and [OneByteFrames] applied to a realistic session (HELLO,
// READY, a GUILD_CREATE of 230 KB, a few hundred events), and from
// messages sized around the 32 KiB DEFLATE window and zstd's 128 KiB
// blocks. The subtests need no clock:
// [CheckInflater] runs the same checks without a *testing.T.
func TestInflater(t *testing.T, newInflater func(t *testing.T, mode protocols.Compression) (protocols.Inflater, error)) {
	t.Helper()
	Options{}.TestInflater(t, newInflater)
}

// TestInflater is [TestInflater] with options.
func (o Options) TestInflater(t *testing.T, newInflater func(t *testing.T, mode protocols.Compression) (protocols.Inflater, error)) {
	t.Helper()
	runRules(t, o, "TestInflater", asRules(inflaterChecks), func(t *testing.T) protocols.InflaterFunc {
		return func(mode protocols.Compression) (protocols.Inflater, error) {
			t.Helper()
			return newInflater(t, mode)
		}
	})
}

// CheckInflater runs the checks of [TestInflater] with the inflaters
// newInflater builds, and returns their failures joined, or nil. Modes for
// which newInflater returns [protocols.ErrNotSupported] are skipped, not
// failed. Like [testing/fstest.TestFS] it needs no *testing.T, so it suits
// examples and fuzz targets.
func CheckInflater(newInflater protocols.InflaterFunc) error {
	if newInflater == nil {
		return errors.New("conformance: CheckInflater: nil InflaterFunc")
	}
	return runChecks(inflaterChecks, newInflater)
}

// ---- Adversarial frames, for implementers' own tests too ----

// ZlibStream compresses messages as Discord's zlib-stream transport does:
// one zlib writer for the whole connection, and after each message a Flush,
// whose sync-flush marker 00 00 FF FF ends the message. It returns one frame
// per message; the first starts with the zlib header, and the later ones
// refer back to the earlier ones, so that only an inflater that keeps one
// context for the connection can read them.
func ZlibStream(messages [][]byte) [][]byte {
	return zlibStream(messages, zlib.DefaultCompression)
}

func zlibStream(messages [][]byte, level int) [][]byte {
	var buf bytes.Buffer
	zw, err := zlib.NewWriterLevel(&buf, level)
	if err != nil {
		panic("conformance: " + err.Error())
	}
	frames := make([][]byte, len(messages))
	for i, m := range messages {
		_, _ = zw.Write(m) // a bytes.Buffer never fails
		_ = zw.Flush()
		frames[i] = bytes.Clone(buf.Bytes())
		buf.Reset()
	}
	return frames
}

// ZstdStream compresses messages as Discord's zstd-stream transport does:
// one zstd frame for the whole connection, never ended (no checksum, no
// content size, a 256 KiB window), and after each message a flush, which
// ends the current block without ending the frame. It returns one frame
// per message: the first starts with the frame header, a message over 128
// KiB spans several blocks, and the later frames refer back to the earlier
// ones, so that only an inflater that keeps one decoder for the connection
// can read them.
func ZstdStream(messages [][]byte) [][]byte {
	var buf bytes.Buffer
	// Concurrency 1: the encoder works in this goroutine and starts none.
	zw, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(256<<10),
		zstd.WithEncoderCRC(false), zstd.WithLowerEncoderMem(true))
	if err != nil {
		panic("conformance: " + err.Error())
	}
	frames := make([][]byte, len(messages))
	for i, m := range messages {
		_, _ = zw.Write(m) // a bytes.Buffer never fails
		_ = zw.Flush()
		frames[i] = bytes.Clone(buf.Bytes())
		buf.Reset()
	}
	return frames
}

// zstdBlockEnds returns, for each frame of a zstd stream (such as
// [ZstdStream]'s), the offsets in the frame at which a block ends (after
// the frame's checksum, for a last block). A cut there would end a
// message early: the input so far would end at a block boundary.
func zstdBlockEnds(frames [][]byte) [][]int {
	stream := bytes.Join(frames, nil)
	var ends []int
	inFrame, checksum := false, false
	for pos := 0; pos+3 <= len(stream); {
		if !inFrame { // a frame header (ZstdStream writes no skippable frame)
			fhd := stream[pos+4]
			single := fhd&(1<<5) != 0
			n := 5 + [4]int{0, 1, 2, 4}[fhd&3]
			if !single {
				n++
			}
			if fcs := fhd >> 6; fcs != 0 {
				n += 1 << fcs
			} else if single {
				n++
			}
			pos, inFrame, checksum = pos+n, true, fhd&(1<<2) != 0
			continue
		}
		bh := int(stream[pos]) | int(stream[pos+1])<<8 | int(stream[pos+2])<<16
		size := bh >> 3
		if bh>>1&3 == 1 { // RLE: one byte
			size = 1
		}
		pos += 3 + size
		if bh&1 != 0 {
			inFrame = false
			if checksum {
				pos += 4
			}
		}
		ends = append(ends, pos)
	}
	out := make([][]int, len(frames))
	base, i := 0, 0
	for fi, f := range frames {
		for ; i < len(ends) && ends[i] <= base+len(f); i++ {
			if ends[i] > base {
				out[fi] = append(out[fi], ends[i]-base)
			}
		}
		base += len(f)
	}
	return out
}

// splitZstd cuts every frame of a zstd stream into 2 to 8 pieces at random
// offsets, never at a block's end (but the frame's own), so that each
// message arrives in pieces that end inside a frame header or a block.
func splitZstd(frames [][]byte, rnd *rand.Rand) [][][]byte {
	ends := zstdBlockEnds(frames)
	out := make([][][]byte, len(frames))
	for i, f := range frames {
		var cuts []int
		if len(f) > 1 {
			for range 1 + rnd.IntN(min(7, len(f)-1)) {
				if c := 1 + rnd.IntN(len(f)-1); !slices.Contains(ends[i], c) {
					cuts = append(cuts, c)
				}
			}
		}
		out[i] = cutAt(f, cuts)
	}
	return out
}

// ZlibPayloads compresses every message as a whole zlib stream, as payload
// compression (IDENTIFY compress:true) does: one frame per message, each
// with its own header and checksum.
func ZlibPayloads(messages [][]byte) [][]byte {
	frames := make([][]byte, len(messages))
	for i, m := range messages {
		frames[i] = zlibPayload(m, zlib.DefaultCompression)
	}
	return frames
}

func zlibPayload(m []byte, level int) []byte {
	var buf bytes.Buffer
	zw, err := zlib.NewWriterLevel(&buf, level)
	if err != nil {
		panic("conformance: " + err.Error())
	}
	_, _ = zw.Write(m)
	_ = zw.Close()
	return buf.Bytes()
}

// SplitFrames cuts every frame into 2 to 8 frames at random offsets, so that
// a message arrives in pieces, the way [testing/iotest.HalfReader] hands a
// reader's data over. It never cuts a frame right after the bytes 00 00 FF
// FF (unless they end the frame), since there the pieces so far would look
// like a whole zlib-stream message. rnd may be nil for a fixed seed.
func SplitFrames(frames [][]byte, rnd *rand.Rand) [][]byte {
	if rnd == nil {
		rnd = rand.New(rand.NewPCG(1, 1))
	}
	var out [][]byte
	for _, f := range frames {
		out = append(out, splitFrame(f, rnd)...)
	}
	return out
}

// splitFrame cuts f into 2 to 8 pieces at random offsets, never after a
// sync-flush marker that does not end f.
func splitFrame(f []byte, rnd *rand.Rand) [][]byte {
	if len(f) < 2 {
		return [][]byte{f}
	}
	n := 1 + rnd.IntN(min(7, len(f)-1)) // cuts
	cuts := make([]int, 0, n)
	for range n {
		cuts = append(cuts, 1+rnd.IntN(len(f)-1))
	}
	return cutAt(f, cuts)
}

// cutAt cuts f at the given offsets, skipping repeated ones, those out of
// range and those right after a sync-flush marker.
func cutAt(f []byte, cuts []int) [][]byte {
	slices.Sort(cuts)
	var pieces [][]byte
	last := 0
	for _, c := range cuts {
		if c <= last || c >= len(f) || bytes.HasSuffix(f[:c], syncFlush) {
			continue
		}
		pieces = append(pieces, f[last:c])
		last = c
	}
	return append(pieces, f[last:])
}

// OneByteFrames cuts every frame into one-byte frames, the way
// [testing/iotest.OneByteReader] hands a reader's data over. The frames must
// not hold the sync-flush marker 00 00 FF FF anywhere but at their end.
func OneByteFrames(frames [][]byte) [][]byte {
	var out [][]byte
	for _, f := range frames {
		out = append(out, oneByte(f)...)
	}
	return out
}

func oneByte(f []byte) [][]byte {
	pieces := make([][]byte, len(f))
	for i := range f {
		pieces[i] = f[i : i+1]
	}
	return pieces
}

// InflateFrames feeds frames to in, in order, and returns a copy of every
// message in completes. It returns an error wrapping Inflate's, or one when
// the frames end in the middle of a message.
func InflateFrames(in protocols.Inflater, frames [][]byte) ([][]byte, error) {
	var msgs [][]byte
	done := true
	for i, f := range frames {
		msg, ok, err := in.Inflate(f)
		if err != nil {
			return msgs, fmt.Errorf("conformance: Inflate (frame %d of %d): %w", i+1, len(frames), err)
		}
		if ok {
			msgs = append(msgs, bytes.Clone(msg))
		}
		done = ok
	}
	if !done {
		return msgs, errors.New("conformance: the frames end in the middle of a message")
	}
	return msgs, nil
}

// ---- Feeding an Inflater ----

// inflate calls in.Inflate, turning a panic into a *panicError.
func inflate(in protocols.Inflater, frame []byte) (msg []byte, done bool, err error) {
	defer recoverAs(&err, "Inflate")
	return in.Inflate(frame)
}

// reset calls in.Reset, turning a panic into a *panicError.
func reset(in protocols.Inflater) (err error) {
	defer recoverAs(&err, "Reset")
	in.Reset()
	return nil
}

// inflaterFor returns a new Inflater for mode, or nil when the
// implementation does not support mode.
func inflaterFor(c *checker, newInflater protocols.InflaterFunc, mode protocols.Compression) protocols.Inflater {
	c.Helper()
	in, err := func() (in protocols.Inflater, err error) {
		defer recoverAs(&err, "InflaterFunc")
		return newInflater(mode)
	}()
	switch {
	case errors.Is(err, protocols.ErrNotSupported):
		return nil
	case err != nil:
		c.Fatalf("NewInflater(%s): got error %v, want an Inflater or protocols.ErrNotSupported", mode, err)
	case in == nil:
		c.Fatalf("NewInflater(%s): got a nil Inflater and a nil error", mode)
	}
	return in
}

// mustInflater returns a new Inflater for mode, and skips the check when
// the implementation does not support mode.
func mustInflater(c *checker, newInflater protocols.InflaterFunc, mode protocols.Compression) protocols.Inflater {
	c.Helper()
	in := inflaterFor(c, newInflater, mode)
	if in == nil {
		c.Skipf("the implementation does not support %s compression (protocols.ErrNotSupported)", mode)
	}
	return in
}

// eachMode runs fn with a new Inflater of every supported mode of modes,
// and skips the check when none is supported.
func eachMode(c *checker, newInflater protocols.InflaterFunc, modes []protocols.Compression, fn func(mode protocols.Compression, in protocols.Inflater)) {
	c.Helper()
	ran := false
	for _, mode := range modes {
		if in := inflaterFor(c, newInflater, mode); in != nil {
			ran = true
			fn(mode, in)
		}
	}
	if !ran {
		c.Skipf("the implementation supports none of %v (protocols.ErrNotSupported)", modes)
	}
}

// feedOpts says how feed hands the frames over.
type feedOpts struct {
	// scribble hands every frame over in one buffer, which it overwrites
	// after each call, as a websocket reader reuses its buffer.
	scribble bool
	// recheck compares each message again just before the next call, after
	// letting other goroutines run.
	recheck bool
}

// feed hands the pieces of each message to in, in order, and checks that
// in returns each message whole with its last piece, and only then. It
// stops the check at the first failure.
func feed(c *checker, in protocols.Inflater, what string, msgs [][]byte, pieces [][][]byte, o feedOpts) {
	c.Helper()
	var (
		buf     []byte
		prev    []byte
		prevIdx int
	)
	recheck := func(before string) {
		if prev == nil {
			return
		}
		for range 3 {
			runtime.Gosched()
		}
		if d := diff(prev, msgs[prevIdx]); d != "" {
			c.Fatalf("Inflater.Inflate (%s, message %d): the message changed before %s: %s", what, prevIdx+1, before, d)
		}
	}
	for i, ps := range pieces {
		for j, p := range ps {
			if o.recheck {
				recheck("the next call")
			}
			frame := p
			if o.scribble {
				buf = append(buf[:0], p...)
				frame = buf
			}
			where := fmt.Sprintf("%s, message %d of %d (%d bytes), frame %d of %d", what, i+1, len(pieces), len(msgs[i]), j+1, len(ps))
			msg, done, err := inflate(in, frame)
			if err != nil {
				c.Fatalf("Inflater.Inflate (%s): got error %v, want the message", where, err)
			}
			if o.scribble {
				for k := range buf {
					buf[k] = 0xA5
				}
			}
			last := j == len(ps)-1
			switch {
			case done && !last:
				c.Fatalf("Inflater.Inflate (%s): got done=true with %d bytes, want done=false until the message's last frame", where, len(msg))
			case !done && last:
				c.Fatalf("Inflater.Inflate (%s): got done=false after the message's last frame, want the whole message", where)
			case done:
				if d := diff(msg, msgs[i]); d != "" {
					if o.scribble {
						c.Fatalf("Inflater.Inflate (%s), after the caller overwrote its frame buffer: %s", where, d)
					}
					c.Fatalf("Inflater.Inflate (%s): %s", where, d)
				}
				prev, prevIdx = msg, i
			}
		}
	}
	if o.recheck {
		recheck("the end")
	}
}

// whole is every frame as one piece.
func whole(frames [][]byte) [][][]byte {
	out := make([][][]byte, len(frames))
	for i, f := range frames {
		out[i] = [][]byte{f}
	}
	return out
}

// diff describes how got differs from want, or returns "".
func diff(got, want []byte) string {
	if bytes.Equal(got, want) {
		return ""
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	excerpt := func(b []byte) []byte { return b[i:min(len(b), i+24)] }
	return fmt.Sprintf("got %d bytes, want %d, differing from byte %d: got %q, want %q", len(got), len(want), i, excerpt(got), excerpt(want))
}

// ---- Fixtures ----

// contextMessages are messages that repeat one another, so that each one
// after the first is mostly a back reference into the ones before.
var contextMessages = sync.OnceValue(func() [][]byte {
	rnd := rand.New(rand.NewPCG(5, 6))
	a := messageCreatePayload(rnd, 1, 1)
	b := bytes.Replace(a, []byte(`"s":1,`), []byte(`"s":2,`), 1)
	c := bytes.Replace(a, []byte(`"s":1,`), []byte(`"s":3,`), 1)
	return [][]byte{a, b, c, heartbeatACK(), heartbeatACK(), bytes.Replace(b, []byte(`"s":2,`), []byte(`"s":4,`), 1)}
})

// sizedMessage returns a JSON payload of exactly n bytes (n >= 40), about
// half words and half pseudo-random letters.
func sizedMessage(rnd *rand.Rand, n int) []byte {
	head := fmt.Sprintf(`{"op":0,"s":%d,"t":"FILL","d":"`, n)
	var b strings.Builder
	b.WriteString(head)
	for b.Len() < n-2 {
		if rnd.IntN(2) == 0 {
			b.WriteString(words[rnd.IntN(len(words))])
			b.WriteByte(' ')
		} else {
			b.WriteByte(byte('a' + rnd.IntN(26)))
		}
	}
	s := b.String()
	for len(s) > n-2 { // a word overshot: trim, keeping valid UTF-8 out of it
		s = strings.TrimRightFunc(s[:n-2], func(r rune) bool { return r >= 0x80 || r == 0xFFFD })
	}
	return []byte(s + strings.Repeat("x", n-2-len(s)) + `"}`)
}

// windowMessages are sized around the 32 KiB DEFLATE window and its
// multiples, with one of 1.25 MiB and one of random bytes (stored blocks).
var windowMessages = sync.OnceValue(func() [][]byte {
	rnd := rand.New(rand.NewPCG(7, 8))
	var msgs [][]byte
	for _, n := range []int{32768, 32767, 32769, 65536, 65536 - 40, 5 << 18} {
		msgs = append(msgs, sizedMessage(rnd, n))
	}
	msgs = append(msgs, []byte("0")) // the smallest JSON payload
	random := make([]byte, 100000)
	for i := range random {
		random[i] = byte(rnd.Uint32())
	}
	msgs = append(msgs, random, sizedMessage(rnd, 32768))
	return msgs
})

// windowLevels are the compression levels of windowStreams: the usual one,
// and stored blocks only.
var windowLevels = []int{zlib.DefaultCompression, zlib.NoCompression}

// windowStreams holds windowMessages compressed as zlib-stream at each of
// windowLevels.
var windowStreams = sync.OnceValue(func() map[int][][]byte {
	out := make(map[int][][]byte)
	for _, level := range windowLevels {
		out[level] = zlibStream(windowMessages(), level)
	}
	return out
})

// windowPayloads are the windowMessages up to 64 KiB as zlib-payload
// frames.
var windowPayloads = sync.OnceValues(func() ([][]byte, [][]byte) {
	var msgs [][]byte
	for _, m := range windowMessages() {
		if len(m) <= 1<<16 {
			msgs = append(msgs, m)
		}
	}
	return msgs, ZlibPayloads(msgs)
})

// sessionStream is eventMix as zlib-stream frames.
var sessionStream = sync.OnceValue(func() [][]byte { return ZlibStream(eventMix()) })

// zstdSession is eventMix as zstd-stream frames.
var zstdSession = sync.OnceValue(func() [][]byte { return ZstdStream(eventMix()) })

// chunks cuts f into pieces of n bytes.
func chunks(f []byte, n int) [][]byte {
	var cuts []int
	for c := n; c < len(f); c += n {
		cuts = append(cuts, c)
	}
	return cutAt(f, cuts)
}

// corruption is a stream that goes bad: good frames, then a bad one.
type corruption struct {
	name string
	mode protocols.Compression
	good [][]byte // frames that decode
	bad  []byte   // then this frame must fail
	next []byte   // and then, without Reset, this one must not succeed
}

func corruptions() []corruption {
	msgs := eventMix()[:4]
	stream := sessionStream()[:len(msgs)]
	ctx := ZlibStream(contextMessages())
	header := slices.Clone(stream[0])
	header[1] ^= 1 // FCHECK no longer makes the header a multiple of 31
	garbage := make([]byte, 64)
	rnd := rand.New(rand.NewPCG(9, 10))
	for i := range garbage {
		garbage[i] = byte(rnd.Uint32())
	}
	garbage[0] = 0xff // compression method 15: not zlib
	garbage = append(garbage, syncFlush...)
	payload := ZlibPayloads(msgs[1:2])[0]
	badSum := slices.Clone(payload)
	badSum[len(badSum)-1] ^= 0xff
	payloadHeader := slices.Clone(payload)
	payloadHeader[0] = 0x7f // compression method 15
	return []corruption{
		{name: "bad zlib header", mode: protocols.CompressZlibStream, bad: header, next: stream[1]},
		{name: "garbage", mode: protocols.CompressZlibStream, bad: garbage, next: stream[0]},
		{name: "reserved block type", mode: protocols.CompressZlibStream, good: stream[:1], bad: []byte{0x06, 0x00, 0x00, 0xff, 0xff}, next: stream[1]},
		{name: "stored block length mismatch", mode: protocols.CompressZlibStream, good: stream[:2],
			bad: []byte{0x00, 0x05, 0x00, 0x00, 0x00, 'h', 'e', 'l', 'l', 'o', 0x00, 0x00, 0xff, 0xff}, next: stream[2]},
		{name: "back reference before the stream's start", mode: protocols.CompressZlibStream,
			bad: append([]byte{0x78, 0x9c}, ctx[1]...), next: ctx[2]},
		{name: "payload with a bad Adler-32", mode: protocols.CompressZlibPayload, bad: badSum},
		{name: "truncated payload", mode: protocols.CompressZlibPayload, bad: payload[:len(payload)-6]},
		{name: "payload with a bad header", mode: protocols.CompressZlibPayload, bad: payloadHeader},
	}
}

// corrupt feeds cr's frames to in and checks that the bad one fails.
// It reports whether it did.
func corrupt(c *checker, in protocols.Inflater, cr corruption) bool {
	c.Helper()
	for i, f := range cr.good {
		if _, done, err := inflate(in, f); err != nil || !done {
			c.Errorf("Inflater.Inflate (%s: good frame %d): got done=%t, error %v; want the message", cr.name, i+1, done, err)
			return false
		}
	}
	msg, done, err := inflate(in, cr.bad)
	var p *panicError
	switch {
	case errors.As(err, &p):
		c.Errorf("Inflater.Inflate (%s): %v, want an error", cr.name, err)
		return false
	case err == nil && done:
		c.Errorf("Inflater.Inflate (%s): got a message of %d bytes and no error, want an error", cr.name, len(msg))
		return false
	case err == nil:
		c.Errorf("Inflater.Inflate (%s): got done=false and no error for a frame that ends with the sync-flush marker, want an error", cr.name)
		return false
	}
	return true
}

var inflaterChecks = []check[protocols.InflaterFunc]{
	{
		name: "SplitMessageReturnedWhole",
		rule: ruleSplitWhole,
		run: func(c *checker, newInflater protocols.InflaterFunc) {
			in := mustInflater(c, newInflater, protocols.CompressZlibStream)
			msgs := eventMix()
			rnd := rand.New(rand.NewPCG(11, 12))
			pieces := make([][][]byte, len(msgs))
			for i, f := range sessionStream() {
				pieces[i] = splitFrame(f, rnd)
				if i%10 == 3 { // an empty frame now and then
					pieces[i] = append([][]byte{{}}, pieces[i]...)
				}
			}
			feed(c, in, "zlib-stream, each message split at random offsets", msgs, pieces, feedOpts{})
		},
	},
	{
		name: "OneByteAtATime",
		rule: ruleSplitWhole,
		run: func(c *checker, newInflater protocols.InflaterFunc) {
			in := mustInflater(c, newInflater, protocols.CompressZlibStream)
			msgs := eventMix()[:40]
			pieces := make([][][]byte, len(msgs))
			for i, f := range sessionStream()[:len(msgs)] {
				pieces[i] = oneByte(f)
			}
			feed(c, in, "zlib-stream, one byte per frame", msgs, pieces, feedOpts{})
		},
	},
	{
		name: "MarkerSplitAcrossFrames",
		rule: ruleSplitWhole,
		run: func(c *checker, newInflater protocols.InflaterFunc) {
			in := mustInflater(c, newInflater, protocols.CompressZlibStream)
			msgs := eventMix()[:30]
			pieces := make([][][]byte, len(msgs))
			for i, f := range sessionStream()[:len(msgs)] {
				pieces[i] = cutAt(f, []int{len(f) - 1 - i%3}) // 00 00 FF | FF, 00 00 | FF FF, 00 | 00 FF FF
			}
			feed(c, in, "zlib-stream, the sync-flush marker split over two frames", msgs, pieces, feedOpts{})
		},
	},
	{
		name: "ContextSpansMessages",
		rule: ruleOneContext,
		run: func(c *checker, newInflater protocols.InflaterFunc) {
			in := mustInflater(c, newInflater, protocols.CompressZlibStream)
			msgs := contextMessages()
			feed(c, in, "zlib-stream, messages that refer back to earlier ones", msgs, whole(ZlibStream(msgs)), feedOpts{})
			in = mustInflater(c, newInflater, protocols.CompressZlibStream)
			feed(c, in, "zlib-stream, a session", eventMix(), whole(sessionStream()), feedOpts{})
		},
	},
	{
		name: "WindowSizedMessages",
		rule: ruleZlibStream,
		run: func(c *checker, newInflater protocols.InflaterFunc) {
			msgs := windowMessages()
			for _, level := range windowLevels {
				frames := windowStreams()[level]
				in := mustInflater(c, newInflater, protocols.CompressZlibStream)
				feed(c, in, fmt.Sprintf("zlib-stream at level %d, messages sized around the 32 KiB window", level), msgs, whole(frames), feedOpts{})
			}
			frames := windowStreams()[zlib.DefaultCompression]
			pieces := make([][][]byte, len(frames))
			for i, f := range frames {
				pieces[i] = chunks(f, 16<<10)
			}
			in := mustInflater(c, newInflater, protocols.CompressZlibStream)
			feed(c, in, "zlib-stream, messages sized around the 32 KiB window, in 16 KiB frames", msgs, pieces, feedOpts{})
		},
	},
	{
		name: "ResetStartsNewStream",
		rule: ruleResetNew,
		run: func(c *checker, newInflater protocols.InflaterFunc) {
			in := mustInflater(c, newInflater, protocols.CompressZlibStream)
			msgs := eventMix()
			if err := reset(in); err != nil {
				c.Fatalf("Inflater.Reset (new inflater): %v", err)
			}
			for conn, part := range [][][]byte{msgs[:10], msgs[10:40], msgs[40:45]} {
				feed(c, in, fmt.Sprintf("zlib-stream, connection %d", conn+1), part, whole(ZlibStream(part)), feedOpts{})
				for range conn + 1 { // Reset twice is as good as once
					if err := reset(in); err != nil {
						c.Fatalf("Inflater.Reset: %v", err)
					}
				}
			}
		},
	},
	{
		name: "ResetDropsPartialMessage",
		rule: ruleResetNew,
		run: func(c *checker, newInflater protocols.InflaterFunc) {
			in := mustInflater(c, newInflater, protocols.CompressZlibStream)
			msgs := eventMix()
			frames := sessionStream()[:4]
			feed(c, in, "zlib-stream, connection 1", msgs[:3], whole(frames[:3]), feedOpts{})
			half := frames[3][:len(frames[3])/2]
			if _, done, err := inflate(in, half); err != nil || done {
				c.Fatalf("Inflater.Inflate (connection 1, half of message 4): got done=%t, error %v; want done=false and no error", done, err)
			}
			if err := reset(in); err != nil {
				c.Fatalf("Inflater.Reset: %v", err)
			}
			next := msgs[5:25]
			feed(c, in, "zlib-stream, connection 2, after a Reset that cut a message short", next, whole(ZlibStream(next)), feedOpts{})
		},
	},
	{
		name: "CorruptStreamIsError",
		rule: ruleCorrupt,
		run: func(c *checker, newInflater protocols.InflaterFunc) {
			ran := false
			for _, cr := range corruptions() {
				in := inflaterFor(c, newInflater, cr.mode)
				if in == nil {
					continue
				}
				ran = true
				if !corrupt(c, in, cr) || cr.next == nil {
					continue
				}
				if msg, done, err := inflate(in, cr.next); err == nil && done {
					c.Errorf("Inflater.Inflate (%s, then the stream's next frame without Reset): got a message of %d bytes and no error, want an error: only Reset helps", cr.name, len(msg))
				}
			}
			if !ran {
				c.Skipf("the implementation supports neither zlib-stream nor zlib-payload compression")
			}
		},
	},
	{
		name: "ResetAfterCorruptStream",
		rule: ruleCorrupt,
		run: func(c *checker, newInflater protocols.InflaterFunc) {
			in := mustInflater(c, newInflater, protocols.CompressZlibStream)
			msgs := eventMix()[:20]
			for _, cr := range corruptions() {
				if cr.mode != protocols.CompressZlibStream || !corrupt(c, in, cr) {
					continue
				}
				if err := reset(in); err != nil {
					c.Fatalf("Inflater.Reset: %v", err)
				}
				feed(c, in, "zlib-stream, after a Reset that followed "+cr.name, msgs, whole(sessionStream()[:len(msgs)]), feedOpts{})
				if err := reset(in); err != nil {
					c.Fatalf("Inflater.Reset: %v", err)
				}
			}
		},
	},
	{
		name: "PayloadFramesAreWholeStreams",
		rule: ruleZlibPayload,
		run: func(c *checker, newInflater protocols.InflaterFunc) {
			in := mustInflater(c, newInflater, protocols.CompressZlibPayload)
			msgs := eventMix()[:60]
			levels := []int{zlib.DefaultCompression, zlib.BestSpeed, zlib.NoCompression, zlib.BestCompression}
			frames := make([][]byte, len(msgs))
			for i, m := range msgs {
				frames[i] = zlibPayload(m, levels[i%len(levels)])
			}
			feed(c, in, "zlib-payload", msgs, whole(frames), feedOpts{})
			big, frames := windowPayloads()
			feed(c, in, "zlib-payload, messages sized around the 32 KiB window", big, whole(frames), feedOpts{})
		},
	},
	{
		name: "PlainFramesPassThrough",
		rule: rulePlain,
		run: func(c *checker, newInflater protocols.InflaterFunc) {
			in := mustInflater(c, newInflater, protocols.CompressNone)
			msgs := eventMix()[:60]
			feed(c, in, "no compression", msgs, whole(msgs), feedOpts{})
		},
	},
	{
		name: "MessageValidUntilNextCall",
		rule: ruleMessageValid,
		run: func(c *checker, newInflater protocols.InflaterFunc) {
			msgs := eventMix()[:60]
			eachMode(c, newInflater, []protocols.Compression{protocols.CompressZlibStream, protocols.CompressZlibPayload, protocols.CompressNone, protocols.CompressZstdStream},
				func(mode protocols.Compression, in protocols.Inflater) {
					var pieces [][][]byte
					switch mode {
					case protocols.CompressZlibStream:
						pieces = whole(sessionStream()[:len(msgs)])
					case protocols.CompressZstdStream:
						pieces = whole(zstdSession()[:len(msgs)])
					case protocols.CompressZlibPayload:
						pieces = whole(ZlibPayloads(msgs))
					default:
						pieces = whole(msgs)
					}
					feed(c, in, mode.String(), msgs, pieces, feedOpts{recheck: true})
				})
		},
	},
	{
		name: "FrameNotRetained",
		rule: ruleFrameNotRetained,
		run: func(c *checker, newInflater protocols.InflaterFunc) {
			msgs := eventMix()[:60]
			rnd := rand.New(rand.NewPCG(13, 14))
			eachMode(c, newInflater, []protocols.Compression{protocols.CompressZlibStream, protocols.CompressZlibPayload, protocols.CompressNone, protocols.CompressZstdStream},
				func(mode protocols.Compression, in protocols.Inflater) {
					var pieces [][][]byte
					switch mode {
					case protocols.CompressZlibStream:
						for _, f := range sessionStream()[:len(msgs)] {
							pieces = append(pieces, splitFrame(f, rnd))
						}
					case protocols.CompressZstdStream:
						pieces = splitZstd(zstdSession()[:len(msgs)], rnd)
					case protocols.CompressZlibPayload:
						pieces = whole(ZlibPayloads(msgs))
					default:
						pieces = whole(msgs)
					}
					feed(c, in, mode.String()+", frames in one buffer that the caller overwrites after each call", msgs, pieces, feedOpts{scribble: true})
				})
		},
	},
	{
		name: "ZstdStreamMessages",
		rule: ruleZstdStream,
		run: func(c *checker, newInflater protocols.InflaterFunc) {
			in := mustInflater(c, newInflater, protocols.CompressZstdStream)
			feed(c, in, "zstd-stream, a session", eventMix(), whole(zstdSession()), feedOpts{})
			in = mustInflater(c, newInflater, protocols.CompressZstdStream)
			msgs := contextMessages()
			feed(c, in, "zstd-stream, messages that refer back to earlier ones", msgs, whole(ZstdStream(msgs)), feedOpts{})
			in = mustInflater(c, newInflater, protocols.CompressZstdStream)
			msgs = windowMessages()
			feed(c, in, "zstd-stream, messages of 32 KiB to 1.25 MiB (several blocks) and random bytes (raw blocks)", msgs, whole(ZstdStream(msgs)), feedOpts{})
		},
	},
	{
		name: "ZstdStreamSplitMessages",
		rule: ruleZstdStream,
		run: func(c *checker, newInflater protocols.InflaterFunc) {
			in := mustInflater(c, newInflater, protocols.CompressZstdStream)
			msgs := eventMix()
			pieces := splitZstd(zstdSession(), rand.New(rand.NewPCG(17, 18)))
			for i := range pieces {
				if i%10 == 3 { // an empty frame now and then
					pieces[i] = append([][]byte{{}}, pieces[i]...)
				}
			}
			feed(c, in, "zstd-stream, each message split at random offsets inside its blocks", msgs, pieces, feedOpts{})
			in = mustInflater(c, newInflater, protocols.CompressZstdStream)
			msgs = msgs[:40]
			pieces = pieces[:0]
			ends := zstdBlockEnds(zstdSession()[:len(msgs)])
			for i, f := range zstdSession()[:len(msgs)] {
				var cuts []int
				for c := 1; c < len(f); c++ {
					if !slices.Contains(ends[i], c) {
						cuts = append(cuts, c)
					}
				}
				pieces = append(pieces, cutAt(f, cuts))
			}
			feed(c, in, "zstd-stream, one byte per frame (but at block ends)", msgs, pieces, feedOpts{})
		},
	},
	{
		name: "ZstdStreamResetStartsNewStream",
		rule: ruleResetNew,
		run: func(c *checker, newInflater protocols.InflaterFunc) {
			in := mustInflater(c, newInflater, protocols.CompressZstdStream)
			msgs := eventMix()
			frames := zstdSession()
			feed(c, in, "zstd-stream, connection 1", msgs[:3], whole(frames[:3]), feedOpts{})
			half := frames[3][:len(frames[3])/2]
			if _, done, err := inflate(in, half); err != nil || done {
				c.Fatalf("Inflater.Inflate (zstd-stream, connection 1, half of message 4): got done=%t, error %v; want done=false and no error", done, err)
			}
			for conn, part := range [][][]byte{msgs[5:25], msgs[25:30], msgs[:10]} {
				for range conn + 1 { // Reset twice is as good as once
					if err := reset(in); err != nil {
						c.Fatalf("Inflater.Reset: %v", err)
					}
				}
				feed(c, in, fmt.Sprintf("zstd-stream, connection %d, a new stream after Reset", conn+2), part, whole(ZstdStream(part)), feedOpts{})
			}
		},
	},
	{
		name: "ZstdStreamCorruptIsError",
		rule: ruleCorrupt,
		run: func(c *checker, newInflater protocols.InflaterFunc) {
			msgs := eventMix()[:20]
			frames := zstdSession()[:len(msgs)]
			ctx := ZstdStream(contextMessages())
			badMagic := slices.Clone(frames[0])
			badMagic[0] ^= 0xff
			header := ctx[0][:6] // the frame header alone: magic, descriptor, window
			cases := []struct {
				name      string
				good      [][]byte
				bad, next []byte
			}{
				{name: "bad magic number", bad: badMagic, next: frames[1]},
				{name: "reserved block type", good: frames[:2], bad: []byte{0x06, 0x00, 0x00}, next: frames[2]},
				{name: "block that refers back before the stream's start", bad: append(slices.Clone(header), ctx[1][:len(ctx[1])]...), next: ctx[2]},
			}
			for _, cr := range cases {
				in := mustInflater(c, newInflater, protocols.CompressZstdStream)
				for i, f := range cr.good {
					if _, done, err := inflate(in, f); err != nil || !done {
						c.Fatalf("Inflater.Inflate (zstd-stream, %s: good frame %d): got done=%t, error %v; want the message", cr.name, i+1, done, err)
					}
				}
				msg, done, err := inflate(in, cr.bad)
				var p *panicError
				switch {
				case errors.As(err, &p):
					c.Errorf("Inflater.Inflate (zstd-stream, %s): %v, want an error", cr.name, err)
					continue
				case err == nil:
					c.Errorf("Inflater.Inflate (zstd-stream, %s): got done=%t, %d bytes and no error, want an error", cr.name, done, len(msg))
					continue
				}
				if msg, done, err := inflate(in, cr.next); err == nil && done {
					c.Errorf("Inflater.Inflate (zstd-stream, %s, then the stream's next frame without Reset): got a message of %d bytes and no error, want an error: only Reset helps", cr.name, len(msg))
				}
				if err := reset(in); err != nil {
					c.Fatalf("Inflater.Reset: %v", err)
				}
				feed(c, in, "zstd-stream, after a Reset that followed "+cr.name, msgs, whole(frames), feedOpts{})
			}
		},
	},
}

// ---- Benchmark ----

// BenchmarkInflater measures Inflate over a realistic session (HELLO,
// READY, three GUILD_CREATEs of up to 230 KB, 300 events): one op is one
// connection, Reset then every frame. It reports the decompressed MB/s,
// allocations per op and ns per message, for zlib-stream with one frame
// per message, zlib-stream with every message split in 2 to 8 frames,
// zlib-payload, and zstd-stream, whole and split likewise. A mode for which newInflater returns
// [protocols.ErrNotSupported] is skipped. newInflater is called once per
// sub-benchmark.
func BenchmarkInflater(b *testing.B, newInflater func(b *testing.B, mode protocols.Compression) (protocols.Inflater, error)) {
	msgs := eventMix()
	total := 0
	for _, m := range msgs {
		total += len(m)
	}
	stream := sessionStream()
	benches := []struct {
		name   string
		mode   protocols.Compression
		frames [][]byte
	}{
		{"zlib-stream", protocols.CompressZlibStream, stream},
		{"zlib-stream-split", protocols.CompressZlibStream, SplitFrames(stream, rand.New(rand.NewPCG(15, 16)))},
		{"zlib-payload", protocols.CompressZlibPayload, ZlibPayloads(msgs)},
		{"zstd-stream", protocols.CompressZstdStream, zstdSession()},
		{"zstd-stream-split", protocols.CompressZstdStream, slices.Concat(splitZstd(zstdSession(), rand.New(rand.NewPCG(19, 20)))...)},
	}
	for _, bench := range benches {
		b.Run(bench.name, func(b *testing.B) {
			in, err := newInflater(b, bench.mode)
			if errors.Is(err, protocols.ErrNotSupported) {
				b.Skipf("%s: %v", bench.mode, err)
			}
			if err != nil {
				b.Fatalf("NewInflater(%s): %v", bench.mode, err)
			}
			b.SetBytes(int64(total))
			b.ReportAllocs()
			for b.Loop() {
				in.Reset()
				n := 0
				for _, f := range bench.frames {
					_, done, err := in.Inflate(f)
					if err != nil {
						b.Fatalf("Inflater.Inflate: %v", err)
					}
					if done {
						n++
					}
				}
				if n != len(msgs) {
					b.Fatalf("Inflater.Inflate: got %d messages, want %d", n, len(msgs))
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(msgs)), "ns/msg")
		})
	}
}
