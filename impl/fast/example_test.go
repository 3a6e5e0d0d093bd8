package fast_test

import (
	"bytes"
	"fmt"

	"github.com/cordkit/cordkit/impl/fast"
	"github.com/cordkit/cordkit/protocols"
)

// DecodeEnvelope leaves d raw, aliasing the payload: copy it to keep it.
func ExampleCodec_DecodeEnvelope() {
	frame := []byte(`{"t":"MESSAGE_CREATE","s":42,"op":0,"d":{"id":"1389576398385197063","content":"hi"},"_trace":["x"]}`)
	var env protocols.Envelope
	if err := (fast.Codec{}).DecodeEnvelope(frame, &env); err != nil {
		fmt.Println(err)
		return
	}
	kept := bytes.Clone(env.D)
	fmt.Println(env.Op, env.S, env.T)
	fmt.Println(string(kept))

	var msg struct {
		ID      uint64 `json:"id,string"`
		Content string `json:"content"`
	}
	if err := (fast.Codec{}).Unmarshal(env.D, &msg); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(msg.ID, msg.Content)
	// Output:
	// DISPATCH 42 MESSAGE_CREATE
	// {"id":"1389576398385197063","content":"hi"}
	// 1389576398385197063 hi
}
