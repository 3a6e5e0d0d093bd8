// Package fast holds cordkit's fast implementations of the protocols: they
// do the same job as the reference implementations of impl/default, and
// pass the same conformance suites, faster.
//
// So far it has four parts: [Codec], built on github.com/bytedance/sonic,
// whose DecodeEnvelope finds op, s, t and d with a hand-written scanner
// and does not copy d; [NewDispatcher], a [protocols.Dispatcher] whose
// Dispatch takes no lock and allocates nothing when no WaitFor is pending;
// and [NewInflater], a [protocols.InflaterFunc] built on
// github.com/klauspost/compress that reuses its buffers for the whole
// connection and adds zstd-stream, which the reference lacks; and
// [Dialer], the reference websocket client set up so that an idle
// connection holds about a third of the memory. [TypeSheet]
// returns a [protocols.TypeSheet] that sets only the parts this package
// improves; nil fields keep the reference implementations.
//
// # Which byte slices a handler may keep
//
// [Codec.DecodeEnvelope] sets env.D to a sub-slice of its input: the
// decompressed frame. A shard reuses that buffer for the next frame, so
// [protocols.Event.Data] is valid only while the handler runs; a handler
// that keeps it, or hands it to another goroutine, must copy it first
// (bytes.Clone). Slices returned by [Codec.Marshal] are the caller's, and
// [Codec.Unmarshal] never keeps its input: strings and json.RawMessage
// fields it fills are copies.
//
// A message returned by an Inflater's Inflate lives in a buffer the
// Inflater reuses: it is valid until the next Inflate or Reset, as
// [protocols.Inflater] says, and the frame passed in is never kept (what
// Inflate needs of it is copied). The Codec's env.D points into that
// buffer, hence the rule above.
//
// # zstd-stream
//
// With ?compress=zstd-stream Discord compresses everything it sends on a
// connection as one zstd stream: one frame, never ended, with one
// decompression context for the life of the connection ("all data needs
// to be processed through a zstd decompression context that stays alive
// for the lifetime of the gateway connection"). After each payload its
// encoder flushes (ZSTD_e_flush), which ends the current block without
// ending the frame, and "each websocket message corresponds to a single
// gateway message, but does not end a zstd frame": the client calls
// ZSTD_decompressStream until the message's input is used up, and does
// not wait for it to return 0 (Discord's gateway docs, "zstd-stream").
// There is no end marker as in zlib-stream's 00 00 FF FF.
//
// So a message boundary is a block boundary that coincides with the end
// of the input: the inflater from [NewInflater] returns the message
// (done=true) when the decoder has used up all the input received since
// the last message and that input ends at the end of a block, with the
// output of every block decoded. When the input so far ends inside a
// frame header or a block, which a websocket layer that hands over
// fragments, or a test that splits a message, can cause, it keeps the
// partial unit and returns done=false until the rest comes. A message
// split exactly at a block boundary (a payload over 128 KiB spans several
// blocks) cannot be told from two messages; Discord never does that, as
// one websocket message carries one payload.
//
// The decoder is klauspost's zstd.Decoder with concurrency 1, which
// decodes in the caller's goroutine and starts none (so no Close is
// needed and Reset leaves nothing behind), in low-memory mode, with the
// window capped by [InflaterOptions].MaxZstdWindow. The inflater reads the
// frame and block headers itself so that it only ever gives the decoder
// whole blocks: the decoder's error on running out of input is sticky.
package fast
