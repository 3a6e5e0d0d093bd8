package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
)

// tally gathers the workers' reports, in the parent.
type tally struct {
	mu   sync.Mutex
	kick chan struct{} // capacity 1: something changed

	shards    map[int][]int  // pid → its shards
	worker    map[int]int    // pid → worker index
	connected map[int]bool   // pid → Gateway.Connect returned
	restDone  map[int]bool   // pid → REST load over
	rest      map[int]report // pid → latest REST counts
	exits     map[int]string // pid → how it ended, for the unexpected ones

	parts      []string // distinct start reports' Parts
	identified []report
	resumed    []report
	failures   []string // error reports, REST failures, unexpected exits

	sentShard map[int64]int    // probe id → the shard it went to
	sentPhase map[int64]string // probe id → its phase
	unsent    []int64          // probes no session took
	received  map[int64]int    // probe id → times handled
	wrong     []string         // probes handled by another shard
}

func (t *tally) init() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.kick = make(chan struct{}, 1)
	t.shards, t.worker = map[int][]int{}, map[int]int{}
	t.connected, t.restDone = map[int]bool{}, map[int]bool{}
	t.rest, t.exits = map[int]report{}, map[int]string{}
	t.sentShard, t.sentPhase, t.received = map[int64]int{}, map[int64]string{}, map[int64]int{}
}

func (t *tally) changed() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// add records r and, when log is not nil, prints it.
func (t *tally) add(r report, log io.Writer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	defer t.changed()
	if log != nil {
		fmt.Fprintln(log, r.String())
	}
	t.worker[r.PID] = r.Worker
	switch r.Kind {
	case kindStart:
		t.shards[r.PID] = r.Shards
		if !slices.Contains(t.parts, r.Parts) {
			t.parts = append(t.parts, r.Parts)
		}
	case kindIdentified:
		t.identified = append(t.identified, r)
	case kindResumed:
		t.resumed = append(t.resumed, r)
	case kindConnected:
		t.connected[r.PID] = true
	case kindEvent:
		t.received[r.Probe]++
		if want, ok := t.sentShard[r.Probe]; ok && want != r.Shard {
			t.wrong = append(t.wrong, fmt.Sprintf("probe %d for shard %d handled by shard %d", r.Probe, want, r.Shard))
		}
	case kindREST, kindStopped:
		t.rest[r.PID] = r
	case kindRESTDone:
		t.rest[r.PID] = r
		t.restDone[r.PID] = true
	case kindRESTError, kindError:
		t.failures = append(t.failures, fmt.Sprintf("worker %d [pid %d]: %s: %s", r.Worker, r.PID, r.Kind, r.Error))
	}
}

// exited records the end of a worker process.
func (t *tally) exited(pid, index int, err error, killed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	defer t.changed()
	t.worker[pid] = index
	switch {
	case killed:
		t.exits[pid] = "killed"
	case err != nil:
		t.exits[pid] = err.Error()
		t.failures = append(t.failures, fmt.Sprintf("worker %d [pid %d] exited: %v", index, pid, err))
	default:
		t.exits[pid] = "exited"
	}
}

// sent records a probe the mock gave to n sessions.
func (t *tally) sent(id int64, shard int, phase string, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sentShard[id], t.sentPhase[id] = shard, phase
	if n == 0 {
		t.unsent = append(t.unsent, id)
	}
}

func (t *tally) shardsOf(pid int) []int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.shards[pid])
}

// missingLocked returns the probes sent but never handled.
func (t *tally) missingLocked() []int64 {
	var out []int64
	for id := range t.sentShard {
		if t.received[id] == 0 {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// waitUntil waits until cond holds (checked under mu), a worker fails
// unexpectedly, or within passes.
func (t *tally) waitUntil(ctx context.Context, within time.Duration, what string, cond func() (bool, string)) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		t.mu.Lock()
		ok, state := cond()
		var unexpected []string
		for pid, how := range t.exits {
			if how != "killed" && how != "exited" {
				unexpected = append(unexpected, fmt.Sprintf("worker %d [pid %d]: %s", t.worker[pid], pid, how))
			}
		}
		t.mu.Unlock()
		switch {
		case ok:
			return nil
		case len(unexpected) > 0:
			return fmt.Errorf("waiting for %s (%s): a worker failed: %v", what, state, unexpected)
		}
		select {
		case <-t.kick:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s (%s): %w", what, state, ctx.Err())
		}
	}
}

func (t *tally) waitConnected(ctx context.Context, within time.Duration, pids ...int) error {
	return t.waitUntil(ctx, within, "every shard to be ready", func() (bool, string) {
		n := 0
		for _, pid := range pids {
			if t.connected[pid] {
				n++
			}
		}
		return n == len(pids), fmt.Sprintf("%d of %d workers connected", n, len(pids))
	})
}

func (t *tally) waitReceived(ctx context.Context, within time.Duration) error {
	return t.waitUntil(ctx, within, "every probe event", func() (bool, string) {
		missing := t.missingLocked()
		return len(missing) == 0, fmt.Sprintf("%d of %d probes not received", len(missing), len(t.sentShard))
	})
}

func (t *tally) waitRESTDone(ctx context.Context, within time.Duration, pids ...int) error {
	return t.waitUntil(ctx, within, "the REST load", func() (bool, string) {
		n := 0
		for _, pid := range pids {
			if t.restDone[pid] {
				n++
			}
		}
		return n == len(pids), fmt.Sprintf("%d of %d workers done", n, len(pids))
	})
}

func (t *tally) partsLocked() string { return strings.Join(t.parts, "; ") }
