package protocols

// Codec encodes and decodes JSON, and decodes the gateway envelope once,
// leaving d raw. It takes no context: it is pure computation.
//
// Rules (quoted by the conformance suite):
//   - DecodeEnvelope ignores the fields it does not know, such as _trace.
//   - Malformed JSON is an error, never a panic.
//   - Marshal and Unmarshal follow encoding/json's rules for Go values and struct tags, including the string option that carries Discord's snowflakes.
//
// A Codec must be safe for concurrent use. Implementations should pass
// [github.com/cordkit/cordkit/conformance.TestCodec].
type Codec interface {
	// Marshal encodes v. The caller owns the result.
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into v. It must not retain data.
	Unmarshal(data []byte, v any) error
	// DecodeEnvelope decodes a gateway payload into env. env.D may alias
	// data, so data must stay unchanged while env is used.
	DecodeEnvelope(data []byte, env *Envelope) error
}

// AppendMarshaler is an optional fast path of a [Codec]: it appends the
// encoding of v to dst. Its result must equal Marshal's.
type AppendMarshaler interface {
	AppendMarshal(dst []byte, v any) ([]byte, error)
}
