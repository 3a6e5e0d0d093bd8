package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestMain lets the idle scenario re-run this test binary as a child
// process that measures one row (see idleChild).
func TestMain(m *testing.M) {
	if ran, err := runIdleChild(); ran {
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: idle child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSmoke runs the -smoke configuration and checks that every row
// completed without failures, and that cordkit, whose limiter knows the
// limits, took no 429 under them. Other libraries' 429s and failures
// under limits are what the benchmark reports, not errors. Gateway rows
// must all be there, each having received every event (a short count
// fails runAll itself), and idle rows too, each with every shard READY.
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
	checkGateway(t, res)
	checkIdle(t, res)
}

func checkGateway(t *testing.T, res *results) {
	t.Helper()
	want := map[string]bool{}
	for _, lib := range gwLibs {
		for _, mode := range lib.modes {
			want[lib.name+" / "+mode.String()] = true
		}
	}
	for _, r := range res.gateway {
		key := r.lib + " / " + r.mode
		if !want[key] {
			t.Errorf("gateway: unexpected or repeated row %s", key)
		}
		delete(want, key)
		if r.events != smokeConfig().events || r.evPerSec <= 0 || r.mbPerSec <= 0 || r.allocsPerEv <= 0 {
			t.Errorf("gateway %s: %d events, %.0f events/s, %.1f MB/s, %.1f allocs/event", key, r.events, r.evPerSec, r.mbPerSec, r.allocsPerEv)
		}
	}
	for key := range want {
		t.Errorf("gateway: row %s missing", key)
	}
	if len(res.gwFloors) == 0 {
		t.Error("gateway: no floors")
	}
	for _, f := range res.gwFloors {
		if f.evPerSec <= 0 {
			t.Errorf("gateway floor %s: %.0f events/s", f.name, f.evPerSec)
		}
	}
	if len(res.decode) != len(decodePaths) {
		t.Errorf("gateway: %d decode rows, want %d", len(res.decode), len(decodePaths))
	}
	for _, d := range res.decode {
		if d.nsPerEv <= 0 {
			t.Errorf("gateway decode %s: %.0f ns/event", d.name, d.nsPerEv)
		}
	}
}

func checkIdle(t *testing.T, res *results) {
	t.Helper()
	want := map[string]bool{}
	for _, mode := range idleBaselines() {
		want[idleBaselineName+" / "+mode.String()] = true
	}
	for _, lib := range idleLibs {
		for _, mode := range lib.modes {
			want[lib.name+" / "+mode.String()] = true
		}
	}
	for _, r := range res.idle {
		key := r.lib + " / " + r.mode
		if !want[key] {
			t.Errorf("idle: unexpected or repeated row %s", key)
		}
		delete(want, key)
		// Every connection costs the mock goroutines, whatever the
		// library. (Heap deltas of a few shards are noise, not checked.)
		if r.shards != smokeConfig().shards || r.rawGoroutines < 1 {
			t.Errorf("idle %s: %d shards, %.2f goroutines per shard before subtraction", key, r.shards, r.rawGoroutines)
		}
	}
	for key := range want {
		t.Errorf("idle: row %s missing", key)
	}
}
