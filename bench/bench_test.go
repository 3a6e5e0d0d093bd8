package main

import (
	"strings"
	"testing"
)

// TestSmoke runs the -smoke configuration and checks that every row
// completed without failures, and that cordkit, whose limiter knows the
// limits, took no 429 under them. Other libraries' 429s and failures
// under limits are what the benchmark reports, not errors.
func TestSmoke(t *testing.T) {
	var out strings.Builder
	res, err := runAll(smokeConfig(), &out)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	if want := len(restOps) * len(libraries); len(res.rest) != want {
		t.Errorf("%d rest rows, want %d", len(res.rest), want)
	}
	for _, r := range res.rest {
		if r.failures != 0 || r.reqPerSec <= 0 {
			t.Errorf("rest %s %s: %d failures, %.0f req/s", r.op, r.lib, r.failures, r.reqPerSec)
		}
	}
	if len(res.limits) == 0 {
		t.Fatal("no rest-limits rows")
	}
	for _, r := range res.limits {
		if !strings.HasPrefix(r.lib, "cordkit") {
			continue
		}
		if r.completed != r.calls || r.failures != 0 {
			t.Errorf("rest-limits %s: %d of %d completed, %d failures (first: %s)", r.lib, r.completed, r.calls, r.failures, r.firstErr)
		}
		if r.tooMany != 0 {
			t.Errorf("rest-limits %s: %g 429s, want 0", r.lib, r.tooMany)
		}
		if r.wall < r.minimum {
			t.Errorf("rest-limits %s: %v, faster than the limits allow (%v)", r.lib, r.wall, r.minimum)
		}
	}
}
