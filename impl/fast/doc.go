// Package fast holds cordkit's fast implementations of the protocols: they
// do the same job as the reference implementations of impl/default, and
// pass the same conformance suites, faster.
//
// So far it has two parts: [Codec], built on github.com/bytedance/sonic,
// whose DecodeEnvelope finds op, s, t and d with a hand-written scanner
// and does not copy d; and [NewDispatcher], a [protocols.Dispatcher] whose
// Dispatch takes no lock and allocates nothing when no WaitFor is pending. [TypeSheet] returns a [protocols.TypeSheet] that
// sets only the parts this package improves; nil fields keep the
// reference implementations.
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
package fast
