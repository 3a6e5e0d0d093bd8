package conformance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/cordkit/cordkit/protocols"
)

// This file holds the Codec suite and what the gateway leaf suites share:
// the checks that need no clock (so that CheckCodec and CheckInflater can
// run them without a *testing.T), the list of the gateway suites' cases,
// and the realistic gateway payloads of the suites and benchmarks.

// Rule sentences shared by several gateway suites.
const (
	ruleCtxErr = "Cancellation always satisfies errors.Is with the context's error."
)

// Rule sentences of the Codec suite, quoted from package protocols.
const (
	ruleCodecEnvelope   = "Codec encodes and decodes JSON, and decodes the gateway envelope once, leaving d raw."
	ruleEnvelopeS       = "S is the sequence number of a dispatch; 0 when null or absent."
	ruleEnvelopeT       = `T is the event name of a dispatch; "" when null or absent.`
	ruleEnvelopeD       = "D is the raw JSON of d, nil when absent."
	ruleUnmarshalRetain = "Unmarshal decodes data into v. It must not retain data."
	ruleMarshalOwned    = "Marshal encodes v. The caller owns the result."
	ruleAppendMarshal   = "AppendMarshaler is an optional fast path of a [Codec]: it appends the encoding of v to dst. Its result must equal Marshal's."
	ruleCodecConcurrent = "A Codec must be safe for concurrent use."

	ruleUnknownFields = "DecodeEnvelope ignores the fields it does not know, such as _trace."
	ruleMalformedJSON = "Malformed JSON is an error, never a panic."
	ruleEncodingJSON  = "Marshal and Unmarshal follow encoding/json's rules for Go values and struct tags, including the string option that carries Discord's snowflakes."
)

// ---- Checks without a clock ----

// stopCheck is what checker.Fatalf and checker.Skipf panic with to end a
// check.
type stopCheck struct{}

// checker is what a case that needs no clock reports through, so that the
// case runs both as a subtest (TestCodec) and from a Check function
// (CheckCodec), which has no *testing.T. Its methods mirror testing.T's.
type checker struct {
	errs []string
	skip string
}

func (c *checker) Helper() {}

// Errorf records a failure.
func (c *checker) Errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
}

// Fatalf records a failure and ends the check.
func (c *checker) Fatalf(format string, args ...any) {
	c.Errorf(format, args...)
	panic(stopCheck{})
}

// Skipf ends the check as skipped: the implementation lacks an optional
// capability.
func (c *checker) Skipf(format string, args ...any) {
	c.skip = fmt.Sprintf(format, args...)
	panic(stopCheck{})
}

// check is one case that needs no clock.
type check[F any] struct {
	name string
	rule string
	run  func(c *checker, f F)
}

// exec runs the check, turning a panic of the implementation into a
// failure.
func (k check[F]) exec(f F) *checker {
	c := &checker{}
	func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(stopCheck); !ok {
					c.errs = append(c.errs, fmt.Sprintf("the implementation panicked with %v", r))
				}
			}
		}()
		k.run(c, f)
	}()
	return c
}

// asRules turns checks into the cases of a *testing.T suite.
func asRules[F any](checks []check[F]) []rule[F] {
	rules := make([]rule[F], len(checks))
	for i, k := range checks {
		rules[i] = rule[F]{name: k.name, rule: k.rule, run: func(t *caseT, f F) {
			t.Helper()
			c := k.exec(f)
			for _, e := range c.errs {
				t.Errorf("%s", e)
			}
			if c.skip != "" {
				t.Skip(c.skip)
			}
		}}
	}
	return rules
}

// runChecks runs every check against f and joins their failures, each
// naming its case and quoting its rule. Skipped checks are not errors.
func runChecks[F any](checks []check[F], f F) error {
	var errs []error
	for _, k := range checks {
		for _, e := range k.exec(f).errs {
			errs = append(errs, fmt.Errorf("%s: %s; rule: %q", k.name, e, k.rule))
		}
	}
	return errors.Join(errs...)
}

func checkInfos[F any](suite string, checks []check[F]) []ruleInfo {
	out := make([]ruleInfo, len(checks))
	for i, k := range checks {
		out[i] = ruleInfo{suite, k.name, k.rule}
	}
	return out
}

// ---- The gateway suites' cases ----

// gatewayRules lists the cases of the gateway leaf suites, in order;
// allRules includes them.
func gatewayRules() []ruleInfo {
	var out []ruleInfo
	out = append(out, checkInfos("TestInflater", inflaterChecks)...)
	out = append(out, checkInfos("TestCodec", codecChecks)...)
	out = append(out, infos("TestDispatcher", dispatcherRules)...)
	out = append(out, infos("TestKeepAlive", keepAliveRules)...)
	out = append(out, infos("TestIdentifyLimiter", identifyRules)...)
	out = append(out, infos("TestSendLimiter", sendRules)...)
	out = append(out, infos("TestSessionStore", sessionRules)...)
	return out
}

// ---- Codec ----

// TestCodec tests a [protocols.Codec] implementation. newCodec is called
// once per subtest, inside the subtest's synctest bubble. When the Codec
// implements the optional [protocols.AppendMarshaler], the suite checks that
// it agrees with Marshal; otherwise that subtest is skipped.
//
// The subtests need no clock: [CheckCodec] runs the same checks without a
// *testing.T.
func TestCodec(t *testing.T, newCodec func(t *testing.T) protocols.Codec) {
	t.Helper()
	Options{}.TestCodec(t, newCodec)
}

// TestCodec is [TestCodec] with options.
func (o Options) TestCodec(t *testing.T, newCodec func(t *testing.T) protocols.Codec) {
	t.Helper()
	runRules(t, o, "TestCodec", asRules(codecChecks), func(t *testing.T) protocols.Codec {
		t.Helper()
		c := newCodec(t)
		if c == nil {
			t.Fatal("conformance: newCodec returned nil")
		}
		return c
	})
}

// CheckCodec runs the checks of [TestCodec] against c and returns their
// failures joined, or nil; like [testing/fstest.TestFS], it needs no
// *testing.T, so it suits examples and fuzz targets.
func CheckCodec(c protocols.Codec) error {
	if c == nil {
		return errors.New("conformance: CheckCodec: nil Codec")
	}
	return runChecks(codecChecks, c)
}

// decodeEnvelope calls c.DecodeEnvelope, turning a panic into an error.
func decodeEnvelope(c protocols.Codec, data []byte, env *protocols.Envelope) (err error) {
	defer recoverAs(&err, "DecodeEnvelope")
	return c.DecodeEnvelope(data, env)
}

// unmarshal calls c.Unmarshal, turning a panic into an error.
func unmarshal(c protocols.Codec, data []byte, v any) (err error) {
	defer recoverAs(&err, "Unmarshal")
	return c.Unmarshal(data, v)
}

// marshal calls c.Marshal, turning a panic into an error.
func marshal(c protocols.Codec, v any) (b []byte, err error) {
	defer recoverAs(&err, "Marshal")
	return c.Marshal(v)
}

// panicError is a panic of the implementation, recovered.
type panicError struct {
	method string
	v      any
}

func (e *panicError) Error() string { return fmt.Sprintf("%s panicked with %v", e.method, e.v) }

// recoverAs turns a panic into a *panicError in *err. Call it deferred.
func recoverAs(err *error, method string) {
	if r := recover(); r != nil {
		*err = &panicError{method, r}
	}
}

// short formats v with %#v, cut to 120 characters.
func short(v any) string {
	r := []rune(fmt.Sprintf("%#v", v))
	if len(r) > 120 {
		return string(r[:117]) + "..."
	}
	return string(r)
}

// stale is an envelope left over from an earlier payload: a codec must
// overwrite every field.
func stale() protocols.Envelope {
	return protocols.Envelope{Op: 42, S: 99, T: "STALE", D: json.RawMessage(`"stale"`)}
}

// mustDecode decodes data into a stale envelope and fails the check on an
// error.
func mustDecode(c *checker, codec protocols.Codec, data string) protocols.Envelope {
	c.Helper()
	env := stale()
	if err := decodeEnvelope(codec, []byte(data), &env); err != nil {
		c.Fatalf("Codec.DecodeEnvelope(%s): got error %v, want the envelope", data, err)
	}
	return env
}

// envelopeCase is a payload and the d it carries, byte for byte.
type envelopeCase struct {
	data string
	op   protocols.Opcode
	s    int64
	t    string
	d    string // "" when absent
}

// rawD holds payloads whose d must come out exactly as sent: odd spacing,
// keys out of order, escapes, numbers no float64 holds.
var rawD = []envelopeCase{
	{data: `{"op":0,"s":7,"t":"MESSAGE_CREATE","d":{"z":1, "a" : [ 1 , 2 ],"id":"1389576398385197063","big":123456789012345678901234567890,"f":1.50,"e":"caf\u00e9 \"q\" \ud83d\ude00","n":null}}`,
		op: 0, s: 7, t: "MESSAGE_CREATE",
		d: `{"z":1, "a" : [ 1 , 2 ],"id":"1389576398385197063","big":123456789012345678901234567890,"f":1.50,"e":"caf\u00e9 \"q\" \ud83d\ude00","n":null}`},
	{data: `{"op":10,"d":{"heartbeat_interval":41250},"s":null,"t":null}`, op: 10, d: `{"heartbeat_interval":41250}`},
	{data: `{"op":9,"d":false,"s":null,"t":null}`, op: 9, d: `false`},
	{data: `{"op":1,"d":1234567890123456789}`, op: 1, d: `1234567890123456789`},
	{data: `{"op":0,"s":3,"t":"GUILD_MEMBERS_CHUNK","d":[3,2.5e+10,"x\\y",{}]}`, op: 0, s: 3, t: "GUILD_MEMBERS_CHUNK", d: `[3,2.5e+10,"x\\y",{}]`},
	{data: `{"op":0,"s":4,"t":"X","d":"a string"}`, op: 0, s: 4, t: "X", d: `"a string"`},
	{data: "{\n  \"op\": 0,\n  \"s\": 5,\n  \"t\": \"TYPING_START\",\n  \"d\": {\n    \"user_id\": \"838565520998535173\"\n  }\n}", op: 0, s: 5, t: "TYPING_START",
		d: "{\n    \"user_id\": \"838565520998535173\"\n  }"},
	{data: `{"op":11,"d":null}`, op: 11, d: `null`},
}

// anyOrder holds payloads whose fields come in other orders than op, d, s, t.
var anyOrder = []envelopeCase{
	{data: `{"d":{"b":2,"a":1},"op":0,"t":"MESSAGE_UPDATE","s":12}`, op: 0, s: 12, t: "MESSAGE_UPDATE", d: `{"b":2,"a":1}`},
	{data: `{"t":"READY","s":1,"op":0,"d":{"v":10}}`, op: 0, s: 1, t: "READY", d: `{"v":10}`},
	{data: `{"s":null,"t":null,"d":null,"op":11}`, op: 11, d: `null`},
	{data: `{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250}}`, op: 10, d: `{"heartbeat_interval":41250}`},
}

// checkEnvelopes decodes every case into a stale envelope and compares.
func checkEnvelopes(c *checker, codec protocols.Codec, cases []envelopeCase) {
	c.Helper()
	for _, tc := range cases {
		env := stale()
		if err := decodeEnvelope(codec, []byte(tc.data), &env); err != nil {
			c.Errorf("Codec.DecodeEnvelope(%s): got error %v, want the envelope", tc.data, err)
			continue
		}
		if env.Op != tc.op || env.S != tc.s || env.T != tc.t {
			c.Errorf("Codec.DecodeEnvelope(%s): got op %d, s %d, t %q; want op %d, s %d, t %q", tc.data, env.Op, env.S, env.T, tc.op, tc.s, tc.t)
		}
		got := bytes.TrimSpace(env.D)
		switch {
		case tc.d == "" && env.D != nil:
			c.Errorf("Codec.DecodeEnvelope(%s): got d %s, want nil (no d in the payload)", tc.data, env.D)
		case tc.d != "" && !bytes.Equal(got, []byte(tc.d)):
			c.Errorf("Codec.DecodeEnvelope(%s): got d %s, want the payload's d byte for byte: %s", tc.data, env.D, tc.d)
		}
	}
}

// snowflakeDoc is a value the way Discord's payloads carry it: snowflakes
// as strings, some integers beyond float64's 2^53.
type snowflakeDoc struct {
	ID       uint64   `json:"id,string"`
	GuildID  uint64   `json:"guild_id,string,omitempty"`
	Roles    []string `json:"roles"`
	Perms    string   `json:"permissions"`
	Seq      int64    `json:"seq"`
	Max      uint64   `json:"max"`
	Min      int64    `json:"min"`
	Fraction float64  `json:"retry_after"`
}

// tagged exercises the struct tags and Go values of encoding/json that
// gateway payloads use.
type tagged struct {
	Op             int             `json:"op"`
	D              json.RawMessage `json:"d"`
	Skipped        string          `json:"-"`
	Empty          string          `json:"empty,omitempty"`
	Zero           int             `json:"zero,omitempty"`
	NilPtr         *int            `json:"nil_ptr"`
	Ptr            *string         `json:"ptr"`
	Since          *int64          `json:"since"`
	List           []int           `json:"list"`
	NilList        []int           `json:"nil_list"`
	Map            map[string]int  `json:"map"`
	Any            any             `json:"any"`
	presenceFields                 // promoted fields
	unexported     int
}

// presenceFields is promoted into tagged.
type presenceFields struct {
	Status string `json:"status"`
	AFK    bool   `json:"afk"`
}

func ptr[T any](v T) *T { return &v }

// marshalValues are values a gateway client marshals.
func marshalValues() []any {
	return []any{
		map[string]any{"op": 1, "d": nil},
		map[string]any{"op": 1, "d": int64(9007199254740993)},
		identifyPayload(),
		tagged{Op: 3, D: json.RawMessage(`{"since":null,"activities":[],"status":"online","afk":false}`), Skipped: "x", Ptr: ptr("é\"<>&\u2028"),
			List: []int{1, 2, 3}, Map: map[string]int{"b": 2, "a": 1}, Any: []any{"x", 1.5, true, nil}, presenceFields: presenceFields{Status: "idle"}, unexported: 7},
		snowflakeDoc{ID: 1389576398385197063, GuildID: 18446744073709551615, Roles: []string{"1378704634675331073"}, Perms: "1071698660929", Seq: 9223372036854775807, Max: 18446744073709551615, Min: -9223372036854775808, Fraction: 27.5},
		[]any{"a", json.Number("12345678901234567890")},
		"plain <string> & \u00e9",
	}
}

// identifyPayload is an IDENTIFY as a client sends it (discord-protocol.md
// §G.2).
func identifyPayload() any {
	type properties struct {
		OS      string `json:"os"`
		Browser string `json:"browser"`
		Device  string `json:"device"`
	}
	type activity struct {
		Name string `json:"name"`
		Type int    `json:"type"`
	}
	type presence struct {
		Since      *int64     `json:"since"`
		Activities []activity `json:"activities"`
		Status     string     `json:"status"`
		AFK        bool       `json:"afk"`
	}
	type identify struct {
		Token          string     `json:"token"`
		Properties     properties `json:"properties"`
		Compress       bool       `json:"compress,omitempty"`
		LargeThreshold int        `json:"large_threshold,omitempty"`
		Shard          *[2]int    `json:"shard,omitempty"`
		Presence       *presence  `json:"presence,omitempty"`
		Intents        int        `json:"intents"`
	}
	return struct {
		Op int      `json:"op"`
		D  identify `json:"d"`
	}{2, identify{
		Token:          "MTM4OTU3NjI3MDY0MzMzMTA3Mg.FAKE.fake-token-value",
		Properties:     properties{"linux", "cordkit", "cordkit"},
		LargeThreshold: 100,
		Shard:          &[2]int{0, 1},
		Presence:       &presence{Activities: []activity{{"tests", 0}}, Status: "online"},
		Intents:        33281,
	}}
}

// sameJSON reports whether a and b are the same JSON value, numbers
// compared by their text.
func sameJSON(a, b []byte) bool {
	va, errA := decodeNumbers(a)
	vb, errB := decodeNumbers(b)
	return errA == nil && errB == nil && reflect.DeepEqual(va, vb)
}

func decodeNumbers(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("data after the value")
	}
	return v, nil
}

// malformed is JSON no decoder may accept.
var malformed = []string{
	``, ` `, `{`, `}`, `{"op":`, `{"op":1,"d":}`, `{"op":1,"d":{"a":1}`, `{"op":1,"d":[1,2}`,
	`{"op":1}x`, `{"op":1}{"op":2}`, `{"op":1,}`, `{op:1}`, `{"op":01}`, `{"op":1,"t":"unterminated}`,
	`{"op":1,"d":"\x"}`, `{"op":1,"d":tru}`, `{"op":1,"d":nul}`, "\x00", `[1,2`, `"`, `{"op":1 "d":2}`,
}

// illTyped is well-formed JSON of the wrong shape: a codec may accept or
// refuse it, but must not panic.
var illTyped = []string{
	`{"op":"one"}`, `{"op":1,"s":"x"}`, `{"op":1,"t":5}`, `[1,2]`, `"op"`, `42`, `{"op":1.5}`, `{"op":-1,"s":-1}`,
	`{"op":1e400}`, `{"op":99999999999999999999}`,
}

var codecChecks = []check[protocols.Codec]{
	{
		name: "EnvelopeLeavesDRaw",
		rule: ruleCodecEnvelope,
		run: func(c *checker, codec protocols.Codec) {
			checkEnvelopes(c, codec, rawD)
			// And the payloads of a real session.
			for _, p := range eventMix()[:8] {
				env := stale()
				if err := decodeEnvelope(codec, p, &env); err != nil {
					c.Errorf("Codec.DecodeEnvelope(%.60s...): got error %v, want the envelope", p, err)
					continue
				}
				if want := rawField(p, "d"); !bytes.Equal(bytes.TrimSpace(env.D), want) {
					c.Errorf("Codec.DecodeEnvelope(%.60s...): got a d of %d bytes that differs from the payload's %d bytes, want it byte for byte", p, len(env.D), len(want))
				}
			}
		},
	},
	{
		name: "EnvelopeFieldsInAnyOrder",
		rule: ruleCodecEnvelope,
		run: func(c *checker, codec protocols.Codec) {
			checkEnvelopes(c, codec, anyOrder)
		},
	},
	{
		name: "NullOrAbsentSeqIsZero",
		rule: ruleEnvelopeS,
		run: func(c *checker, codec protocols.Codec) {
			for _, data := range []string{`{"op":11,"d":null,"s":null,"t":null}`, `{"op":11}`, `{"op":10,"d":{"heartbeat_interval":41250}}`} {
				if env := mustDecode(c, codec, data); env.S != 0 {
					c.Errorf("Codec.DecodeEnvelope(%s) into an envelope with S 99: got S %d, want 0", data, env.S)
				}
			}
		},
	},
	{
		name: "LargeSeqExact",
		rule: ruleEnvelopeS,
		run: func(c *checker, codec protocols.Codec) {
			for _, s := range []int64{1, 9007199254740993, 9223372036854775807} {
				data := fmt.Sprintf(`{"op":0,"s":%d,"t":"MESSAGE_CREATE","d":{}}`, s)
				if env := mustDecode(c, codec, data); env.S != s {
					c.Errorf("Codec.DecodeEnvelope(%s): got S %d, want %d exactly", data, env.S, s)
				}
			}
		},
	},
	{
		name: "NullOrAbsentNameIsEmpty",
		rule: ruleEnvelopeT,
		run: func(c *checker, codec protocols.Codec) {
			for _, data := range []string{`{"op":11,"d":null,"s":null,"t":null}`, `{"op":11}`, `{"op":7,"d":null}`} {
				if env := mustDecode(c, codec, data); env.T != "" {
					c.Errorf("Codec.DecodeEnvelope(%s) into an envelope with T %q: got T %q, want \"\"", data, "STALE", env.T)
				}
			}
		},
	},
	{
		name: "MissingDIsNil",
		rule: ruleEnvelopeD,
		run: func(c *checker, codec protocols.Codec) {
			for _, data := range []string{`{"op":11}`, `{"s":null,"op":7,"t":null}`} {
				if env := mustDecode(c, codec, data); env.D != nil {
					c.Errorf("Codec.DecodeEnvelope(%s) into an envelope with a D: got D %q, want nil", data, env.D)
				}
			}
			data := `{"op":1,"d":null}`
			if env := mustDecode(c, codec, data); string(bytes.TrimSpace(env.D)) != "null" {
				c.Errorf("Codec.DecodeEnvelope(%s): got D %q, want the raw JSON null (d is present)", data, env.D)
			}
		},
	},
	{
		name: "UnknownFieldsIgnored",
		rule: ruleUnknownFields,
		run: func(c *checker, codec protocols.Codec) {
			checkEnvelopes(c, codec, []envelopeCase{
				{data: `{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250,"_trace":["[\"gateway-prd-us-east1-c-7m2k\",{\"micros\":0.0}]"]},"_trace":["x"]}`,
					op: 10, d: `{"heartbeat_interval":41250,"_trace":["[\"gateway-prd-us-east1-c-7m2k\",{\"micros\":0.0}]"]}`},
				{data: `{"op":0,"extra":{"nested":[1,{"d":"not this d","op":5}]},"s":2,"t":"RESUMED","d":{},"z":null,"v":[[]]}`, op: 0, s: 2, t: "RESUMED", d: `{}`},
			})
		},
	},
	{
		name: "MalformedJSONIsError",
		rule: ruleMalformedJSON,
		run: func(c *checker, codec protocols.Codec) {
			for _, data := range malformed {
				env := stale()
				err := decodeEnvelope(codec, []byte(data), &env)
				var p *panicError
				switch {
				case errors.As(err, &p):
					c.Errorf("Codec.DecodeEnvelope(%q): %v, want an error", data, err)
				case err == nil:
					c.Errorf("Codec.DecodeEnvelope(%q): got no error (op %d, d %q), want one", data, env.Op, env.D)
				}
				var v map[string]any
				err = unmarshal(codec, []byte(data), &v)
				switch {
				case errors.As(err, &p):
					c.Errorf("Codec.Unmarshal(%q): %v, want an error", data, err)
				case err == nil:
					c.Errorf("Codec.Unmarshal(%q, *map[string]any): got no error, want one", data)
				}
			}
			for _, data := range illTyped {
				env := stale()
				var p *panicError
				if err := decodeEnvelope(codec, []byte(data), &env); errors.As(err, &p) {
					c.Errorf("Codec.DecodeEnvelope(%q): %v, want an error or an envelope", data, err)
				}
				var v snowflakeDoc
				if err := unmarshal(codec, []byte(data), &v); errors.As(err, &p) {
					c.Errorf("Codec.Unmarshal(%q): %v, want an error or a value", data, err)
				}
			}
		},
	},
	{
		name: "MarshalRoundTrip",
		rule: ruleCodecEnvelope,
		run: func(c *checker, codec protocols.Codec) {
			for _, v := range marshalValues() {
				data, err := marshal(codec, v)
				if err != nil {
					c.Errorf("Codec.Marshal(%s): got error %v, want JSON", short(v), err)
					continue
				}
				if !json.Valid(data) {
					c.Errorf("Codec.Marshal(%s): got invalid JSON %s", short(v), data)
					continue
				}
				back := reflect.New(reflect.TypeOf(v))
				if err := unmarshal(codec, data, back.Interface()); err != nil {
					c.Errorf("Codec.Unmarshal(%s): got error %v, want the value Marshal encoded", data, err)
					continue
				}
				// What survives encoding/json's round trip: not the fields
				// tagged "-" or unexported ones.
				want := reflect.New(reflect.TypeOf(v))
				std, _ := json.Marshal(v)
				_ = json.Unmarshal(std, want.Interface())
				if !reflect.DeepEqual(back.Elem().Interface(), want.Elem().Interface()) {
					c.Errorf("Codec.Unmarshal(Codec.Marshal(%s)): got %#v, want %#v", short(v), back.Elem().Interface(), want.Elem().Interface())
				}
			}
		},
	},
	{
		name: "FollowsEncodingJSONTags",
		rule: ruleEncodingJSON,
		run: func(c *checker, codec protocols.Codec) {
			for _, v := range marshalValues() {
				got, err := marshal(codec, v)
				if err != nil {
					c.Errorf("Codec.Marshal(%s): got error %v", short(v), err)
					continue
				}
				want, _ := json.Marshal(v)
				if !sameJSON(got, want) {
					c.Errorf("Codec.Marshal(%s): got %s, want the same JSON value as encoding/json's %s", short(v), got, want)
				}
			}
			data := []byte(`{"op":3,"d":{"since":null, "x": [1]},"Skipped":"no","empty":"e","nil_ptr":null,"ptr":"p","since":1751371200000,` +
				`"list":[1,2],"nil_list":null,"map":{"a":1},"any":{"k":[1.5,"s",null]},"status":"dnd","afk":true,"unknown":{"deep":[1]}}`)
			var got, want tagged
			if err := unmarshal(codec, data, &got); err != nil {
				c.Errorf("Codec.Unmarshal(%s): got error %v", data, err)
				return
			}
			_ = json.Unmarshal(data, &want)
			got.D, want.D = bytes.TrimSpace(got.D), bytes.TrimSpace(want.D)
			if !reflect.DeepEqual(got, want) {
				c.Errorf("Codec.Unmarshal(%s): got %+v, want what encoding/json decodes, %+v", data, got, want)
			}
		},
	},
	{
		name: "SnowflakesExact",
		rule: ruleEncodingJSON,
		run: func(c *checker, codec protocols.Codec) {
			data := []byte(`{"id":"18446744073709551615","guild_id":"1378704634675331073","roles":["1378704634675331073"],` +
				`"permissions":"1071698660929","seq":9223372036854775807,"max":18446744073709551615,"min":-9223372036854775808,"retry_after":27.5}`)
			want := snowflakeDoc{ID: 18446744073709551615, GuildID: 1378704634675331073, Roles: []string{"1378704634675331073"},
				Perms: "1071698660929", Seq: 9223372036854775807, Max: 18446744073709551615, Min: -9223372036854775808, Fraction: 27.5}
			var got snowflakeDoc
			if err := unmarshal(codec, data, &got); err != nil {
				c.Fatalf("Codec.Unmarshal(%s): got error %v", data, err)
			}
			if !reflect.DeepEqual(got, want) {
				c.Errorf("Codec.Unmarshal(%s): got %+v, want %+v", data, got, want)
			}
			out, err := marshal(codec, want)
			if err != nil {
				c.Fatalf("Codec.Marshal(%+v): got error %v", want, err)
			}
			if !sameJSON(out, data) {
				c.Errorf("Codec.Marshal(%+v): got %s, want %s (snowflakes as strings, integers exact)", want, out, data)
			}
		},
	},
	{
		name: "UnmarshalDoesNotRetainData",
		rule: ruleUnmarshalRetain,
		run: func(c *checker, codec protocols.Codec) {
			type message struct {
				ID      string            `json:"id"`
				Content string            `json:"content"`
				Embeds  json.RawMessage   `json:"embeds"`
				Mention []string          `json:"mention_roles"`
				Extra   map[string]any    `json:"extra"`
				Raw     map[string][]byte `json:"raw"`
			}
			src := `{"id":"1389576398385197063","content":"hello <@1389576270643331072>","embeds":[{"title":"t"}],` +
				`"mention_roles":["1378704634675331073"],"extra":{"k":"v","n":[1,"x"]},"raw":{"b":"aGVsbG8="}}`
			want := message{ID: "1389576398385197063", Content: "hello <@1389576270643331072>", Embeds: json.RawMessage(`[{"title":"t"}]`),
				Mention: []string{"1378704634675331073"}, Extra: map[string]any{"k": "v", "n": []any{1.0, "x"}}, Raw: map[string][]byte{"b": []byte("hello")}}
			data := []byte(src)
			var got message
			if err := unmarshal(codec, data, &got); err != nil {
				c.Fatalf("Codec.Unmarshal(%s): got error %v", src, err)
			}
			for i := range data {
				data[i] = '#' // the caller reuses its buffer
			}
			if !reflect.DeepEqual(got, want) {
				c.Errorf("Codec.Unmarshal: after the caller overwrote data, got %+v, want %+v: the value must not alias data", got, want)
			}
		},
	},
	{
		name: "MarshalResultOwned",
		rule: ruleMarshalOwned,
		run: func(c *checker, codec protocols.Codec) {
			a := map[string]any{"op": 1, "d": 41}
			first, err := marshal(codec, a)
			if err != nil {
				c.Fatalf("Codec.Marshal: got error %v", err)
			}
			kept := bytes.Clone(first)
			second, err := marshal(codec, identifyPayload())
			if err != nil {
				c.Fatalf("Codec.Marshal: got error %v", err)
			}
			if !bytes.Equal(first, kept) {
				c.Errorf("Codec.Marshal: a later Marshal changed an earlier result from %s to %s, want the caller to own each result", kept, first)
			}
			for i := range first {
				first[i] = '#'
			}
			for i := range second {
				second[i] = '#'
			}
			again, err := marshal(codec, a)
			if err != nil {
				c.Fatalf("Codec.Marshal: got error %v", err)
			}
			if !bytes.Equal(again, kept) {
				c.Errorf("Codec.Marshal: after the caller overwrote earlier results, got %s, want %s", again, kept)
			}
		},
	},
	{
		name: "AppendMarshalEqualsMarshal",
		rule: ruleAppendMarshal,
		run: func(c *checker, codec protocols.Codec) {
			am, ok := codec.(protocols.AppendMarshaler)
			if !ok {
				c.Skipf("the Codec does not implement the optional protocols.AppendMarshaler")
			}
			for _, v := range marshalValues() {
				want, err := marshal(codec, v)
				if err != nil {
					c.Errorf("Codec.Marshal(%s): got error %v", short(v), err)
					continue
				}
				// A codec whose map order varies cannot give equal bytes
				// twice; then the same JSON value is all one can ask.
				again, _ := marshal(codec, v)
				exact := bytes.Equal(want, again)
				for _, dst := range [][]byte{nil, []byte("prefix"), append(make([]byte, 0, 4096), "pre"...)} {
					prefix := bytes.Clone(dst)
					got, err := func() (b []byte, err error) {
						defer recoverAs(&err, "AppendMarshal")
						return am.AppendMarshal(dst, v)
					}()
					if err != nil {
						c.Errorf("AppendMarshal(%q, %s): got error %v, want what Marshal gives", prefix, short(v), err)
						continue
					}
					if !bytes.HasPrefix(got, prefix) || !(bytes.Equal(got[len(prefix):], want) || !exact && sameJSON(got[len(prefix):], want)) {
						c.Errorf("AppendMarshal(%q, %s): got %q, want %q followed by Marshal's %q", prefix, short(v), got, prefix, want)
					}
				}
			}
			// Both refuse what JSON cannot hold.
			bad := map[string]any{"ch": make(chan int)}
			_, errM := marshal(codec, bad)
			_, errA := func() (b []byte, err error) {
				defer recoverAs(&err, "AppendMarshal")
				return am.AppendMarshal(nil, bad)
			}()
			if (errM == nil) != (errA == nil) {
				c.Errorf("a channel value: Marshal returned error %v and AppendMarshal error %v, want both to agree", errM, errA)
			}
		},
	},
	{
		name: "ConcurrentSafeCodec",
		rule: ruleCodecConcurrent,
		run: func(c *checker, codec protocols.Codec) {
			payloads := append(eventMix()[:2:2], eventMix()[5:60]...) // not the GUILD_CREATEs: many calls matter, not big ones
			values := marshalValues()
			wantMarshal := make([][]byte, len(values))
			for i, v := range values {
				wantMarshal[i], _ = marshal(codec, v)
			}
			var (
				wg   sync.WaitGroup
				mu   sync.Mutex
				errs []string
			)
			report := func(format string, args ...any) {
				mu.Lock()
				defer mu.Unlock()
				if len(errs) < 5 {
					errs = append(errs, fmt.Sprintf(format, args...))
				}
			}
			for g := range 8 {
				wg.Go(func() {
					for i := range 200 {
						p := payloads[(g*7+i)%len(payloads)]
						var env protocols.Envelope
						if err := decodeEnvelope(codec, p, &env); err != nil {
							report("Codec.DecodeEnvelope (goroutine %d): %v", g, err)
							continue
						}
						if want := rawField(p, "d"); !bytes.Equal(bytes.TrimSpace(env.D), want) {
							report("Codec.DecodeEnvelope (goroutine %d, call %d): got a d of %d bytes, want the payload's %d bytes", g, i, len(env.D), len(want))
						}
						k := (g + i) % len(values)
						got, err := marshal(codec, values[k])
						if err != nil || !sameJSON(got, wantMarshal[k]) {
							report("Codec.Marshal (goroutine %d, call %d): got %s, %v; want %s as from one goroutine", g, i, got, err, wantMarshal[k])
						}
						var m map[string]any
						if err := unmarshal(codec, env.D, &m); err != nil && len(env.D) > 0 && env.D[0] == '{' {
							report("Codec.Unmarshal (goroutine %d): %v", g, err)
						}
					}
				})
			}
			wg.Wait()
			for _, e := range errs {
				c.Errorf("%s", e)
			}
		},
	},
}

// rawField returns the raw value of the top-level field name of the JSON
// object data, as encoding/json finds it.
func rawField(data []byte, name string) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil {
		return nil
	}
	return m[name]
}

// ---- Realistic gateway payloads ----
//
// Built from the field lists of discord-protocol.md §G with invented
// values, deterministically, so that benchmarks compare like with like.

// snowflake returns a snowflake made ms milliseconds after 2025-07-01 with
// counter n.
func snowflake(ms int64, n int) uint64 {
	const base = 1751328000000 - 1420070400000 // 2025-07-01 from the Discord epoch
	return uint64(base+ms)<<22 | uint64(n&0x3fffff)
}

var words = strings.Fields("hello gateway shard guild member presence the a to of and is it you that in " +
	"lol ok thanks please when will we ship this bug fixed? looks good to me :) \u00e9t\u00e9 caf\u00e9 \U0001F600 \u2764\ufe0f")

func sentence(rnd *rand.Rand, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(words[rnd.IntN(len(words))])
	}
	return b.String()
}

func helloPayload() []byte {
	return []byte(`{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250,"_trace":["[\"gateway-prd-us-east1-c-7m2k\",{\"micros\":0.0}]"]}}`)
}

func heartbeatACK() []byte { return []byte(`{"t":null,"s":null,"op":11,"d":null}`) }

func user(b *strings.Builder, id uint64, name string, bot bool) {
	fmt.Fprintf(b, `{"id":"%d","username":"%s","discriminator":"0","global_name":"%s","avatar":"%016x%016x","bot":%t,"public_flags":0}`,
		id, name, strings.ToUpper(name[:1])+name[1:], id, id>>7, bot)
}

func readyPayload(seq, guilds int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `{"t":"READY","s":%d,"op":0,"d":{"v":10,"user_settings":{},"user":`, seq)
	user(&b, 1389576270643331072, "mockbot", true)
	b.WriteString(`,"session_type":"normal","session_id":"3f0c6f2c5b9e4d7aa1b2c3d4e5f60718","resume_gateway_url":"wss://gateway-us-east1-c.discord.gg","relationships":[],"private_channels":[],"presences":[],"guilds":[`)
	for g := range guilds {
		if g > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"unavailable":true,"id":"%d"}`, snowflake(int64(-g)*86400000, g))
	}
	b.WriteString(`],"guild_join_requests":[],"geo_ordered_rtc_regions":["us-east","us-central","atlanta","us-south","us-west"],"auth":{},"application":{"id":"1389576270643331072","flags":557056},"shard":[0,1],"_trace":["[\"gateway-prd-us-east1-c-7m2k\",{\"micros\":104210}]"]}}`)
	return []byte(b.String())
}

func guildCreatePayload(rnd *rand.Rand, seq, g, members int) []byte {
	gid := snowflake(int64(-g)*86400000, g)
	var b strings.Builder
	fmt.Fprintf(&b, `{"t":"GUILD_CREATE","s":%d,"op":0,"d":{"id":"%d","name":"Mock Guild %d","icon":null,"splash":null,"discovery_splash":null,"owner_id":"838565520998535173",`+
		`"afk_channel_id":null,"afk_timeout":300,"verification_level":1,"default_message_notifications":1,"explicit_content_filter":0,"mfa_level":0,"application_id":null,`+
		`"system_channel_id":"%d","system_channel_flags":0,"rules_channel_id":null,"vanity_url_code":null,"description":null,"banner":null,"premium_tier":0,`+
		`"preferred_locale":"en-US","public_updates_channel_id":null,"nsfw_level":0,"premium_progress_bar_enabled":false,"safety_alerts_channel_id":null,"features":["COMMUNITY","NEWS"],"roles":[`,
		seq, gid, g, gid+1)
	for r := range 8 {
		if r > 0 {
			b.WriteByte(',')
		}
		color := rnd.IntN(1 << 24)
		fmt.Fprintf(&b, `{"id":"%d","name":"role %d","color":%d,"colors":{"primary_color":%d,"secondary_color":null,"tertiary_color":null},"hoist":%t,"icon":null,"unicode_emoji":null,`+
			`"position":%d,"permissions":"%d","managed":false,"mentionable":false,"flags":0}`, gid+uint64(r), r, color, color, r%2 == 0, r, rnd.Uint64()>>20)
	}
	fmt.Fprintf(&b, `],"emojis":[],"stickers":[],"joined_at":"2025-07-01T12:00:00.000000+00:00","large":%t,"unavailable":false,"member_count":%d,"voice_states":[],"members":[`, members > 250, members)
	for m := range members {
		if m > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"user":`)
		user(&b, snowflake(-int64(rnd.IntN(1e10)), m), fmt.Sprintf("%s%d", words[rnd.IntN(12)], m), m%50 == 0)
		fmt.Fprintf(&b, `,"nick":null,"roles":["%d"],"joined_at":"2025-0%d-%02dT12:00:00.000000+00:00","premium_since":null,"deaf":false,"mute":false,"flags":0,"pending":false,"communication_disabled_until":null}`,
			gid+uint64(rnd.IntN(8)), 1+rnd.IntN(6), 1+rnd.IntN(28))
	}
	b.WriteString(`],"channels":[`)
	for ch := range 20 {
		if ch > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"%d","type":%d,"name":"%s-%d","position":%d,"permission_overwrites":[],"topic":null,"nsfw":false,"last_message_id":"%d","rate_limit_per_user":0,"parent_id":null}`,
			gid+uint64(100+ch), []int{0, 2, 4, 5}[ch%4], words[rnd.IntN(12)], ch, ch, snowflake(int64(ch), ch))
	}
	b.WriteString(`],"threads":[],"presences":[`)
	for p := range members / 2 {
		if p > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"user":{"id":"%d"},"status":"%s","client_status":{"desktop":"online"},"activities":[{"name":"%s","type":0,"created_at":%d}]}`,
			snowflake(-int64(p), p), []string{"online", "idle", "dnd"}[p%3], sentence(rnd, 2), 1751328000000+rnd.Int64N(1e8))
	}
	b.WriteString(`],"stage_instances":[],"guild_scheduled_events":[],"soundboard_sounds":[]}}`)
	return []byte(b.String())
}

func messageCreatePayload(rnd *rand.Rand, seq, i int) []byte {
	var b strings.Builder
	gid := snowflake(0, 0)
	fmt.Fprintf(&b, `{"t":"MESSAGE_CREATE","s":%d,"op":0,"d":{"type":0,"tts":false,"timestamp":"2025-07-01T12:%02d:%02d.%06d+00:00","pinned":false,`+
		`"nonce":"%d","mentions":[],"mention_roles":[],"mention_everyone":false,"member":{"roles":["%d"],"premium_since":null,"pending":false,"nick":null,`+
		`"mute":false,"joined_at":"2021-05-03T00:00:00.000000+00:00","flags":0,"deaf":false,"communication_disabled_until":null,"avatar":null},`+
		`"id":"%d","flags":0,"embeds":[],"edited_timestamp":null,"content":"%s","components":[],"channel_type":0,"channel_id":"%d","author":`,
		seq, i/60%60, i%60, rnd.IntN(1e6), snowflake(int64(i)*1000, i), gid, snowflake(int64(i)*1000, i), sentence(rnd, 3+rnd.IntN(25)), gid+100+uint64(i%3))
	user(&b, snowflake(-int64(i%17)*1e7, i%17), fmt.Sprintf("user%d", i%17), false)
	fmt.Fprintf(&b, `,"attachments":[],"guild_id":"%d"}}`, gid)
	return []byte(b.String())
}

func presenceUpdatePayload(rnd *rand.Rand, seq, i int) []byte {
	return fmt.Appendf(nil, `{"t":"PRESENCE_UPDATE","s":%d,"op":0,"d":{"user":{"id":"%d"},"status":"%s","guild_id":"%d","client_status":{"mobile":"%s"},"activities":[{"type":4,"state":"%s","name":"Custom Status","id":"custom","created_at":%d}]}}`,
		seq, snowflake(-int64(i%40)*1e7, i%40), []string{"online", "idle", "dnd", "offline"}[i%4], snowflake(0, 0), []string{"online", "idle"}[i%2], sentence(rnd, 3), 1751328000000+int64(i)*1000)
}

func typingStartPayload(seq, i int) []byte {
	return fmt.Appendf(nil, `{"t":"TYPING_START","s":%d,"op":0,"d":{"user_id":"%d","timestamp":%d,"member":{"user":{"username":"user%d","public_flags":0,"id":"%d","global_name":"User%d","discriminator":"0","avatar":null},"roles":[],"premium_since":null,"pending":false,"nick":null,"mute":false,"joined_at":"2021-05-03T00:00:00.000000+00:00","flags":0,"deaf":false},"channel_id":"%d","guild_id":"%d"}}`,
		seq, snowflake(-int64(i%17)*1e7, i%17), 1751328000+i, i%17, snowflake(-int64(i%17)*1e7, i%17), i%17, snowflake(0, 0)+100, snowflake(0, 0))
}

// eventMix is a connection's traffic: HELLO, READY, three GUILD_CREATEs
// (one of about 230 KB), then 300 events of a busy guild: 530 KB in all.
var eventMix = sync.OnceValue(func() [][]byte {
	rnd := rand.New(rand.NewPCG(1, 2))
	seq := 1
	msgs := [][]byte{helloPayload(), readyPayload(seq, 30)}
	for g, members := range []int{40, 500, 150} {
		seq++
		msgs = append(msgs, guildCreatePayload(rnd, seq, g, members))
	}
	for i := range 300 {
		r := rnd.IntN(100)
		if r >= 95 {
			msgs = append(msgs, heartbeatACK())
			continue
		}
		seq++
		switch {
		case r < 55:
			msgs = append(msgs, messageCreatePayload(rnd, seq, i))
		case r < 80:
			msgs = append(msgs, presenceUpdatePayload(rnd, seq, i))
		default:
			msgs = append(msgs, typingStartPayload(seq, i))
		}
	}
	return msgs
})

// ---- Benchmark ----

// BenchmarkCodec measures DecodeEnvelope on realistic payloads (a READY of
// 100 guilds, a GUILD_CREATE of 1000 members, a MESSAGE_CREATE) and
// Unmarshal of a MESSAGE_CREATE's d into a map, reporting bytes per second
// and allocations. newCodec is called once per sub-benchmark.
func BenchmarkCodec(b *testing.B, newCodec func(b *testing.B) protocols.Codec) {
	rnd := rand.New(rand.NewPCG(3, 4))
	payloads := []struct {
		name string
		data []byte
	}{
		{"READY", readyPayload(1, 100)},
		{"GUILD_CREATE", guildCreatePayload(rnd, 2, 0, 1000)},
		{"MESSAGE_CREATE", messageCreatePayload(rnd, 3, 42)},
	}
	for _, p := range payloads {
		b.Run("DecodeEnvelope/"+p.name, func(b *testing.B) {
			codec := newCodec(b)
			var env protocols.Envelope
			b.SetBytes(int64(len(p.data)))
			b.ReportAllocs()
			for b.Loop() {
				if err := codec.DecodeEnvelope(p.data, &env); err != nil {
					b.Fatalf("Codec.DecodeEnvelope(%s): %v", p.name, err)
				}
			}
		})
	}
	b.Run("Unmarshal/MESSAGE_CREATE", func(b *testing.B) {
		codec := newCodec(b)
		d := rawField(payloads[2].data, "d")
		b.SetBytes(int64(len(d)))
		b.ReportAllocs()
		for b.Loop() {
			var m map[string]any
			if err := codec.Unmarshal(d, &m); err != nil {
				b.Fatalf("Codec.Unmarshal: %v", err)
			}
		}
	})
}
