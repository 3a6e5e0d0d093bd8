package conformance

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"
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
	var pending []string
	for rule, where := range pendingRules {
		pending = append(pending, where+": "+rule)
	}
	sort.Strings(pending)
	for _, p := range pending {
		t.Logf("pending in package protocols: %s", p)
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
