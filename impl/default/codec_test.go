package reference_test

import (
	"testing"

	reference "github.com/cordkit/cordkit/impl/default"
	"github.com/cordkit/cordkit/protocols"
)

func TestCodecDecodeEnvelope(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    protocols.Envelope
		wantD   string // "" with wantNil: D must be nil
		wantNil bool
		wantErr bool
	}{
		{name: "Dispatch", in: `{"op":0,"d":{"id":"1","nested":[1,{"a":null}]},"s":42,"t":"MESSAGE_CREATE"}`,
			want: protocols.Envelope{Op: protocols.OpDispatch, S: 42, T: "MESSAGE_CREATE"}, wantD: `{"id":"1","nested":[1,{"a":null}]}`},
		{name: "HelloNullSeqAndType", in: `{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250}}`,
			want: protocols.Envelope{Op: protocols.OpHello}, wantD: `{"heartbeat_interval":41250}`},
		{name: "NullD", in: `{"op":11,"d":null}`, want: protocols.Envelope{Op: protocols.OpHeartbeatACK}, wantD: `null`},
		{name: "AbsentD", in: `{"op":11}`, want: protocols.Envelope{Op: protocols.OpHeartbeatACK}, wantNil: true},
		{name: "ScalarD", in: `{"op":9,"d":false}`, want: protocols.Envelope{Op: protocols.OpInvalidSession}, wantD: `false`},
		{name: "UnknownFieldsIgnored", in: `{"op":7,"d":null,"x":[1,2]}`, want: protocols.Envelope{Op: protocols.OpReconnect}, wantD: `null`},
		{name: "Malformed", in: `{"op":0,"d":`, wantErr: true},
		{name: "BadOpType", in: `{"op":"zero"}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := []byte(tt.in)
			env := protocols.Envelope{Op: 99, S: 7, T: "stale", D: []byte("stale")}
			err := reference.Codec{}.DecodeEnvelope(data, &env)
			if tt.wantErr {
				if err == nil {
					t.Fatal("want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if env.Op != tt.want.Op || env.S != tt.want.S || env.T != tt.want.T {
				t.Errorf("got op %d s %d t %q, want op %d s %d t %q", env.Op, env.S, env.T, tt.want.Op, tt.want.S, tt.want.T)
			}
			if tt.wantNil {
				if env.D != nil {
					t.Errorf("D = %q, want nil", env.D)
				}
				return
			}
			if string(env.D) != tt.wantD {
				t.Errorf("D = %q, want %q", env.D, tt.wantD)
			}
		})
	}
}

func TestCodecRoundTrip(t *testing.T) {
	type msg struct {
		ID      string   `json:"id"`
		Content string   `json:"content,omitempty"`
		Tags    []string `json:"tags"`
	}
	c := reference.Codec{}
	in := msg{ID: "1", Content: "<hi & bye>", Tags: []string{"a"}}
	data, err := c.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out msg
	if err := c.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	if out.ID != in.ID || out.Content != in.Content || len(out.Tags) != 1 {
		t.Errorf("round trip: got %+v, want %+v", out, in)
	}
	if err := c.Unmarshal([]byte(`{`), &out); err == nil {
		t.Error("Unmarshal accepted malformed JSON")
	}
}
