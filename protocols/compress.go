package protocols

// Compression is a gateway compression mode.
type Compression int

// Compression modes.
const (
	// CompressNone sends every payload as plain text.
	CompressNone Compression = iota
	// CompressZlibStream is transport compression (?compress=zlib-stream):
	// one zlib context spans the whole connection, and a message ends with
	// the sync-flush marker 00 00 FF FF, possibly after several frames.
	CompressZlibStream
	// CompressZlibPayload is payload compression (IDENTIFY compress:true):
	// some payloads arrive as binary frames, each a whole zlib stream.
	CompressZlibPayload
	// CompressZstdStream is transport compression (?compress=zstd-stream):
	// one zstd stream spans the whole connection, and a message is
	// complete when the decoder has used up all the input received since
	// the last message and that input ends at a block boundary. Discord
	// flushes after each payload (ending a block, not the frame) and sends
	// one payload per websocket message; there is no end marker. It is
	// optional: an InflaterFunc without zstd returns [ErrNotSupported].
	CompressZstdStream
)

// String returns the mode's query value, or a name for payload modes.
func (c Compression) String() string {
	switch c {
	case CompressZlibStream:
		return "zlib-stream"
	case CompressZlibPayload:
		return "zlib-payload"
	case CompressZstdStream:
		return "zstd-stream"
	}
	return "none"
}

// Inflater decompresses what one gateway connection receives. One Inflater
// serves one connection at a time: for zlib-stream, a single inflate
// context spans all the connection's messages, and one message may span
// several websocket frames.
//
// Rules (quoted by the conformance suite):
//   - A message split over several frames is returned whole when its last frame arrives.
//   - Reset starts a new stream, for a new connection.
//
// An Inflater is used by one goroutine at a time. Implementations should
// pass [github.com/cordkit/cordkit/conformance.TestInflater].
type Inflater interface {
	// Inflate feeds one binary frame. When the frame completes a message it
	// returns the message and done=true; the message is valid until the
	// next call. Otherwise it returns done=false and keeps what it needs of
	// frame (it must copy: frame is not retained past the call). A corrupt
	// stream returns an error, after which only Reset helps.
	Inflate(frame []byte) (msg []byte, done bool, err error)
	// Reset discards all state, for a new connection.
	Reset()
}

// InflaterFunc builds a new Inflater for a compression mode, or returns
// [ErrNotSupported].
type InflaterFunc func(mode Compression) (Inflater, error)
