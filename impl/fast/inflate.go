package fast

import (
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zlib"

	"github.com/cordkit/cordkit/internal/zinflate"
	"github.com/cordkit/cordkit/protocols"
)

var (
	_ protocols.Inflater = (*zstdStreamInflater)(nil)

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
// nothing per message. A buffer bigger than 1 MiB, left by a huge message,
// is dropped when the next message starts, so that an idle connection does
// not hold it.
func (o InflaterOptions) New(mode protocols.Compression) (protocols.Inflater, error) {
	limit := o.MaxMessageSize
	if limit <= 0 {
		limit = DefaultMaxInflatedSize
	}
	if mode == protocols.CompressZstdStream {
		window := o.MaxZstdWindow
		if window <= 0 {
			window = DefaultMaxZstdWindow
		}
		return newZstdStreamInflater(limit, window)
	}
	return zinflate.New(zinflate.Config{
		Name:              "fast",
		MaxMessageSize:    limit,
		Flate:             klauspostFlate,
		ShrinkEachMessage: true,    // an idle connection keeps no huge buffer
		PayloadGrowth:     4 << 10, // fewer steps to a payload's size
	}, mode)
}

// klauspostFlate is github.com/klauspost/compress's DEFLATE, whose
// decompressor reads a *bytes.Reader (as zinflate.ZlibStream gives it)
// without an interface call per byte.
var klauspostFlate = zinflate.Flate{
	NewReader: flate.NewReader, NewZlibReader: zlib.NewReader,
	ErrHeader: zlib.ErrHeader, ErrDictionary: zlib.ErrDictionary,
}
