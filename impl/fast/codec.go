package fast

import (
	"fmt"
	"sync"

	"github.com/bytedance/sonic"
	"github.com/bytedance/sonic/encoder"

	"github.com/cordkit/cordkit/protocols"
)

var (
	_ protocols.Codec           = Codec{}
	_ protocols.AppendMarshaler = Codec{}
)

// api is sonic configured to follow encoding/json: HTML characters and
// U+2028/U+2029 escaped, map keys sorted, invalid UTF-8 replaced, strings
// copied out of the input, json.Marshaler output compacted.
var api = sonic.ConfigStd

// appendOpts are the encoder options of [api] but EscapeHTML: with it,
// sonic escapes into a new buffer, so AppendMarshal escapes itself, and
// only when the output holds something to escape.
const appendOpts = encoder.SortMapKeys | encoder.CompactMarshaler | encoder.ValidateString

// Codec is a [protocols.Codec] built on sonic, with the optional
// [protocols.AppendMarshaler]. Marshal and Unmarshal follow encoding/json
// (sonic.ConfigStd); DecodeEnvelope scans the payload once without
// decoding d and without allocating it: env.D aliases data. The zero value
// is ready to use and safe for concurrent use.
type Codec struct{}

// Marshal encodes v as encoding/json would. The caller owns the result.
func (Codec) Marshal(v any) ([]byte, error) {
	b, err := api.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("fast: marshal: %w", err)
	}
	return b, nil
}

// AppendMarshal appends the encoding of v to dst; the appended bytes equal
// Marshal's. It encodes in dst's spare capacity when there is enough, so
// a reused buffer makes it allocation-free. On error it returns dst
// unchanged.
func (Codec) AppendMarshal(dst []byte, v any) ([]byte, error) {
	n := len(dst)
	h := tails.Get().(*[]byte) // sonic takes a *[]byte: pooled, it costs no allocation
	*h = dst[n:n:cap(dst)]     // encode after dst, never rewriting it
	err := encoder.EncodeInto(h, v, appendOpts)
	tail := *h
	*h = nil
	tails.Put(h)
	if err != nil {
		return dst, fmt.Errorf("fast: marshal: %w", err)
	}
	if len(tail) == 0 {
		return dst, nil
	}
	// As encoding/json, escape <, >, & and U+2028, U+2029 (E2 80 A8/A9),
	// which can only be inside strings.
	if needsHTMLEscape(tail) {
		return append(dst, encoder.HTMLEscape(nil, tail)...), nil
	}
	if cap(dst) > n && &tail[0] == &dst[:n+1][n] {
		return dst[:n+len(tail)], nil // encoded in place
	}
	return append(dst, tail...), nil
}

// tails holds the *[]byte AppendMarshal hands sonic.
var tails = sync.Pool{New: func() any { return new([]byte) }}

// needsHTMLEscape reports whether b holds <, >, & or the first byte of
// U+2028 or U+2029.
func needsHTMLEscape(b []byte) bool {
	for _, c := range b {
		if c == '<' || c == '>' || c == '&' || c == 0xe2 {
			return true
		}
	}
	return false
}

// Unmarshal decodes data into v as encoding/json would. It does not retain
// data: the strings and raw messages it stores are copies.
func (Codec) Unmarshal(data []byte, v any) error {
	if err := api.Unmarshal(data, v); err != nil {
		return fmt.Errorf("fast: unmarshal: %w", err)
	}
	return nil
}
