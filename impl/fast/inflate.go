package fast

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zlib"

	"github.com/cordkit/cordkit/protocols"
)

var (
	_ protocols.Inflater = (*zlibStreamInflater)(nil)
	_ protocols.Inflater = (*zstdStreamInflater)(nil)
	_ protocols.Inflater = (*zlibPayloadInflater)(nil)
	_ protocols.Inflater = (*plainInflater)(nil)

	_ protocols.InflaterFunc = NewInflater
	_ protocols.InflaterFunc = InflaterOptions{}.New
)

// DefaultMaxInflatedSize is the default largest decompressed message, 64
// MiB, as in the reference inflater: several times the largest
// GUILD_CREATE Discord sends, small enough that a corrupt or hostile
// stream cannot exhaust memory.
const DefaultMaxInflatedSize = 64 << 20

// DefaultMaxZstdWindow is the default largest zstd window the zstd-stream
// inflater accepts, 8 MiB: the window every zstd decoder is advised to
// support (RFC 8878 §3.1.1.1.2). Discord's frames declare 256 KiB.
const DefaultMaxZstdWindow = 8 << 20

// InflaterOptions holds the settings of the fast inflaters. The zero value
// gives the defaults. Its New method has the shape of the TypeSheet's
// NewInflater field.
type InflaterOptions struct {
	// MaxMessageSize bounds one decompressed message; a larger one is an
	// error, after which only Reset helps. It also bounds the compressed
	// bytes buffered for one message. Defaults to [DefaultMaxInflatedSize].
	MaxMessageSize int
	// MaxZstdWindow bounds the window a zstd-stream frame may declare, and
	// with it the decoder's memory (about the window plus 256 KiB). A
	// frame that declares more is an error. Defaults to
	// [DefaultMaxZstdWindow].
	MaxZstdWindow int
}

// NewInflater returns the fast [protocols.Inflater] for mode, with default
// [InflaterOptions]. It is a [protocols.InflaterFunc].
func NewInflater(mode protocols.Compression) (protocols.Inflater, error) {
	return InflaterOptions{}.New(mode)
}

// New returns the fast [protocols.Inflater] for mode:
//
//   - [protocols.CompressZlibStream]: the reference algorithm (one DEFLATE
//     context per connection; frames are buffered until they end with the
//     sync-flush marker 00 00 FF FF, then inflated at once) on
//     github.com/klauspost/compress/flate, read through a *bytes.Reader,
//     for which that decompressor has a specialised loop.
//   - [protocols.CompressZstdStream]: one zstd stream per connection,
//     decoded by github.com/klauspost/compress/zstd with concurrency 1 (so
//     it starts no goroutine and needs no Close) and its low-memory mode;
//     see the package doc, "zstd-stream", for where a message ends.
//   - [protocols.CompressZlibPayload]: every frame is a whole zlib stream,
//     inflated by one reused reader; a frame that starts with '{' is plain
//     JSON and is returned as is.
//   - [protocols.CompressNone]: the frame is copied and returned.
//
// In every mode the returned message is in a buffer the inflater owns and
// reuses: it is valid until the next Inflate or Reset, and the caller may
// reuse the frame as soon as Inflate returns (Inflate copies what it keeps
// of it). Inflate never panics on bad input; a corrupt stream returns an
// error, and every later call returns it too until Reset. Once its buffers
// have grown to the connection's largest message, an inflater allocates
// nothing per message.
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
		window := o.MaxZstdWindow
		if window <= 0 {
			window = DefaultMaxZstdWindow
		}
		return newZstdStreamInflater(limit, window)
	}
	return nil, fmt.Errorf("fast: unknown compression mode %d: %w", int(mode), protocols.ErrNotSupported)
}

// errTooLarge is wrapped when a message exceeds InflaterOptions.MaxMessageSize.
var errTooLarge = errors.New("message exceeds the inflater's size limit")

// maxKeptBuf is the largest buffer kept after a message: bigger ones, left
// by a huge message, are dropped when the next message starts.
const maxKeptBuf = 1 << 20

// shrink drops b when it is too big to keep around between messages.
func shrink(b []byte) []byte {
	if cap(b) > maxKeptBuf {
		return nil
	}
	return b[:0]
}

// ---- CompressNone ----

// plainInflater serves CompressNone.
type plainInflater struct {
	limit int
	out   []byte
}

func (p *plainInflater) Inflate(frame []byte) ([]byte, bool, error) {
	if len(frame) > p.limit {
		return nil, false, fmt.Errorf("fast: inflate: %d bytes: %w", len(frame), errTooLarge)
	}
	p.out = append(shrink(p.out), frame...)
	return p.out, true, nil
}

func (p *plainInflater) Reset() { p.out = shrink(p.out) }

// ---- CompressZlibPayload ----

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
			return nil, false, fmt.Errorf("fast: inflate: %d bytes: %w", len(frame), errTooLarge)
		}
		z.out = append(shrink(z.out), frame...)
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
		return nil, false, fmt.Errorf("fast: inflate zlib payload: %w", err)
	}
	z.out = shrink(z.out)
	for {
		if len(z.out) == cap(z.out) {
			z.out = slices.Grow(z.out, max(4<<10, cap(z.out)))
		}
		n, err := z.zr.Read(z.out[len(z.out):cap(z.out)])
		z.out = z.out[:len(z.out)+n]
		if len(z.out) > z.limit {
			return nil, false, fmt.Errorf("fast: inflate zlib payload: %w", errTooLarge)
		}
		if err == io.EOF { // the zlib reader has checked the Adler-32 trailer
			return z.out, true, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("fast: inflate zlib payload: %w", err)
		}
	}
}

func (z *zlibPayloadInflater) Reset() { z.out = shrink(z.out) }

// ---- CompressZlibStream ----

// syncFlushMarker ends every zlib-stream message: the empty stored block
// that a Z_SYNC_FLUSH writes.
var syncFlushMarker = []byte{0x00, 0x00, 0xff, 0xff}

// zlibStreamInflater serves CompressZlibStream, with the algorithm of the
// reference inflater (impl/default, whose type doc explains it in full):
//
// The connection's decompressor reads the current message from src, and
// Inflate stops calling Read as soon as src is used up and the
// decompressor has handed over all its output. A message ends with an
// empty stored block, so the decompressor is then at a block boundary with
// nothing buffered and continues with the next message's bytes. When it
// asks for the next block before handing over the last output (the
// message ended where the 32 KiB window wraps, or was empty), src answers
// io.EOF, which the decompressor reports as io.ErrUnexpectedEOF; Inflate
// then restarts it with the last 32 KiB of output as its dictionary, which
// is how a DEFLATE stream cut at a block boundary continues (RFC 1951
// §3.2). out keeps at least that window in front of the current message.
//
// Unlike the reference, src is a *bytes.Reader: klauspost's decompressor
// decodes Huffman blocks from one in a specialised loop, without an
// interface call per byte.
type zlibStreamInflater struct {
	limit   int
	src     bytes.Reader
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
			z.err = fmt.Errorf("fast: inflate zlib-stream: buffered frames: %w", errTooLarge)
			return nil, false, z.err
		}
		z.pending = append(z.pending, frame...)
		if !bytes.HasSuffix(z.pending, syncFlushMarker) {
			return nil, false, nil
		}
		in = z.pending
	}
	msg, err := z.inflate(in)
	z.pending = shrink(z.pending)
	if err != nil {
		z.err = fmt.Errorf("fast: inflate zlib-stream: %w", err)
		return nil, false, z.err
	}
	return msg, true, nil
}

// inflate decompresses the complete message in.
func (z *zlibStreamInflater) inflate(in []byte) ([]byte, error) {
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
		if len(z.out)-start > z.limit {
			return nil, errTooLarge
		}
		switch {
		case err == nil:
			if z.src.Len() == 0 && n < room {
				return z.out[start:], nil
			}
		case err == io.ErrUnexpectedEOF && z.src.Len() == 0:
			// Ran dry at the block boundary after the marker; see the type doc.
			if err := z.fr.(flate.Resetter).Reset(&z.src, z.window()); err != nil {
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
	cmf, err := z.src.ReadByte()
	if err != nil {
		return zlib.ErrHeader
	}
	flg, err := z.src.ReadByte()
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
		z.fr = flate.NewReader(&z.src)
	} else if err := z.fr.(flate.Resetter).Reset(&z.src, nil); err != nil {
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
// message, moving the rest to the front of out, and grows out only when
// that does not free enough.
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
	z.pending = shrink(z.pending)
	z.out = shrink(z.out)
	z.src.Reset(nil)
}
