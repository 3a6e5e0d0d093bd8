package fast_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cordkit/cordkit/impl/fast"
	"github.com/cordkit/cordkit/protocols"
)

// refEnvelope is the reference's wire form of a gateway payload: what
// encoding/json decodes, which fast must agree with.
type refEnvelope struct {
	Op protocols.Opcode `json:"op"`
	D  json.RawMessage  `json:"d"`
	S  *int64           `json:"s"`
	T  *string          `json:"t"`
}

func stdDecode(data []byte) (protocols.Envelope, error) {
	var e refEnvelope
	if err := json.Unmarshal(data, &e); err != nil {
		return protocols.Envelope{}, err
	}
	env := protocols.Envelope{Op: e.Op, D: e.D}
	if e.S != nil {
		env.S = *e.S
	}
	if e.T != nil {
		env.T = *e.T
	}
	return env, nil
}

// Realistic payloads: the seed corpus of the fuzz test, and table cases.
var (
	helloPayload = `{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250,"_trace":["[\"gateway-prd-us-east1-c-7m2k\",{\"micros\":0.0}]"]}}`
	ackPayload   = `{"t":null,"s":null,"op":11,"d":null}`
	readyPayload = `{"t":"READY","s":1,"op":0,"d":{"v":10,"user_settings":{},"user":{"id":"1389576270643331072","username":"mockbot","discriminator":"0","global_name":"Mockbot","avatar":null,"bot":true},` +
		`"session_type":"normal","session_id":"3f0c6f2c5b9e4d7aa1b2c3d4e5f60718","resume_gateway_url":"wss://gateway-us-east1-c.discord.gg","guilds":[{"unavailable":true,"id":"1389576270643331073"}],` +
		`"application":{"id":"1389576270643331072","flags":557056},"shard":[0,1],"_trace":["[\"gateway-prd-us-east1-c-7m2k\",{\"micros\":104210}]"]}}`
	guildCreatePayload = `{"t":"GUILD_CREATE","s":2,"op":0,"d":{"id":"1389576270643331073","name":"Mock Guild {0}","icon":null,"roles":[{"id":"1389576270643331073","name":"@everyone \"quoted\" \\ }]","color":0,"permissions":"1071698660929"}],` +
		`"members":[{"user":{"id":"838565520998535173","username":"caf\u00e9 \ud83d\ude00"},"roles":[],"joined_at":"2025-07-01T12:00:00.000000+00:00","deaf":false}],"channels":[],"member_count":1,"large":false}}`
	messageCreatePayload = `{"t":"MESSAGE_CREATE","s":3,"op":0,"d":{"type":0,"tts":false,"content":"hello <@1389576270643331072> {\"not\":\"json\"}","id":"1389576398385197063","embeds":[],` +
		`"author":{"id":"838565520998535173","username":"user1","bot":false},"guild_id":"1389576270643331073","nonce":-1.5e+3}}`
)

func TestDecodeEnvelope(t *testing.T) {
	tests := []struct {
		name string
		data string
		want protocols.Envelope
	}{
		{"Hello", helloPayload, protocols.Envelope{Op: 10, D: json.RawMessage(`{"heartbeat_interval":41250,"_trace":["[\"gateway-prd-us-east1-c-7m2k\",{\"micros\":0.0}]"]}`)}},
		{"HeartbeatACKWithNulls", ackPayload, protocols.Envelope{Op: 11, D: json.RawMessage(`null`)}},
		{"Ready", readyPayload, protocols.Envelope{Op: 0, S: 1, T: "READY", D: json.RawMessage(readyPayload[30 : len(readyPayload)-1])}},
		{"Whitespace", " \r\n\t{ \"op\" : 0 ,\n\"d\" :\t[ 1 , { } ] , \"s\" : 5 , \"t\" : \"X\" }\n ", protocols.Envelope{S: 5, T: "X", D: json.RawMessage(`[ 1 , { } ]`)}},
		{"KeyOrder", `{"d":"x","t":"T","s":9,"op":3}`, protocols.Envelope{Op: 3, S: 9, T: "T", D: json.RawMessage(`"x"`)}},
		{"AbsentD", `{"op":11}`, protocols.Envelope{Op: 11}},
		{"UnknownFields", `{"_trace":["{\"d\":1}"],"op":1,"x":{"d":[{"op":5}]},"d":2}`, protocols.Envelope{Op: 1, D: json.RawMessage(`2`)}},
		{"EscapedKeys", `{"\u006fp":4,"\u0064":true,"\u0073":8,"\u0074":"\u0052EADY"}`, protocols.Envelope{Op: 4, S: 8, T: "READY", D: json.RawMessage(`true`)}},
		{"KeysFoldCase", `{"OP":4,"D":1,"S":2,"T":"x","ſ":3}`, protocols.Envelope{Op: 4, S: 3, T: "x", D: json.RawMessage(`1`)}},
		{"LastDuplicateWins", `{"s":1,"s":null,"t":"a","t":"b","d":1,"d":null,"op":2,"op":null}`, protocols.Envelope{Op: 2, T: "b", D: json.RawMessage(`null`)}},
		{"EscapedName", `{"op":0,"t":"A\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00\ud800x"}`, protocols.Envelope{T: "A\"\\/\b\f\n\r\té\U0001F600\uFFFDx"}},
		{"InvalidUTF8Name", "{\"t\":\"a\xffb\"}", protocols.Envelope{T: "a\uFFFDb"}},
		{"Extremes", `{"op":-1,"s":-9223372036854775808}`, protocols.Envelope{Op: -1, S: -9223372036854775808}},
		{"MaxSeq", `{"op":0,"s":9223372036854775807}`, protocols.Envelope{S: 9223372036854775807}},
		{"TopLevelNull", ` null `, protocols.Envelope{}},
		{"Empty", `{}`, protocols.Envelope{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := protocols.Envelope{Op: 42, S: 99, T: "STALE", D: json.RawMessage(`"stale"`)}
			require.NoError(t, fast.Codec{}.DecodeEnvelope([]byte(tt.data), &env))
			assert.Equal(t, tt.want, env)
			ref, err := stdDecode([]byte(tt.data))
			require.NoError(t, err, "encoding/json")
			assert.Equal(t, ref, env, "encoding/json decodes it differently")
		})
	}
}

func TestDecodeEnvelopeDAliasesData(t *testing.T) {
	data := []byte(messageCreatePayload)
	var env protocols.Envelope
	require.NoError(t, fast.Codec{}.DecodeEnvelope(data, &env))
	i := bytes.Index(data, env.D)
	require.Positive(t, i)
	assert.Same(t, &data[i], &env.D[0], "D must alias data")
	assert.Equal(t, len(env.D), cap(env.D), "D's capacity must be clipped so appends do not overwrite data")
	assert.Equal(t, byte('}'), env.D[len(env.D)-1])
}

func TestDecodeEnvelopeErrors(t *testing.T) {
	tests := []struct {
		name string
		data string
	}{
		{"Empty", ``},
		{"Space", ` `},
		{"Unclosed", `{"op":1`},
		{"UnclosedD", `{"op":1,"d":{"a":[1,2}}`},
		{"TrailingComma", `{"op":1,}`},
		{"TrailingData", `{"op":1} x`},
		{"TwoValues", `{"op":1}{"op":2}`},
		{"BareKey", `{op:1}`},
		{"LeadingZero", `{"op":01}`},
		{"BadEscape", `{"op":1,"d":"\x"}`},
		{"ShortUnicodeEscape", `{"op":1,"d":"\u12"}`},
		{"ControlChar", "{\"op\":1,\"d\":\"a\nb\"}"},
		{"BadLiteral", `{"op":1,"d":nul}`},
		{"MissingColon", `{"op" 1}`},
		{"BadNumber", `{"op":1,"d":-}`},
		{"BadFraction", `{"op":1,"d":1.}`},
		{"BadExponent", `{"op":1,"d":1e+}`},
		{"OpString", `{"op":"one"}`},
		{"OpFraction", `{"op":1.5}`},
		{"OpExponent", `{"op":1e2}`},
		{"OpOverflow", `{"op":99999999999999999999}`},
		{"SeqOverflow", `{"s":9223372036854775808}`},
		{"SeqString", `{"s":"5"}`},
		{"NameNumber", `{"t":5}`},
		{"Array", `[1,2]`},
		{"Number", `42`},
		{"TooDeep", `{"d":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := protocols.Envelope{Op: 42, S: 99, T: "STALE"}
			env := before
			err := fast.Codec{}.DecodeEnvelope([]byte(tt.data), &env)
			assert.Error(t, err)
			assert.Equal(t, before, env, "an error must leave env unchanged")
			_, stdErr := stdDecode([]byte(tt.data))
			assert.Error(t, stdErr, "encoding/json accepts it")
		})
	}
	// The deepest nesting encoding/json accepts is accepted.
	deep := `{"d":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`
	var env protocols.Envelope
	assert.NoError(t, fast.Codec{}.DecodeEnvelope([]byte(deep), &env))
}

func TestAppendMarshal(t *testing.T) {
	v := map[string]any{"op": 3, "d": map[string]any{"status": "<idle> & \u2028", "since": nil}}
	want, err := json.Marshal(v)
	require.NoError(t, err)
	for _, dst := range [][]byte{nil, []byte("<&>"), append(make([]byte, 0, 256), "<&>"...)} {
		prefix := bytes.Clone(dst)
		got, err := fast.Codec{}.AppendMarshal(dst, v)
		require.NoError(t, err)
		assert.Equal(t, string(append(prefix, want...)), string(got), "the prefix must be kept as is, the rest equal encoding/json's")
	}
	got, err := fast.Codec{}.Marshal(v)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got))
}

func TestUnmarshalSnowflakes(t *testing.T) {
	type member struct {
		ID    uint64   `json:"id,string"`
		Roles []string `json:"roles"`
	}
	var m member
	require.NoError(t, fast.Codec{}.Unmarshal([]byte(`{"id":"18446744073709551615","roles":["1"],"x":1}`), &m))
	assert.Equal(t, member{ID: 18446744073709551615, Roles: []string{"1"}}, m)
	assert.Error(t, fast.Codec{}.Unmarshal([]byte(`{"id":`), &m))
}

// FuzzDecodeEnvelope checks DecodeEnvelope against encoding/json decoding
// the reference's envelope: when encoding/json accepts a payload, fast
// gives the same op, s and t and a d that is the same bytes; when it
// refuses one, fast refuses it too. There is no deliberate leniency.
func FuzzDecodeEnvelope(f *testing.F) {
	for _, p := range []string{
		helloPayload, ackPayload, readyPayload, guildCreatePayload, messageCreatePayload,
		`{"op":1,"d":null}`, `{"op":1,"d":1234567890123456789}`, `{"op":9,"d":false,"s":null,"t":null}`,
		`{"OP":1,"\u0064":[],"ſ":2}`, `{"s":1,"s":null,"op":1,"op":null}`, `null`, `{}`, `[{"op":1}]`,
		`{"op":1e400}`, `{"t":"\ud83d\ude00\ud800"}`, " {\"op\" : 0 , \"d\" : { \"a\" : \"}\" } }\n",
	} {
		f.Add([]byte(p))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := bytes.Clone(data)
		var env protocols.Envelope
		err := fast.Codec{}.DecodeEnvelope(data, &env)
		if !bytes.Equal(in, data) {
			t.Fatalf("DecodeEnvelope changed its input")
		}
		want, stdErr := stdDecode(data)
		switch {
		case stdErr != nil && err == nil:
			t.Fatalf("DecodeEnvelope(%q): got %+v, want an error as encoding/json's %v", data, env, stdErr)
		case stdErr == nil && err != nil:
			t.Fatalf("DecodeEnvelope(%q): got error %v, want %+v as encoding/json", data, err, want)
		case stdErr == nil && !reflect.DeepEqual(env, want):
			t.Fatalf("DecodeEnvelope(%q): got %s, want %s as encoding/json", data, show(env), show(want))
		}
	})
}

func show(e protocols.Envelope) string {
	return fmt.Sprintf("op %d, s %d, t %q, d %q (nil %t)", e.Op, e.S, e.T, e.D, e.D == nil)
}

// FuzzAppendMarshal checks that AppendMarshal, which escapes HTML itself,
// gives Marshal's bytes after the prefix.
func FuzzAppendMarshal(f *testing.F) {
	for _, s := range []string{"plain", "<a href=\"x\">&amp;</a>", "\u2028\u2029\u2764", "bad \xe2\x80 utf8 \xff", ""} {
		f.Add(s, []byte("pre<&>"))
	}
	f.Fuzz(func(t *testing.T, s string, prefix []byte) {
		v := map[string]any{"k": s, s: []string{s}}
		want, err := fast.Codec{}.Marshal(v)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		for _, dst := range [][]byte{bytes.Clone(prefix), append(make([]byte, 0, len(prefix)+4*len(want)+64), prefix...)} {
			got, err := fast.Codec{}.AppendMarshal(dst, v)
			if err != nil {
				t.Fatalf("AppendMarshal: %v", err)
			}
			if !bytes.Equal(got, append(bytes.Clone(prefix), want...)) {
				t.Fatalf("AppendMarshal(%q, %q): got %q, want the prefix then %q", prefix, v, got, want)
			}
		}
	})
}

func TestAppendMarshalReusesBuffer(t *testing.T) {
	v := &struct {
		Op int    `json:"op"`
		D  string `json:"d"`
	}{1, "x"}
	buf := make([]byte, 0, 64)
	appendAllocs := testing.AllocsPerRun(100, func() {
		var err error
		if buf, err = (fast.Codec{}).AppendMarshal(buf[:0], v); err != nil {
			t.Fatal(err)
		}
	})
	assert.Equal(t, `{"op":1,"d":"x"}`, string(buf))
	marshalAllocs := testing.AllocsPerRun(100, func() {
		if _, err := (fast.Codec{}).Marshal(v); err != nil {
			t.Fatal(err)
		}
	})
	assert.Less(t, appendAllocs, marshalAllocs, "AppendMarshal into a buffer with room must not allocate the result")
}
