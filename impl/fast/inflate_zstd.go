package fast

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/klauspost/compress/zstd"

	"github.com/cordkit/cordkit/internal/zinflate"
)

// zstd framing (RFC 8878 §3.1).
const (
	zstdMagic         = 0xFD2FB528
	zstdSkippableMask = 0xFFFFFFF0
	zstdSkippableID   = 0x184D2A50
	// zstdMaxBlock bounds a block's compressed and decompressed size:
	// Block_Maximum_Size is min(window, 128 KiB) (§3.1.1.2.4), which the
	// decoder enforces.
	zstdMaxBlock = 128 << 10
)

// Errors of the zstd framing, which the inflater reads itself.
var (
	errZstdMagic    = errors.New("not a zstd frame (bad magic number)")
	errZstdReserved = errors.New("zstd frame header with the reserved bit set")
	errZstdBlock    = errors.New("zstd block of the reserved type")
	errZstdBigBlock = errors.New("zstd block bigger than 128 KiB")
)

// zstdScan is where a zstd stream stands between units. A unit is a
// skippable frame, a frame header, or a block (with the frame's checksum
// after its last block).
type zstdScan struct {
	inFrame  bool // after a frame header, before the frame's last block
	checksum bool // the current frame ends with a 4-byte checksum
}

// next measures the unit at the start of b. It returns the unit's length,
// or 0 when b holds only part of it; whether decoding the unit yields
// output (a frame header never does; a raw or RLE block of size 0 does
// not; a compressed block always does, as no encoder makes an empty one);
// and where the stream stands after it.
func (s zstdScan) next(b []byte, limit int) (n int, output bool, after zstdScan, err error) {
	if !s.inFrame {
		if len(b) < 4 {
			return 0, false, s, nil
		}
		magic := binary.LittleEndian.Uint32(b)
		if magic&zstdSkippableMask == zstdSkippableID {
			if len(b) < 8 {
				return 0, false, s, nil
			}
			size := int64(binary.LittleEndian.Uint32(b[4:]))
			if size > int64(limit) {
				return 0, false, s, zinflate.ErrTooLarge
			}
			if n := 8 + int(size); len(b) >= n {
				return n, false, s, nil
			}
			return 0, false, s, nil
		}
		if magic != zstdMagic {
			return 0, false, s, errZstdMagic
		}
		if len(b) < 5 {
			return 0, false, s, nil
		}
		fhd := b[4]
		if fhd&(1<<3) != 0 {
			return 0, false, s, errZstdReserved
		}
		single := fhd&(1<<5) != 0
		n := 5 + [4]int{0, 1, 2, 4}[fhd&3] // Dictionary_ID
		if !single {
			n++ // Window_Descriptor
		}
		switch fcs := fhd >> 6; {
		case fcs != 0:
			n += 1 << fcs
		case single:
			n++
		}
		if len(b) < n {
			return 0, false, s, nil
		}
		return n, false, zstdScan{inFrame: true, checksum: fhd&(1<<2) != 0}, nil
	}
	if len(b) < 3 {
		return 0, false, s, nil
	}
	bh := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
	last, size := bh&1 != 0, int(bh>>3)
	if size > zstdMaxBlock {
		return 0, false, s, errZstdBigBlock
	}
	n = 3
	switch bh >> 1 & 3 {
	case 0: // Raw_Block
		n, output = n+size, size > 0
	case 1: // RLE_Block: one byte, repeated size times
		n, output = n+1, size > 0
	case 2: // Compressed_Block
		n, output = n+size, true
	default:
		return 0, false, s, errZstdBlock
	}
	if last {
		if s.checksum {
			n += 4
		}
		s = zstdScan{}
	}
	if len(b) < n {
		return 0, false, zstdScan{}, nil
	}
	return n, output, s, nil
}

// zstdStreamInflater serves CompressZstdStream: the connection's zstd
// stream, one frame (or several) that Discord never ends, of which each
// websocket message carries the blocks of one gateway message (see the
// package doc, "zstd-stream").
//
// klauspost's streaming decoder pulls its input from an io.Reader, decodes
// one block per Read when it has no output left, and keeps the first error
// its reader returns. So it must never be asked for input that is not
// there: Inflate measures the frame headers and blocks itself (zstdScan)
// and hands the decoder complete units only, ending with one that yields
// output; what follows (part of a block, or a header or empty block not
// yet followed by output) waits in pending for the next frame. Each Read
// gets more than 128 KiB of room, more than a block can decode to, so a
// Read that does not fill it has handed over everything the decoder held:
// when feed is used up too, every block given so far is decoded, and the
// decoder is asked for nothing more until the next frame.
type zstdStreamInflater struct {
	limit   int
	dec     *zstd.Decoder
	feed    zstdFeed
	scan    zstdScan // where the stream stands after the units given to dec
	pending []byte   // bytes after the units given to dec: part of a unit, or units without output
	inMsg   bool     // a message has started: out holds its output so far
	saw     bool     // the current message has a complete unit with output
	out     []byte   // the current message
	err     error    // sticky, until Reset
}

// newZstdStreamInflater returns a zstd-stream inflater for messages of up
// to limit bytes and windows of up to window bytes.
func newZstdStreamInflater(limit, window int) (*zstdStreamInflater, error) {
	z := &zstdStreamInflater{limit: limit}
	// Concurrency 1 decodes in the caller's goroutine: the decoder starts
	// no goroutine, so it needs no Close. Reset(nil) is never called, so
	// the decoder never decodes from a byte buffer in one go either (feed
	// has no Bytes method).
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(uint64(window)),
	)
	if err != nil {
		return nil, fmt.Errorf("fast: zstd decoder: %w", err)
	}
	if err := dec.Reset(&z.feed); err != nil {
		return nil, fmt.Errorf("fast: zstd decoder: %w", err)
	}
	z.dec = dec
	return z, nil
}

func (z *zstdStreamInflater) Inflate(frame []byte) ([]byte, bool, error) {
	if z.err != nil {
		return nil, false, z.err
	}
	if !z.inMsg {
		z.inMsg, z.saw = true, false
		z.out = zinflate.Shrink(z.out)
	}
	in := frame // the usual case: nothing pending, so no copy
	if len(z.pending) > 0 {
		if len(z.pending)+len(frame) > z.limit {
			return nil, false, z.fail(fmt.Errorf("buffered frames: %w", zinflate.ErrTooLarge))
		}
		z.pending = append(z.pending, frame...)
		in = z.pending
	}
	// Measure the units in, and find the end of the last one with output.
	scan, pos, commit, commitScan := z.scan, 0, 0, z.scan
	for {
		n, output, next, err := scan.next(in[pos:], z.limit)
		if err != nil {
			return nil, false, z.fail(err)
		}
		if n == 0 {
			break
		}
		pos, scan = pos+n, next
		if output {
			commit, commitScan, z.saw = pos, scan, true
		}
	}
	if commit > 0 {
		if err := z.decode(in[:commit]); err != nil {
			return nil, false, z.fail(err)
		}
		z.scan = commitScan
	}
	// Keep the rest; it is the caller's frame when nothing was pending.
	if len(z.pending) > 0 {
		z.pending = z.pending[:copy(z.pending, z.pending[commit:])]
	} else {
		z.pending = append(z.pending, in[commit:]...)
	}
	if pos < len(in) || !z.saw {
		return nil, false, nil // part of a unit is missing, or no block with output came
	}
	// The input ends at a unit boundary: the message is complete. Units
	// without output that end it (none, from Discord) wait in pending for
	// the next message's first block.
	z.inMsg = false
	if len(z.pending) == 0 {
		z.pending = zinflate.Shrink(z.pending)
	}
	return z.out, true, nil
}

// decode hands in, whole units ending with one that yields output, to the
// decoder, and appends all the output to out.
func (z *zstdStreamInflater) decode(in []byte) error {
	z.feed.reset(in)
	defer z.feed.reset(nil) // do not retain in: it may be the caller's frame
	for !z.feed.empty() {
		if cap(z.out)-len(z.out) <= zstdMaxBlock {
			z.out = slices.Grow(z.out, max(zstdMaxBlock+1, cap(z.out)))
		}
		room := cap(z.out) - len(z.out)
		n, err := z.dec.Read(z.out[len(z.out):cap(z.out)])
		z.out = z.out[:len(z.out)+n]
		switch {
		case err != nil:
			return err
		case n == room: // cannot happen: the decoder checks block sizes
			return errZstdBigBlock
		case len(z.out) > z.limit:
			return zinflate.ErrTooLarge
		}
	}
	return nil
}

// fail makes err sticky and returns it.
func (z *zstdStreamInflater) fail(err error) error {
	z.err = fmt.Errorf("fast: inflate zstd-stream: %w", err)
	return z.err
}

func (z *zstdStreamInflater) Reset() {
	z.scan, z.inMsg, z.saw, z.err = zstdScan{}, false, false, nil
	z.pending = zinflate.Shrink(z.pending)
	z.out = zinflate.Shrink(z.out)
	z.feed.reset(nil)
	// The decoder starts a new stream: it forgets its frame and history,
	// keeps its buffers, and clears its sticky error.
	_ = z.dec.Reset(&z.feed) // fails only after Close, which is never called
}

// errNeedInput is what zstdFeed returns when the decoder wants more than it
// was given; Inflate's bookkeeping means it never happens.
var errNeedInput = errors.New("fast: zstd decoder needs more input")

// zstdFeed is the decoder's input: whole units of the current frame. It
// has no Bytes or Len method, so the decoder reads it as a stream.
type zstdFeed struct {
	buf []byte
	off int
}

func (f *zstdFeed) reset(b []byte) { f.buf, f.off = b, 0 }

func (f *zstdFeed) empty() bool { return f.off >= len(f.buf) }

func (f *zstdFeed) Read(p []byte) (int, error) {
	if f.empty() {
		return 0, errNeedInput
	}
	n := copy(p, f.buf[f.off:])
	f.off += n
	return n, nil
}
