package broken

import (
	"bytes"
	"encoding/json"

	"github.com/cordkit/cordkit/protocols"
)

// DecodesD decodes d and encodes it again, as a codec that unmarshals the
// whole payload into map[string]any does: keys come out sorted, spacing
// goes, and numbers pass through float64. It breaks "Codec encodes and
// decodes JSON, and decodes the gateway envelope once, leaving d raw." and
// fails TestCodec/EnvelopeLeavesDRaw.
func DecodesD(next protocols.Codec) protocols.Codec { return redecoder{next} }

type redecoder struct{ protocols.Codec }

func (c redecoder) DecodeEnvelope(data []byte, env *protocols.Envelope) error {
	if err := c.Codec.DecodeEnvelope(data, env); err != nil {
		return err
	}
	if env.D != nil {
		var v any
		if err := json.Unmarshal(env.D, &v); err != nil {
			return err
		}
		d, err := json.Marshal(v)
		if err != nil {
			return err
		}
		env.D = d
	}
	return nil
}

// StaleEnvelope leaves the fields of env that the payload lacks or has as
// null, as json.Unmarshal into a reused struct does. It breaks "S is the
// sequence number of a dispatch; 0 when null or absent." and fails
// TestCodec/NullOrAbsentSeqIsZero, NullOrAbsentNameIsEmpty and
// MissingDIsNil.
func StaleEnvelope(next protocols.Codec) protocols.Codec { return staleCodec{next} }

type staleCodec struct{ protocols.Codec }

func (c staleCodec) DecodeEnvelope(data []byte, env *protocols.Envelope) error {
	var fresh protocols.Envelope
	if err := c.Codec.DecodeEnvelope(data, &fresh); err != nil {
		return err
	}
	env.Op = fresh.Op
	if fresh.S != 0 {
		env.S = fresh.S
	}
	if fresh.T != "" {
		env.T = fresh.T
	}
	if fresh.D != nil {
		env.D = fresh.D
	}
	return nil
}

// NewlineAppend has an AppendMarshal built on json.Encoder, which ends its
// output with a newline that Marshal does not. It breaks
// "AppendMarshaler is an optional fast path of a [Codec]: it appends the
// encoding of v to dst. Its result must equal Marshal's." and fails
// TestCodec/AppendMarshalEqualsMarshal.
func NewlineAppend(next protocols.Codec) protocols.Codec { return newlineCodec{next} }

type newlineCodec struct{ protocols.Codec }

func (newlineCodec) AppendMarshal(dst []byte, v any) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	err := json.NewEncoder(buf).Encode(v)
	return buf.Bytes(), err
}

// PanicsOnEmpty looks at the first byte of a payload before decoding it,
// and so panics on an empty one. It breaks "Malformed JSON is an error,
// never a panic." and fails TestCodec/MalformedJSONIsError.
func PanicsOnEmpty(next protocols.Codec) protocols.Codec { return hastyCodec{next} }

type hastyCodec struct{ protocols.Codec }

func (c hastyCodec) DecodeEnvelope(data []byte, env *protocols.Envelope) error {
	if data[0] == ' ' { // index out of range on an empty payload
		data = bytes.TrimSpace(data)
	}
	return c.Codec.DecodeEnvelope(data, env)
}
