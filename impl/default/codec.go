package reference

import (
	"encoding/json"
	"fmt"

	"github.com/cordkit/cordkit/protocols"
)

var _ protocols.Codec = Codec{}

// Codec is the reference [protocols.Codec], built on encoding/json. The
// zero value is ready to use and safe for concurrent use.
type Codec struct{}

// Marshal encodes v with [json.Marshal].
func (Codec) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal decodes data into v with [json.Unmarshal]; it does not retain
// data.
func (Codec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// envelope is the wire form of a gateway payload. A null or absent s or t
// leaves the zero value, which is what Envelope wants, so no pointers (and
// no allocations) are needed to tell them apart.
type envelope struct {
	Op protocols.Opcode `json:"op"`
	D  json.RawMessage  `json:"d"`
	S  int64            `json:"s"`
	T  string           `json:"t"`
}

// DecodeEnvelope decodes a gateway payload {op, d, s, t} once. env.D holds
// the raw JSON of d (a copy, so it does not alias data), or nil when d is
// absent; a null s or t leaves 0 or "".
func (Codec) DecodeEnvelope(data []byte, env *protocols.Envelope) error {
	var e envelope
	if err := json.Unmarshal(data, &e); err != nil {
		return fmt.Errorf("reference: decode gateway payload: %w", err)
	}
	*env = protocols.Envelope{Op: e.Op, S: e.S, T: e.T, D: e.D}
	return nil
}
