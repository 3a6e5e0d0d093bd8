// Package zinflate holds the zlib inflaters shared by reference.NewInflater
// and fast.NewInflater: [ZlibStream] for zlib-stream transport compression,
// [ZlibPayload] for per-payload zlib, and [Plain] for no compression. Each
// implementation supplies its DEFLATE library ([Flate]: compress/flate and
// compress/zlib, or github.com/klauspost/compress's) and its buffer reuse
// choices in a [Config], and documents the behaviour to its own users; this
// package is where that behaviour lives.
//
// All three follow the [protocols.Inflater] contract: the returned message
// is in a buffer the inflater owns and reuses, valid until the next Inflate
// or Reset; the frame passed in is never kept (what is needed of it is
// copied); Inflate never panics on bad input. [ZlibStream], whose state
// spans the connection, returns an error again on every later call until
// Reset; [ZlibPayload] and [Plain] judge each frame alone.
package zinflate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/cordkit/cordkit/protocols"
)

var (
	_ protocols.Inflater = (*ZlibStream)(nil)
	_ protocols.Inflater = (*ZlibPayload)(nil)
	_ protocols.Inflater = (*Plain)(nil)
)

// Reader is a decompressor that can start over on new input: the readers
// of compress/flate and compress/zlib, and their replacements in
// github.com/klauspost/compress, all are (flate.Resetter, zlib.Resetter).
type Reader interface {
	io.Reader
	// Reset discards the reader's state and makes it read r, with dict as
	// the preset dictionary (for flate, the window of earlier output).
	Reset(r io.Reader, dict []byte) error
}

// Flate is a DEFLATE library: its constructors, with the signatures of
// compress/flate's and compress/zlib's, must return [Reader]s.
type Flate struct {
	// NewReader returns a raw DEFLATE (RFC 1951) reader of r: flate.NewReader.
	NewReader func(r io.Reader) io.ReadCloser
	// NewZlibReader returns a zlib (RFC 1950) reader of r, having read the
	// zlib header: zlib.NewReader.
	NewZlibReader func(r io.Reader) (io.ReadCloser, error)
	// ErrHeader and ErrDictionary are the library's zlib errors for an
	// invalid header and for a preset dictionary (zlib.ErrHeader,
	// zlib.ErrDictionary). [ZlibStream], which reads the header itself,
	// returns them too.
	ErrHeader, ErrDictionary error
}

// resetter returns rc, made by one of a [Flate]'s constructors, as a
// [Reader].
func resetter(rc io.ReadCloser) (Reader, error) {
	r, ok := rc.(Reader)
	if !ok {
		return nil, fmt.Errorf("%T has no Reset(io.Reader, []byte) error method", rc)
	}
	return r, nil
}

// Config is what an implementation sets for its inflaters.
type Config struct {
	// Name starts every error message: the implementation's package name,
	// such as "reference" or "fast".
	Name string
	// MaxMessageSize bounds one decompressed message; a larger one is an
	// error wrapping [ErrTooLarge]. For [ZlibStream] it also bounds the
	// compressed bytes buffered for one message. It must be positive.
	MaxMessageSize int
	// Flate is the DEFLATE library.
	Flate Flate
	// ShrinkEachMessage drops an output or pending buffer bigger than
	// [MaxKeptBuf], left by a huge message, when the next message starts.
	// Otherwise [Plain] and [ZlibPayload] keep such a buffer until Reset,
	// and [ZlibStream] keeps its pending buffer until Reset (it always
	// trims its output buffer).
	ShrinkEachMessage bool
	// PayloadGrowth is the least [ZlibPayload] grows its output buffer by
	// when the buffer is full. Defaults to 512 bytes.
	PayloadGrowth int
}

// again returns b emptied for the next message, as c.ShrinkEachMessage
// says.
func (c *Config) again(b []byte) []byte {
	if c.ShrinkEachMessage {
		return Shrink(b)
	}
	return b[:0]
}

// ErrTooLarge is wrapped when a message exceeds [Config].MaxMessageSize.
var ErrTooLarge = errors.New("message exceeds the inflater's size limit")

// MaxKeptBuf is the largest buffer an inflater keeps after a message or
// Reset; bigger ones, left by a huge message, are dropped.
const MaxKeptBuf = 1 << 20

// Shrink returns b emptied, or nil when b is bigger than [MaxKeptBuf] and
// so too big to keep around between messages or connections.
func Shrink(b []byte) []byte {
	if cap(b) > MaxKeptBuf {
		return nil
	}
	return b[:0]
}

// New returns the inflater for mode with the settings c: [NewPlain],
// [NewZlibStream] or [NewZlibPayload]. For any other mode it returns an
// error wrapping [protocols.ErrNotSupported]: an implementation with zstd
// serves [protocols.CompressZstdStream] before it calls New.
func New(c Config, mode protocols.Compression) (protocols.Inflater, error) {
	switch mode {
	case protocols.CompressNone:
		return NewPlain(c), nil
	case protocols.CompressZlibStream:
		return NewZlibStream(c), nil
	case protocols.CompressZlibPayload:
		return NewZlibPayload(c), nil
	case protocols.CompressZstdStream:
		return nil, fmt.Errorf("%s: %s compression: %w", c.Name, mode, protocols.ErrNotSupported)
	}
	return nil, fmt.Errorf("%s: unknown compression mode %d: %w", c.Name, int(mode), protocols.ErrNotSupported)
}

// ---- CompressNone ----

// Plain serves [protocols.CompressNone]: Inflate copies the frame and
// returns the copy.
type Plain struct {
	c   Config
	out []byte
}

// NewPlain returns an inflater for [protocols.CompressNone].
func NewPlain(c Config) *Plain { return &Plain{c: c} }

// Inflate implements [protocols.Inflater].
func (p *Plain) Inflate(frame []byte) ([]byte, bool, error) {
	if len(frame) > p.c.MaxMessageSize {
		return nil, false, fmt.Errorf("%s: inflate: %d bytes: %w", p.c.Name, len(frame), ErrTooLarge)
	}
	p.out = append(p.c.again(p.out), frame...)
	return p.out, true, nil
}

// Reset implements [protocols.Inflater].
func (p *Plain) Reset() { p.out = Shrink(p.out) }

// ---- CompressZlibPayload ----

// ZlibPayload serves [protocols.CompressZlibPayload]: every frame is a
// whole zlib stream, inflated by one reused reader, whose Adler-32 trailer
// is checked. A frame that starts with '{' is not zlib (a zlib header never
// starts with 0x7B) and is returned as is, so it also accepts the
// uncompressed payloads of that mode.
type ZlibPayload struct {
	c   Config
	src bytes.Reader
	zr  Reader // nil until first use
	out []byte
}

// NewZlibPayload returns an inflater for [protocols.CompressZlibPayload].
func NewZlibPayload(c Config) *ZlibPayload {
	if c.PayloadGrowth <= 0 {
		c.PayloadGrowth = 512
	}
	return &ZlibPayload{c: c}
}

// Inflate implements [protocols.Inflater].
func (z *ZlibPayload) Inflate(frame []byte) ([]byte, bool, error) {
	if len(frame) > 0 && frame[0] == '{' {
		// Uncompressed JSON: 0x7B has compression method 11, never zlib.
		if len(frame) > z.c.MaxMessageSize {
			return nil, false, fmt.Errorf("%s: inflate: %d bytes: %w", z.c.Name, len(frame), ErrTooLarge)
		}
		z.out = append(z.c.again(z.out), frame...)
		return z.out, true, nil
	}
	z.src.Reset(frame)
	defer z.src.Reset(nil) // do not retain frame
	var err error
	if z.zr == nil {
		var zr io.ReadCloser
		if zr, err = z.c.Flate.NewZlibReader(&z.src); err == nil {
			z.zr, err = resetter(zr)
		}
	} else {
		err = z.zr.Reset(&z.src, nil)
	}
	if err != nil {
		return nil, false, fmt.Errorf("%s: inflate zlib payload: %w", z.c.Name, err)
	}
	z.out = z.c.again(z.out)
	for {
		if len(z.out) == cap(z.out) {
			z.out = slices.Grow(z.out, max(z.c.PayloadGrowth, cap(z.out)))
		}
		n, err := z.zr.Read(z.out[len(z.out):cap(z.out)])
		z.out = z.out[:len(z.out)+n]
		if len(z.out) > z.c.MaxMessageSize {
			return nil, false, fmt.Errorf("%s: inflate zlib payload: %w", z.c.Name, ErrTooLarge)
		}
		if err == io.EOF { // the zlib reader has checked the Adler-32 trailer
			return z.out, true, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("%s: inflate zlib payload: %w", z.c.Name, err)
		}
	}
}

// Reset implements [protocols.Inflater].
func (z *ZlibPayload) Reset() { z.out = Shrink(z.out) }

// ---- CompressZlibStream ----

// syncFlushMarker ends every zlib-stream message: the empty stored block
// that a Z_SYNC_FLUSH writes (discord-protocol.md §C.3).
var syncFlushMarker = []byte{0x00, 0x00, 0xff, 0xff}

// ZlibStream serves [protocols.CompressZlibStream]: one DEFLATE context for
// the whole connection. Frames are buffered until the buffer ends with the
// sync-flush marker 00 00 FF FF; the buffered bytes are then fed to the
// connection's long-lived decompressor, and its output is the message. A
// message in a single frame is decompressed straight from the frame,
// without a copy. The two-byte zlib header is read here; the Adler-32
// trailer, which only a final block is followed by, is not checked.
//
// A DEFLATE decompressor pulls its input from an io.Reader and remembers
// the first error that reader returns, so the input must never run dry in
// the middle of the connection's stream. The decompressor therefore reads
// from src, a *bytes.Reader holding the bytes of the current message (for
// which klauspost's decompressor has a specialised loop, without an
// interface call per byte), and Inflate stops calling Read as soon as src
// is used up and the decompressor has handed over all its output. Since a
// message ends with an empty stored block (the sync-flush marker), the
// decompressor is then at a block boundary with nothing buffered, and
// simply continues with the next message's bytes.
//
// One case needs more: when all of a message's output was already handed
// over before the marker was read (a message that ends exactly where the
// 32 KiB window wraps, or an empty message), the decompressor asks for the
// next block before Read can return; src answers io.EOF, which the
// decompressor reports as io.ErrUnexpectedEOF. A DEFLATE stream cut at a
// block boundary continues in a fresh decompressor primed with the last 32
// KiB of output (RFC 1951 §3.2: back references reach 32 KiB), so Inflate
// then resets the decompressor with that window as its dictionary. The
// window costs no copy per message: out keeps at least the last 32 KiB of
// output in front of the current message, and only moves it when room runs
// short.
type ZlibStream struct {
	c       Config
	src     bytes.Reader
	fr      Reader // the connection's decompressor; nil until first use
	started bool   // the zlib header has been read
	ended   bool   // the stream had its final block
	pending []byte // frames of a message whose last frame has not come
	out     []byte // earlier output (at least a window of it), then the current message
	err     error  // sticky, until Reset
}

const (
	// flateWindow is DEFLATE's window: back references reach this far.
	flateWindow = 32 << 10
	// streamBufSize is the initial size of out: history plus room to read.
	streamBufSize = 4 * flateWindow
)

// NewZlibStream returns an inflater for [protocols.CompressZlibStream].
func NewZlibStream(c Config) *ZlibStream { return &ZlibStream{c: c} }

// Inflate implements [protocols.Inflater].
func (z *ZlibStream) Inflate(frame []byte) ([]byte, bool, error) {
	if z.err != nil {
		return nil, false, z.err
	}
	var in []byte
	if len(z.pending) == 0 && bytes.HasSuffix(frame, syncFlushMarker) {
		in = frame // the usual case: a whole message in one frame
	} else {
		if len(z.pending)+len(frame) > z.c.MaxMessageSize {
			z.err = fmt.Errorf("%s: inflate zlib-stream: buffered frames: %w", z.c.Name, ErrTooLarge)
			return nil, false, z.err
		}
		z.pending = append(z.pending, frame...)
		if !bytes.HasSuffix(z.pending, syncFlushMarker) {
			return nil, false, nil
		}
		in = z.pending
	}
	msg, err := z.inflate(in)
	z.pending = z.c.again(z.pending)
	if err != nil {
		z.err = fmt.Errorf("%s: inflate zlib-stream: %w", z.c.Name, err)
		return nil, false, z.err
	}
	return msg, true, nil
}

// inflate decompresses the complete message in.
func (z *ZlibStream) inflate(in []byte) ([]byte, error) {
	if z.ended {
		return nil, errors.New("data after the end of the zlib stream")
	}
	z.src.Reset(in)
	defer z.src.Reset(nil) // do not retain in: it may be the caller's frame
	if !z.started {
		if err := z.readHeader(); err != nil {
			return nil, err
		}
	}
	z.trimBuffer()
	start := len(z.out)
	for {
		// With more than a window of room, one Read hands over everything
		// the decompressor holds (at most one window).
		start = z.makeRoom(start)
		room := cap(z.out) - len(z.out)
		n, err := z.fr.Read(z.out[len(z.out):cap(z.out)])
		z.out = z.out[:len(z.out)+n]
		if len(z.out)-start > z.c.MaxMessageSize {
			return nil, ErrTooLarge
		}
		switch {
		case err == nil:
			if z.src.Len() == 0 && n < room {
				return z.out[start:], nil
			}
		case err == io.ErrUnexpectedEOF && z.src.Len() == 0:
			// Ran dry at the block boundary after the marker; see the type doc.
			if err := z.fr.Reset(&z.src, z.window()); err != nil {
				return nil, err
			}
			return z.out[start:], nil
		case err == io.EOF:
			// A final block: the stream is over (the Adler-32 trailer, if
			// any, is not checked). Later data is an error.
			z.ended = true
			return z.out[start:], nil
		default:
			return nil, err
		}
	}
}

// readHeader consumes the two-byte zlib header (RFC 1950 §2.2) of the
// connection's first message and starts the decompressor on what follows.
func (z *ZlibStream) readHeader() error {
	cmf, err := z.src.ReadByte()
	if err != nil {
		return z.c.Flate.ErrHeader
	}
	flg, err := z.src.ReadByte()
	if err != nil {
		return z.c.Flate.ErrHeader
	}
	if cmf&0x0f != 8 || cmf>>4 > 7 || (uint16(cmf)<<8|uint16(flg))%31 != 0 {
		return z.c.Flate.ErrHeader
	}
	if flg&0x20 != 0 {
		return z.c.Flate.ErrDictionary // Discord never sets a preset dictionary
	}
	if z.fr == nil {
		fr, err := resetter(z.c.Flate.NewReader(&z.src))
		if err != nil {
			return err
		}
		z.fr = fr
	} else if err := z.fr.Reset(&z.src, nil); err != nil {
		return err
	}
	z.started = true
	z.out = z.out[:0]
	return nil
}

// trimBuffer allocates out, or replaces it when a huge message left it
// bigger than MaxKeptBuf, keeping the window.
func (z *ZlibStream) trimBuffer() {
	switch {
	case cap(z.out) == 0:
		z.out = make([]byte, 0, streamBufSize)
	case cap(z.out) > MaxKeptBuf:
		buf := make([]byte, 0, streamBufSize)
		z.out = append(buf, z.window()...)
	}
}

// makeRoom makes sure out has more than a window of free room, for the
// message that starts at start, and returns where that message starts
// afterwards. It drops the output before the window that precedes the
// message (the message, and the window before it, are all that a fallback
// Reset can need), moving the rest to the front of out, and grows out only
// when that does not free enough.
func (z *ZlibStream) makeRoom(start int) int {
	if cap(z.out)-len(z.out) > flateWindow {
		return start
	}
	drop := max(0, start-flateWindow)
	if cap(z.out)-(len(z.out)-drop) > 2*flateWindow { // some margin, not to move at every Read
		z.out = z.out[:copy(z.out, z.out[drop:])]
		return start - drop
	}
	grown := make([]byte, len(z.out)-drop, 2*cap(z.out)+flateWindow)
	copy(grown, z.out[drop:])
	z.out = grown
	return start - drop
}

// window returns the last flateWindow bytes of output.
func (z *ZlibStream) window() []byte {
	return z.out[max(0, len(z.out)-flateWindow):]
}

// Reset implements [protocols.Inflater].
func (z *ZlibStream) Reset() {
	z.started, z.ended, z.err = false, false, nil
	z.pending = Shrink(z.pending)
	z.out = Shrink(z.out)
	z.src.Reset(nil)
}
