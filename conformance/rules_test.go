package conformance

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
	"github.com/cordkit/cordkit/protocols"
)

// pendingRules are rule sentences the suites quote that package protocols
// does not document yet. TEMPORARY: each must be added to the doc comment
// of the interface it belongs to (see the conformance report), and then
// removed from here; TestRulesQuoteProtocols fails for a stale entry.
var pendingRules = map[string]string{}

// protocolsDocs returns the text of every comment in package protocols,
// with runs of white space and comment line breaks folded to one space.
func protocolsDocs(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("runtime.Caller failed")
	}
	dir := filepath.Join(filepath.Dir(file), "..", "protocols")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("reading package protocols: %v", err)
	}
	var b strings.Builder
	fset := token.NewFileSet()
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.ParseComments)
		if err != nil {
			t.Fatalf("parsing %s: %v", e.Name(), err)
		}
		for _, cg := range f.Comments {
			b.WriteString(collapse(cg.Text()))
			b.WriteString("\n")
		}
	}
	return b.String()
}

func collapse(s string) string { return strings.Join(strings.Fields(s), " ") }

// TestRulesQuoteProtocols checks that every rule a suite quotes appears
// verbatim in a doc comment of package protocols, so that the contract and
// the suite cannot drift apart.
func TestRulesQuoteProtocols(t *testing.T) {
	docs := protocolsDocs(t)
	used := map[string]bool{}
	for _, r := range allRules() {
		used[r.Rule] = true
		if strings.Contains(docs, collapse(r.Rule)) {
			if _, ok := pendingRules[r.Rule]; ok {
				t.Errorf("%s/%s: rule %q is now in package protocols; remove it from pendingRules", r.Suite, r.Name, r.Rule)
			}
			continue
		}
		if _, ok := pendingRules[r.Rule]; !ok {
			t.Errorf("%s/%s: rule %q appears in no doc comment of package protocols", r.Suite, r.Name, r.Rule)
		}
	}
	for rule := range pendingRules {
		if !used[rule] {
			t.Errorf("pendingRules lists %q, which no suite quotes", rule)
		}
	}
}

// TestRuleNames checks that subtest names are stable CamelCase and unique
// within each suite, and lists the pending rules.
func TestRuleNames(t *testing.T) {
	camel := regexp.MustCompile(`^[A-Z][A-Za-z0-9]+$`)
	seen := map[string]bool{}
	for _, r := range allRules() {
		if !camel.MatchString(r.Name) {
			t.Errorf("%s: subtest name %q is not CamelCase", r.Suite, r.Name)
		}
		key := r.Suite + "/" + r.Name
		if seen[key] {
			t.Errorf("%s: subtest name %q is used twice", r.Suite, r.Name)
		}
		seen[key] = true
	}
}

// TestExcludeNamesAreKnown checks the exclusion check itself.
func TestExcludeNamesAreKnown(t *testing.T) {
	known := knownNames()
	for _, name := range []string{"UnknownLimitAdmitsOneAtATime", "GlobalLimitIsProactive", "ConcurrentSafeThousandRequestsNo429"} {
		if !known[name] {
			t.Errorf("knownNames lacks %q", name)
		}
	}
	if known["NoSuchSubtest"] {
		t.Error("knownNames has NoSuchSubtest")
	}
}

// TestGatewayRuleNames is TestRuleNames for the gateway leaf suites.
func TestGatewayRuleNames(t *testing.T) {
	camel := regexp.MustCompile(`^[A-Z][A-Za-z0-9]+$`)
	seen := map[string]bool{}
	suites := map[string]int{}
	for _, r := range gatewayRules() {
		suites[r.Suite]++
		if !camel.MatchString(r.Name) {
			t.Errorf("%s: subtest name %q is not CamelCase", r.Suite, r.Name)
		}
		key := r.Suite + "/" + r.Name
		if seen[key] {
			t.Errorf("%s: subtest name %q is used twice", r.Suite, r.Name)
		}
		seen[key] = true
	}
	if n := len(gatewayRules()); n < 25 {
		t.Errorf("the gateway suites have %d cases, want at least 25", n)
	}
	for _, suite := range []string{"TestInflater", "TestCodec", "TestDispatcher", "TestKeepAlive", "TestIdentifyLimiter", "TestSendLimiter", "TestSessionStore"} {
		if suites[suite] == 0 {
			t.Errorf("gatewayRules lists no case of %s", suite)
		}
	}
}

// TestGatewayFixtures checks what the inflater and codec cases take for
// granted about their fixtures.
func TestGatewayFixtures(t *testing.T) {
	for i, m := range eventMix() {
		if !json.Valid(m) {
			t.Errorf("eventMix()[%d] is not valid JSON: %.200s", i, m)
		}
	}
	for _, p := range [][]byte{readyPayload(1, 100), guildCreatePayload(rand.New(rand.NewPCG(3, 4)), 2, 0, 1000)} {
		if !json.Valid(p) {
			t.Errorf("a benchmark payload is not valid JSON: %.200s", p)
		}
	}
	for i, m := range windowMessages() {
		if i != 7 && !json.Valid(m) { // 7 is random bytes
			t.Errorf("windowMessages()[%d] is not valid JSON: %.200s", i, m)
		}
	}
	rnd := rand.New(rand.NewPCG(1, 1))
	for _, n := range []int{40, 41, 100, 32768, 65536} {
		if got := len(sizedMessage(rnd, n)); got != n {
			t.Errorf("sizedMessage(%d): got %d bytes", n, got)
		}
	}

	// No frame holds the sync-flush marker but at its end, so that the
	// frames so far can never look like a whole message.
	streams := map[string][][]byte{"session": sessionStream(), "context": ZlibStream(contextMessages())}
	for level, frames := range windowStreams() {
		streams[fmt.Sprintf("window, level %d", level)] = frames
	}
	for name, frames := range streams {
		for i, f := range frames {
			if !bytes.HasSuffix(f, syncFlush) || bytes.Contains(f[:len(f)-1], syncFlush) {
				t.Errorf("%s stream, frame %d: the sync-flush marker is not only at its end", name, i)
			}
		}
		// The frames are one zlib stream of the messages.
		zr, err := zlib.NewReader(bytes.NewReader(bytes.Join(frames, nil)))
		if err != nil {
			t.Fatalf("%s stream: %v", name, err)
		}
		if _, err := io.ReadAll(zr); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s stream: reading it whole: got %v, want io.ErrUnexpectedEOF at the end of the last flush", name, err)
		}
	}

	// A reader per message cannot read the messages after the first.
	ctx := ZlibStream(contextMessages())
	for _, i := range []int{1, 2, 5} {
		_, err := io.ReadAll(flate.NewReader(bytes.NewReader(ctx[i])))
		var corrupt flate.CorruptInputError
		if !errors.As(err, &corrupt) {
			t.Errorf("contextMessages()[%d] inflated alone: got %v, want a flate.CorruptInputError (it must refer back to earlier messages)", i, err)
		}
	}

	// Every corruption is one for compress/zlib too.
	for _, cr := range corruptions() {
		in := append(bytes.Join(cr.good, nil), cr.bad...)
		zr, err := zlib.NewReader(bytes.NewReader(in))
		if err == nil {
			_, err = io.ReadAll(zr)
		}
		if err == nil || cr.mode == protocols.CompressZlibStream && errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("corruption %q: compress/zlib reads it with error %v, want a corruption", cr.name, err)
		}
	}

	// The splitting helpers keep every byte, and cut where they promise.
	frames := sessionStream()
	if got := bytes.Join(SplitFrames(frames, nil), nil); !bytes.Equal(got, bytes.Join(frames, nil)) {
		t.Error("SplitFrames: the pieces do not add up to the frames")
	}
	if got := OneByteFrames(frames[:3]); len(got) != len(bytes.Join(frames[:3], nil)) {
		t.Errorf("OneByteFrames: got %d frames, want one per byte", len(got))
	}
	for i, f := range frames {
		pieces := splitFrame(f, rnd)
		if len(f) >= 2 && len(pieces) < 2 {
			t.Errorf("splitFrame(frame %d): got %d piece, want at least 2", i, len(pieces))
		}
		n := 0
		for j, p := range pieces[:len(pieces)-1] {
			n += len(p)
			if len(p) == 0 || bytes.HasSuffix(f[:n], syncFlush) {
				t.Errorf("splitFrame(frame %d): piece %d is empty or ends a message", i, j)
			}
		}
	}
}

// TestShardGatewayRuleNames checks the size and coverage of the Shard and
// Gateway suites.
func TestShardGatewayRuleNames(t *testing.T) {
	if n := len(shardRules) + len(gatewayManagerRules); n < 30 {
		t.Errorf("TestShard and TestGateway have %d cases, want at least 30", n)
	}
	if len(shardRules) == 0 || len(gatewayManagerRules) == 0 {
		t.Errorf("TestShard has %d cases and TestGateway %d, want some in each", len(shardRules), len(gatewayManagerRules))
	}
}

// TestFillShardParts checks that Run hands TestShard's factory the
// TypeSheet's parts, each shard its own.
func TestFillShardParts(t *testing.T) {
	var keepAlives, senders, limiters int
	sheet := protocols.TypeSheet{
		Codec:       fakeCodec{},
		NewInflater: func(protocols.Compression) (protocols.Inflater, error) { return nil, protocols.ErrNotSupported },
		NewKeepAlive: func() protocols.KeepAlive {
			keepAlives++
			return nil
		},
		NewSendLimiter: func() protocols.SendLimiter {
			senders++
			return nil
		},
		NewIdentifyLimiter: func(p protocols.IdentifyLimiterParams) (protocols.IdentifyLimiter, error) {
			limiters++
			if p.MaxConcurrency != 1 {
				t.Errorf("NewIdentifyLimiter got MaxConcurrency %d, want 1", p.MaxConcurrency)
			}
			return protocols.IdentifyLimiterFunc(func(context.Context, int) error { return nil }), nil
		},
	}
	var p protocols.ShardParams
	fillShardParts(t, sheet, &p)
	fillShardParts(t, sheet, &p)
	if p.Codec == nil || p.NewInflater == nil || p.IdentifyLimiter == nil || keepAlives != 2 || senders != 2 || limiters != 2 {
		t.Errorf("fillShardParts: codec %v, inflater set %v, limiter %v; %d keep-alives, %d send limiters, %d identify limiters built for 2 shards, want 2 of each",
			p.Codec, p.NewInflater != nil, p.IdentifyLimiter, keepAlives, senders, limiters)
	}
	var empty protocols.ShardParams
	fillShardParts(t, protocols.TypeSheet{}, &empty)
	if empty.Codec != nil || empty.KeepAlive != nil || empty.SendLimiter != nil || empty.IdentifyLimiter != nil {
		t.Errorf("fillShardParts of an empty sheet set %+v, want nil parts", empty)
	}
}

type fakeCodec struct{ protocols.Codec }

// TestSuiteConn checks the suites' own websocket Conn against the mock:
// the protocols.Conn contract the shard suites rely on.
func TestSuiteConn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := mockdiscord.New(nil)
		defer srv.Close()
		ctx := t.Context()
		d := wsDialer{netDial: srv.NetDial}
		dial := func() protocols.Conn {
			t.Helper()
			c, err := d.Dial(ctx, srv.GatewayURL()+"?v=10&encoding=json")
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			typ, msg, err := c.Read(ctx)
			if err != nil || typ != protocols.MessageText || !bytes.Contains(msg, []byte(`"op":10`)) {
				t.Fatalf("first Read: %v %q %v, want HELLO", typ, msg, err)
			}
			return c
		}
		inject := func(f mockdiscord.GatewayFault) {
			t.Helper()
			if _, err := srv.InjectGateway(f); err != nil {
				t.Fatal(err)
			}
		}

		// A Read interrupted by its context leaves the connection usable.
		c := dial()
		short, cancel := context.WithTimeout(ctx, time.Second)
		if _, _, err := c.Read(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Read past its deadline: %v, want context.DeadlineExceeded", err)
		}
		cancel()
		if err := c.Write(ctx, protocols.MessageText, []byte(`{"op":1,"d":null}`)); err != nil {
			t.Fatalf("Write: %v", err)
		}
		if _, msg, err := c.Read(ctx); err != nil || !bytes.Contains(msg, []byte(`"op":11`)) {
			t.Errorf("Read after an interrupted Read: %q %v, want the ACK", msg, err)
		}

		// The server's close frame is a *CloseError with its code.
		inject(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultClose, Shard: mockdiscord.AllShards, Code: 4000, Reason: "bye"})
		var ce *protocols.CloseError
		if _, _, err := c.Read(ctx); !errors.As(err, &ce) || ce.Code != 4000 || ce.Reason != "bye" {
			t.Errorf("Read after a server close: %v, want a *CloseError 4000 bye", err)
		}
		if err := c.Close(protocols.CloseNormal, ""); err != nil {
			t.Errorf("Close after a server close: %v", err)
		}

		// A drop is a *CloseError with 1006.
		c = dial()
		inject(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultDrop, Shard: mockdiscord.AllShards})
		if _, _, err := c.Read(ctx); !errors.As(err, &ce) || ce.Code != protocols.CloseAbnormal {
			t.Errorf("Read after a drop: %v, want a *CloseError 1006", err)
		}
		_ = c.Close(4000, "")

		// Close sends its code, is idempotent, and later calls fail with
		// ErrClosed.
		c = dial()
		if err := c.Close(4321, "test"); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := c.Close(1000, ""); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if _, _, err := c.Read(ctx); !errors.Is(err, protocols.ErrClosed) {
			t.Errorf("Read after Close: %v, want ErrClosed", err)
		}
		if err := c.Write(ctx, protocols.MessageText, []byte(`{}`)); !errors.Is(err, protocols.ErrClosed) {
			t.Errorf("Write after Close: %v, want ErrClosed", err)
		}
		time.Sleep(2 * time.Second)
		var codes []int
		for _, o := range srv.GatewayObservations() {
			if o.Kind == mockdiscord.ObserveClose && o.By == "client" {
				codes = append(codes, o.Code)
			}
		}
		if !slices.Contains(codes, 4321) {
			t.Errorf("client closes seen by the mock: %v, want one with 4321", codes)
		}

		// A split message arrives whole.
		c = dial()
		inject(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultSplit, Shard: mockdiscord.AllShards, Parts: 4})
		if err := c.Write(ctx, protocols.MessageText, []byte(`{"op":1,"d":null}`)); err != nil {
			t.Fatalf("Write: %v", err)
		}
		if _, msg, err := c.Read(ctx); err != nil || string(msg) != `{"t":null,"s":null,"op":11,"d":null}` {
			t.Errorf("Read of a fragmented message: %q %v", msg, err)
		}
		_ = c.Close(4000, "")
	})
}
