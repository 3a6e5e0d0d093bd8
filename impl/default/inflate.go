package reference

import (
	"compress/flate"
	"compress/zlib"

	"github.com/cordkit/cordkit/internal/zinflate"
	"github.com/cordkit/cordkit/protocols"
)

var (
	_ protocols.InflaterFunc = NewInflater
	_ protocols.InflaterFunc = InflaterOptions{}.New
)

// DefaultMaxInflatedSize is the default largest decompressed message, 64
// MiB: several times the largest GUILD_CREATE Discord sends, small enough
// that a corrupt or hostile stream cannot exhaust memory.
const DefaultMaxInflatedSize = 64 << 20

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
// The DEFLATE decompressor is the standard library's compress/flate (and
// compress/zlib for payloads).
//
// In every mode the returned message is in a buffer the inflater owns and
// reuses: it is valid until the next Inflate or Reset, and the caller may
// reuse the frame as soon as Inflate returns. Inflate never panics on bad
// input; a corrupt stream returns an error, and every later call returns it
// too until Reset. Inflaters allocate only when a message outgrows their
// buffers.
func (o InflaterOptions) New(mode protocols.Compression) (protocols.Inflater, error) {
	c := zinflate.Config{Name: "reference", MaxMessageSize: o.MaxMessageSize, Flate: stdFlate}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = DefaultMaxInflatedSize
	}
	return zinflate.New(c, mode)
}

// stdFlate is the standard library's DEFLATE.
var stdFlate = zinflate.Flate{
	NewReader: flate.NewReader, NewZlibReader: zlib.NewReader,
	ErrHeader: zlib.ErrHeader, ErrDictionary: zlib.ErrDictionary,
}
