package reference

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/cordkit/cordkit/protocols"
)

var (
	_ protocols.Inflater = (*zlibStreamInflater)(nil)
	_ protocols.Inflater = (*zlibPayloadInflater)(nil)
	_ protocols.Inflater = (*plainInflater)(nil)

	_ protocols.InflaterFunc = NewInflater
	_ protocols.InflaterFunc = InflaterOptions{}.New
)

// DefaultMaxInflatedSize is the default largest decompressed message, 64
// MiB: several times the largest GUILD_CREATE Discord sends, small enough
// that a corrupt or hostile stream cannot exhaust memory.
const DefaultMaxInflatedSize = 64 << 20

// syncFlushMarker ends every zlib-stream message: the empty stored block
// that a Z_SYNC_FLUSH writes (discord-protocol.md §C.3).
var syncFlushMarker = []byte{0x00, 0x00, 0xff, 0xff}

// InflaterOptions holds the settings of the reference inflaters. The zero
// value gives the defaults. Its New method has the shape of the TypeSheet's
// NewInflater field.
type InflaterOptions struct {
	// MaxMessageSize bounds one decompressed message; a larger one is an
	// error, after which only Reset helps. For zlib-stream it also bounds
	// the compressed bytes buffered for one message. Defaults to
	// [DefaultMaxInflatedSize].
	MaxMessageSize int
}

// NewInflater returns the reference [protocols.Inflater] for mode, with
// default [InflaterOptions]. It is a [protocols.InflaterFunc].
func NewInflater(mode protocols.Compression) (protocols.Inflater, error) {
	return InflaterOptions{}.New(mode)
}

// New returns the reference [protocols.Inflater] for mode:
//
//   - [protocols.CompressZlibStream]: one DEFLATE context for the whole
//     connection. Frames are buffered until the buffer ends with the
//     sync-flush marker 00 00 FF FF; the buffered bytes are then fed to the
//     connection's long-lived decompressor, and its output is the message.
//     A message in a single frame is decompressed straight from the frame,
//     without a copy.
//   - [protocols.CompressZlibPayload]: every frame is a whole zlib stream,
//     inflated by one reused reader. A frame that starts with '{' is not
//     zlib (a zlib header never starts with 0x7B) and is returned as is, so
//     the inflater also accepts the uncompressed payloads of that mode.
//   - [protocols.CompressNone]: the frame is copied and returned.
//   - [protocols.CompressZstdStream]: an error wrapping
//     [protocols.ErrNotSupported]; impl/fast adds zstd.
//
// In every mode the returned message is in a buffer the inflater owns and
// reuses: it is valid until the next Inflate or Reset, and the caller may
// reuse the frame as soon as Inflate returns. Inflate never panics on bad
// input; a corrupt stream returns an error, and every later call returns it
// too until Reset. Inflaters allocate only when a message outgrows their
// buffers.
func (o InflaterOptions) New(mode protocols.Compression) (protocols.Inflater, error) {
	limit := o.MaxMessageSize
	if limit <= 0 {
		limit = DefaultMaxInflatedSize
	}
	switch mode {
	case protocols.CompressNone:
		return &plainInflater{limit: limit}, nil
	case protocols.CompressZlibStream:
		return &zlibStreamInflater{limit: limit}, nil
	case protocols.CompressZlibPayload:
		return &zlibPayloadInflater{limit: limit}, nil
	case protocols.CompressZstdStream:
		return nil, fmt.Errorf("reference: %s compression: %w", mode, protocols.ErrNotSupported)
	}
	return nil, fmt.Errorf("reference: unknown compression mode %d: %w", int(mode), protocols.ErrNotSupported)
}

// errTooLarge is wrapped when a message exceeds InflaterOptions.MaxMessageSize.
var errTooLarge = errors.New("message exceeds the inflater's size limit")

// plainInflater serves CompressNone.
type plainInflater struct {
	limit int
	out   []byte
}

func (p *plainInflater) Inflate(frame []byte) ([]byte, bool, error) {
	if len(frame) > p.limit {
		return nil, false, fmt.Errorf("reference: inflate: %d bytes: %w", len(frame), errTooLarge)
	}
	p.out = append(p.out[:0], frame...)
	return p.out, true, nil
}

func (p *plainInflater) Reset() { p.out = shrink(p.out) }

// zlibPayloadInflater serves CompressZlibPayload: one zlib stream per frame.
type zlibPayloadInflater struct {
	limit int
	src   bytes.Reader
	zr    io.ReadCloser // reused through zlib.Resetter; nil until first use
	out   []byte
}

func (z *zlibPayloadInflater) Inflate(frame []byte) ([]byte, bool, error) {
	if len(frame) > 0 && frame[0] == '{' {
		// Uncompressed JSON: 0x7B has compression method 11, never zlib.
		if len(frame) > z.limit {
			return nil, false, fmt.Errorf("reference: inflate: %d bytes: %w", len(frame), errTooLarge)
		}
		z.out = append(z.out[:0], frame...)
		return z.out, true, nil
	}
	z.src.Reset(frame)
	defer z.src.Reset(nil) // do not retain frame
	var err error
	if z.zr == nil {
		z.zr, err = zlib.NewReader(&z.src)
	} else {
		err = z.zr.(zlib.Resetter).Reset(&z.src, nil)
	}
	if err != nil {
		return nil, false, fmt.Errorf("reference: inflate zlib payload: %w", err)
	}
	z.out = z.out[:0]
	for {
		if len(z.out) == cap(z.out) {
			z.out = slices.Grow(z.out, max(512, cap(z.out)))
		}
		n, err := z.zr.Read(z.out[len(z.out):cap(z.out)])
		z.out = z.out[:len(z.out)+n]
		if len(z.out) > z.limit {
			return nil, false, fmt.Errorf("reference: inflate zlib payload: %w", errTooLarge)
		}
		if err == io.EOF { // the zlib reader has checked the Adler-32 trailer
			return z.out, true, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("reference: inflate zlib payload: %w", err)
		}
	}
}

func (z *zlibPayloadInflater) Reset() { z.out = shrink(z.out) }

// zlibStreamInflater serves CompressZlibStream.
//
// compress/flate pulls its input from an io.Reader and remembers the first
// error that reader returns, so the input must never run dry in the middle
// of the connection's stream. The decompressor therefore reads from feed,
// which holds the bytes of the current message; Inflate stops calling Read
// as soon as feed is used up and the decompressor has handed over all its
// output. Since a message ends with an empty stored block (the sync-flush
// marker), the decompressor is then at a block boundary with nothing
// buffered, and simply continues with the next message's bytes.
//
// One case needs more: when all of a message's output was already handed
// over before the marker was read (a message that ends exactly where the
// 32 KiB window wraps, or an empty message), the decompressor asks for the
// next block before Read can return, and feed has to answer with an error.
// A DEFLATE stream cut at a block boundary continues in a fresh
// decompressor primed with the last 32 KiB of output (RFC 1951 §3.2: back
// references reach 32 KiB), so Inflate then resets the decompressor with
// that window as its dictionary. The window costs no copy per message: out
// keeps at least the last 32 KiB of output in front of the current message,
// and only moves it when room runs short.
type zlibStreamInflater struct {
	limit   int
	feed    feeder
	fr      io.ReadCloser // the connection's decompressor; nil until first use
	started bool          // the zlib header has been read
	ended   bool          // the stream had its final block
	pending []byte        // frames of a message whose last frame has not come
	out     []byte        // earlier output (at least a window of it), then the current message
	err     error         // sticky, until Reset
}

const (
	// flateWindow is DEFLATE's window: back references reach this far.
	flateWindow = 32 << 10
	// streamBufSize is the initial size of out: history plus room to read.
	streamBufSize = 4 * flateWindow
	// maxKeptBuf is the largest buffer kept after a message: bigger ones,
	// left by a huge message, are dropped when the next message starts.
	maxKeptBuf = 1 << 20
)

func (z *zlibStreamInflater) Inflate(frame []byte) ([]byte, bool, error) {
	if z.err != nil {
		return nil, false, z.err
	}
	var in []byte
	if len(z.pending) == 0 && bytes.HasSuffix(frame, syncFlushMarker) {
		in = frame // the usual case: a whole message in one frame
	} else {
		if len(z.pending)+len(frame) > z.limit {
			z.err = fmt.Errorf("reference: inflate zlib-stream: buffered frames: %w", errTooLarge)
			return nil, false, z.err
		}
		z.pending = append(z.pending, frame...)
		if !bytes.HasSuffix(z.pending, syncFlushMarker) {
			return nil, false, nil
		}
		in = z.pending
	}
	msg, err := z.inflate(in)
	z.pending = z.pending[:0]
	if err != nil {
		z.err = fmt.Errorf("reference: inflate zlib-stream: %w", err)
		return nil, false, z.err
	}
	return msg, true, nil
}

// inflate decompresses the complete message in.
func (z *zlibStreamInflater) inflate(in []byte) ([]byte, error) {
	if z.ended {
		return nil, errors.New("data after the end of the zlib stream")
	}
	z.feed.reset(in)
	defer z.feed.reset(nil) // do not retain in: it may be the caller's frame
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
		if len(z.out)-start > z.limit {
			return nil, errTooLarge
		}
		switch {
		case err == nil:
			if z.feed.empty() && n < room {
				return z.out[start:], nil
			}
		case errors.Is(err, errNeedInput) && z.feed.empty():
			// Ran dry at the block boundary after the marker; see the type doc.
			if err := z.fr.(flate.Resetter).Reset(&z.feed, z.window()); err != nil {
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
func (z *zlibStreamInflater) readHeader() error {
	cmf, err := z.feed.ReadByte()
	if err != nil {
		return zlib.ErrHeader
	}
	flg, err := z.feed.ReadByte()
	if err != nil {
		return zlib.ErrHeader
	}
	if cmf&0x0f != 8 || cmf>>4 > 7 || (uint16(cmf)<<8|uint16(flg))%31 != 0 {
		return zlib.ErrHeader
	}
	if flg&0x20 != 0 {
		return zlib.ErrDictionary // Discord never sets a preset dictionary
	}
	if z.fr == nil {
		z.fr = flate.NewReader(&z.feed)
	} else if err := z.fr.(flate.Resetter).Reset(&z.feed, nil); err != nil {
		return err
	}
	z.started = true
	z.out = z.out[:0]
	return nil
}

// trimBuffer allocates out, or replaces it when a huge message left it
// bigger than maxKeptBuf, keeping the window.
func (z *zlibStreamInflater) trimBuffer() {
	switch {
	case cap(z.out) == 0:
		z.out = make([]byte, 0, streamBufSize)
	case cap(z.out) > maxKeptBuf:
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
func (z *zlibStreamInflater) makeRoom(start int) int {
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
func (z *zlibStreamInflater) window() []byte {
	return z.out[max(0, len(z.out)-flateWindow):]
}

func (z *zlibStreamInflater) Reset() {
	z.started, z.ended, z.err = false, false, nil
	z.pending = shrink(z.pending[:0])
	z.out = z.out[:0]
	if cap(z.out) > maxKeptBuf {
		z.out = nil
	}
	z.feed.reset(nil)
}

// errNeedInput is what feeder returns when the decompressor wants more than
// the current message.
var errNeedInput = errors.New("reference: inflater needs more input")

// feeder is the decompressor's input: the bytes of the current message. It
// is an io.ByteReader, so compress/flate reads exactly the bytes it needs
// instead of buffering ahead.
type feeder struct {
	buf []byte
	off int
}

func (f *feeder) reset(b []byte) { f.buf, f.off = b, 0 }

func (f *feeder) empty() bool { return f.off >= len(f.buf) }

func (f *feeder) Read(p []byte) (int, error) {
	if f.empty() {
		return 0, errNeedInput
	}
	n := copy(p, f.buf[f.off:])
	f.off += n
	return n, nil
}

func (f *feeder) ReadByte() (byte, error) {
	if f.empty() {
		return 0, errNeedInput
	}
	b := f.buf[f.off]
	f.off++
	return b, nil
}

// shrink drops b when it is too big to keep around between connections.
func shrink(b []byte) []byte {
	if cap(b) > maxKeptBuf {
		return nil
	}
	return b[:0]
}
