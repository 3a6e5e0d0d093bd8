package conformance

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
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
	"strings"
	"testing"

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
