package conformance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cordkit/cordkit/protocols"
)

// Rule sentences of the KeepAlive suite, quoted from package protocols.
const (
	ruleFirstBeat       = "The first heartbeat is sent after interval times a random jitter in [0, 1), then one every interval."
	ruleBeatNow         = "BeatNow sends a heartbeat at once, without waiting for the timer."
	ruleZombie          = "When no Ack arrived between two scheduled heartbeats, Run returns ErrZombieConnection."
	ruleBeatNowAside    = "BeatNow asks Run to beat at once, for a server op 1. Such a beat does not move the schedule and is not a scheduled heartbeat."
	ruleKeepAliveRun    = "Run beats until ctx ends (returning an error wrapping ctx.Err()), beat fails (returning its error), or an ACK is missed (returning [ErrZombieConnection])."
	ruleAckGoroutines   = "Run is called by one goroutine per connection; Ack and BeatNow may be called from any goroutine while Run runs."
	ruleAckAtOnce       = "Ack and BeatNow return at once, even while beat runs."
	ruleRunStartsAfresh = "Each Run starts afresh, as on a new connection: no ACK is owed for the heartbeats of an earlier Run."
	ruleStartAsRun      = "Start keeps Run's schedule and rules and ends when Run would return, calling done once with the error Run would return."
	ruleStartAtOnce     = "Start returns at once; no beat starts after done was called, and beats never overlap."
)

// heartbeatInterval is Discord's usual heartbeat_interval.
const heartbeatInterval = 41250 * time.Millisecond

// ackRTT is how long after a heartbeat its ACK arrives in the cases that
// acknowledge every heartbeat.
const ackRTT = 120 * time.Millisecond

// jitterRuns is how many runs FirstBeatJittered compares: the chance that
// a uniform jitter puts all of them in one half of the interval is 2^-31.
const jitterRuns = 32

// TestKeepAlive tests a [protocols.KeepAlive] implementation. newKeepAlive
// is called once or more per subtest, inside the subtest's synctest bubble,
// and must return a new KeepAlive. The suite calls Run with Discord's usual
// interval of 41.25 s and a beat function that records when it is called;
// it calls Ack from other goroutines, as a shard's reader does.
//
// The jitter of the first heartbeat is checked statistically: across 32
// runs, the first heartbeats must come before the interval ends, and not
// all in the same half of it.
func TestKeepAlive(t *testing.T, newKeepAlive func(t *testing.T) protocols.KeepAlive) {
	t.Helper()
	Options{}.TestKeepAlive(t, newKeepAlive)
}

// TestKeepAlive is [TestKeepAlive] with options.
func (o Options) TestKeepAlive(t *testing.T, newKeepAlive func(t *testing.T) protocols.KeepAlive) {
	t.Helper()
	runRules(t, o, "TestKeepAlive", keepAliveRules, func(t *testing.T) func() protocols.KeepAlive {
		return func() protocols.KeepAlive {
			t.Helper()
			k := newKeepAlive(t)
			if k == nil {
				t.Fatal("conformance: newKeepAlive returned nil")
			}
			return k
		}
	})
	// A KeepAliveStarter runs every case again, through Start.
	t.Run("Start", func(t *testing.T) {
		var starter bool
		synctest.Test(t, func(t *testing.T) {
			_, starter = newKeepAlive(t).(protocols.KeepAliveStarter)
		})
		if !starter {
			t.Skip("the KeepAlive does not implement protocols.KeepAliveStarter")
		}
		runRules(t, o, "TestKeepAlive", keepAliveRules, func(t *testing.T) func() protocols.KeepAlive {
			return func() protocols.KeepAlive {
				t.Helper()
				return startAsRun{t: t, k: newKeepAlive(t).(protocols.KeepAliveStarter)}
			}
		})
	})
}

// startAsRun runs a KeepAliveStarter's Start as if it were Run, so that
// every KeepAlive case checks Start too, and checks Start's own rules on
// the way.
type startAsRun struct {
	t *testing.T
	k protocols.KeepAliveStarter
}

func (s startAsRun) Ack()     { s.k.Ack() }
func (s startAsRun) BeatNow() { s.k.BeatNow() }

func (s startAsRun) Run(ctx context.Context, interval time.Duration, beat func(ctx context.Context) error) error {
	var mu sync.Mutex
	ended, beating := false, false
	checked := func(ctx context.Context) error {
		mu.Lock()
		switch {
		case ended:
			s.t.Errorf("KeepAliveStarter: a beat started after done was called; rule: %q", ruleStartAtOnce)
		case beating:
			s.t.Errorf("KeepAliveStarter: two beats overlapped; rule: %q", ruleStartAtOnce)
		}
		beating = true
		mu.Unlock()
		defer func() {
			mu.Lock()
			beating = false
			mu.Unlock()
		}()
		return beat(ctx)
	}
	result := make(chan error, 1)
	calls := 0
	done := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		ended = true
		if calls++; calls > 1 {
			s.t.Errorf("KeepAliveStarter: done called %d times; rule: %q", calls, ruleStartAsRun)
			return
		}
		if beating {
			s.t.Errorf("KeepAliveStarter: done called while a beat ran; rule: %q", ruleStartAtOnce)
		}
		result <- err
	}
	before := time.Now()
	if err := s.k.Start(ctx, interval, checked, done); err != nil {
		return err
	}
	if d := time.Since(before); d > 0 { // in a bubble, time moves only when Start blocked
		s.t.Errorf("KeepAliveStarter: Start blocked for %v; rule: %q", d, ruleStartAtOnce)
	}
	return <-result
}

// sinceMs is t.since rounded to the millisecond: the jitter makes the
// times of heartbeats anything but round.
func (t *caseT) sinceMs(at time.Time) string {
	if at.IsZero() {
		return "never"
	}
	return "+" + at.Sub(t.start).Round(time.Millisecond).String()
}

// heartbeats records the calls of one Run's beat function.
type heartbeats struct {
	mu     sync.Mutex
	at     []time.Time
	signal chan struct{} // capacity 1: a beat was recorded
	// onBeat, when set, runs inside beat after the beat is recorded, with
	// the beat's number from 1; its error is beat's.
	onBeat func(ctx context.Context, n int) error
}

func newHeartbeats(onBeat func(ctx context.Context, n int) error) *heartbeats {
	return &heartbeats{signal: make(chan struct{}, 1), onBeat: onBeat}
}

func (h *heartbeats) beat(ctx context.Context) error {
	h.mu.Lock()
	h.at = append(h.at, time.Now())
	n := len(h.at)
	h.mu.Unlock()
	select {
	case h.signal <- struct{}{}:
	default:
	}
	if h.onBeat != nil {
		return h.onBeat(ctx, n)
	}
	return nil
}

func (h *heartbeats) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.at)
}

// nth returns when beat n (from 1) was sent.
func (h *heartbeats) nth(n int) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.at[n-1]
}

func (h *heartbeats) times() []time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.at)
}

// wait waits until n beats were sent or the bubble clock reaches by, and
// reports whether they were.
func (h *heartbeats) wait(n int, by time.Time) bool {
	timer := time.NewTimer(max(0, time.Until(by)))
	defer timer.Stop()
	for {
		if h.count() >= n {
			return true
		}
		select {
		case <-h.signal:
		case <-timer.C:
			settle()
			return h.count() >= n
		}
	}
}

// acker acknowledges every heartbeat from another goroutine, ackRTT after
// it was sent, as Discord does.
func acker(k protocols.KeepAlive) func(ctx context.Context, n int) error {
	return func(ctx context.Context, n int) error {
		go func() {
			timer := time.NewTimer(ackRTT)
			defer timer.Stop()
			select {
			case <-timer.C:
				k.Ack()
			case <-ctx.Done():
			}
		}()
		return nil
	}
}

// runKeepAlive starts k.Run in its own goroutine with the case's context.
func runKeepAlive(t *caseT, k protocols.KeepAlive, h *heartbeats) *attempt[struct{}] {
	return runKeepAliveCtx(t, t.ctx, k, h)
}

func runKeepAliveCtx(t *caseT, ctx context.Context, k protocols.KeepAlive, h *heartbeats) *attempt[struct{}] {
	return startCtx(t, ctx, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, k.Run(ctx, heartbeatInterval, h.beat)
	})
}

// callAsync runs fn in another goroutine and reports whether it returned
// at once.
func callAsync(t *caseT, fn func()) *attempt[struct{}] {
	return start(t, func(context.Context) (struct{}, error) {
		fn()
		return struct{}{}, nil
	})
}

// mustBeat waits for beat n until by and fails the case when it did not
// come, or Run returned.
func mustBeat(t *caseT, what string, h *heartbeats, run *attempt[struct{}], n int, by time.Time) time.Time {
	t.Helper()
	if !h.wait(n, by) {
		if run.finished() {
			t.Fatalf("%s: Run returned %v at %s, want heartbeat %d by %s", what, run.err, t.sinceMs(run.at), n, t.sinceMs(by))
		}
		t.Fatalf("%s: no heartbeat %d by %s", what, n, t.sinceMs(by))
	}
	return h.nth(n)
}

// stillRunning fails the case when run has returned.
func stillRunning(t *caseT, what string, run *attempt[struct{}]) {
	t.Helper()
	settle()
	if run.finished() {
		t.Fatalf("%s: Run returned %v at %s, want it still running", what, run.err, t.sinceMs(run.at))
	}
}

// firstBeats starts jitterRuns KeepAlives at once and returns when each
// sent its first heartbeat, as an offset from the start (-1 when it sent
// none within interval + lateness).
func firstBeats(t *caseT, newKeepAlive func() protocols.KeepAlive) []time.Duration {
	t.Helper()
	begin := time.Now()
	hs := make([]*heartbeats, jitterRuns)
	runs := make([]*attempt[struct{}], jitterRuns)
	for i := range hs {
		k := newKeepAlive()
		hs[i] = newHeartbeats(nil)
		runs[i] = runKeepAlive(t, k, hs[i])
	}
	by := begin.Add(heartbeatInterval + lateness)
	offsets := make([]time.Duration, jitterRuns)
	for i, h := range hs {
		offsets[i] = -1
		if h.wait(1, by) {
			offsets[i] = h.nth(1).Sub(begin)
		}
	}
	for _, run := range runs {
		run.cancel()
	}
	return offsets
}

var keepAliveRules = []rule[func() protocols.KeepAlive]{
	{
		name: "FirstBeatWithinInterval",
		rule: ruleFirstBeat,
		run: func(t *caseT, newKeepAlive func() protocols.KeepAlive) {
			for i, d := range firstBeats(t, newKeepAlive) {
				switch {
				case d < 0:
					t.Errorf("KeepAlive.Run (run %d of %d, interval %v): no heartbeat by +%v, want the first within [0, %v)", i+1, jitterRuns, heartbeatInterval, heartbeatInterval+lateness, heartbeatInterval)
				case d >= heartbeatInterval:
					t.Errorf("KeepAlive.Run (run %d of %d, interval %v): first heartbeat at +%v, want within [0, %v)", i+1, jitterRuns, heartbeatInterval, d.Round(time.Millisecond), heartbeatInterval)
				}
			}
		},
	},
	{
		name: "FirstBeatJittered",
		rule: ruleFirstBeat,
		run: func(t *caseT, newKeepAlive func() protocols.KeepAlive) {
			var offsets []time.Duration
			low, high := 0, 0
			for _, d := range firstBeats(t, newKeepAlive) {
				switch {
				case d < 0:
					continue
				case d < heartbeatInterval/2:
					low++
				default:
					high++
				}
				offsets = append(offsets, d)
			}
			if len(offsets) == 0 {
				t.Fatalf("KeepAlive.Run: none of %d runs sent a heartbeat by +%v", jitterRuns, heartbeatInterval+lateness)
			}
			if low == 0 || high == 0 {
				distinct := slices.Compact(slices.Sorted(slices.Values(offsets)))
				t.Errorf("KeepAlive.Run: the first heartbeats of %d runs came at %d distinct offsets from %v to %v, %d in the first half of the interval and %d in the second; "+
					"want a random jitter spread over [0, %v) (a uniform one puts them all in one half once in 2^31)",
					jitterRuns, len(distinct), distinct[0].Round(time.Millisecond), distinct[len(distinct)-1].Round(time.Millisecond), low, high, heartbeatInterval)
			}
		},
	},
	{
		name: "BeatsEveryInterval",
		rule: ruleFirstBeat,
		run: func(t *caseT, newKeepAlive func() protocols.KeepAlive) {
			k := newKeepAlive()
			h := newHeartbeats(acker(k))
			run := runKeepAlive(t, k, h)
			const n = 6
			first := mustBeat(t, "KeepAlive.Run", h, run, 1, time.Now().Add(heartbeatInterval+lateness))
			mustBeat(t, "KeepAlive.Run (every heartbeat acknowledged)", h, run, n, first.Add((n-1)*heartbeatInterval+n*lateness))
			at := h.times()
			for i := 1; i < n; i++ {
				if gap := at[i].Sub(at[i-1]); gap < heartbeatInterval-lateness || gap > heartbeatInterval+lateness {
					t.Errorf("KeepAlive.Run: heartbeats %d and %d at %s and %s, %v apart; want one every %v", i, i+1, t.sinceMs(at[i-1]), t.sinceMs(at[i]), gap.Round(time.Millisecond), heartbeatInterval)
				}
			}
			stillRunning(t, "KeepAlive.Run (every heartbeat acknowledged)", run)
		},
	},
	{
		name: "BeatNowBeatsAtOnce",
		rule: ruleBeatNow,
		run: func(t *caseT, newKeepAlive func() protocols.KeepAlive) {
			k := newKeepAlive()
			h := newHeartbeats(acker(k))
			run := runKeepAlive(t, k, h)
			first := mustBeat(t, "KeepAlive.Run", h, run, 1, time.Now().Add(heartbeatInterval+lateness))
			for i, after := range []time.Duration{heartbeatInterval / 3, heartbeatInterval / 2} {
				time.Sleep(after)
				settle()
				n := h.count()
				asked := time.Now()
				k.BeatNow()
				if !h.wait(n+1, asked.Add(lateness)) {
					t.Errorf("KeepAlive.BeatNow (call %d) at %s, first heartbeat at %s: no heartbeat by %s, want one at once", i+1, t.sinceMs(asked), t.sinceMs(first), t.sinceMs(asked.Add(lateness)))
				}
			}
			stillRunning(t, "KeepAlive.Run (every heartbeat acknowledged)", run)
		},
	},
	{
		name: "BeatNowKeepsSchedule",
		rule: ruleBeatNowAside,
		run: func(t *caseT, newKeepAlive func() protocols.KeepAlive) {
			k := newKeepAlive()
			h := newHeartbeats(acker(k))
			run := runKeepAlive(t, k, h)
			first := mustBeat(t, "KeepAlive.Run", h, run, 1, time.Now().Add(heartbeatInterval+lateness))
			time.Sleep(heartbeatInterval / 3)
			k.BeatNow()
			mustBeat(t, fmt.Sprintf("KeepAlive.BeatNow at %s", t.sinceMs(time.Now())), h, run, 2, time.Now().Add(lateness))
			due := first.Add(heartbeatInterval)
			third := mustBeat(t, "KeepAlive.Run (after a BeatNow)", h, run, 3, due.Add(heartbeatInterval/3+lateness))
			if third.Before(due.Add(-lateness)) || third.After(due.Add(lateness)) {
				t.Errorf("KeepAlive.Run: first scheduled heartbeat at %s, BeatNow's at %s, next at %s; want the next when scheduled, at %s",
					t.sinceMs(first), t.sinceMs(h.nth(2)), t.sinceMs(third), t.sinceMs(due))
			}
		},
	},
	{
		name: "BeatNowSkipsZombieCheck",
		rule: ruleBeatNowAside,
		run: func(t *caseT, newKeepAlive func() protocols.KeepAlive) {
			k := newKeepAlive()
			// ACKs take 2s: the server asks for a heartbeat while the
			// scheduled one's ACK is on its way.
			const rtt = 2 * time.Second
			h := newHeartbeats(func(ctx context.Context, n int) error {
				go func() {
					timer := time.NewTimer(rtt)
					defer timer.Stop()
					select {
					case <-timer.C:
						k.Ack()
					case <-ctx.Done():
					}
				}()
				return nil
			})
			run := runKeepAlive(t, k, h)
			first := mustBeat(t, "KeepAlive.Run", h, run, 1, time.Now().Add(heartbeatInterval+lateness))
			time.Sleep(time.Second)
			k.BeatNow()
			mustBeat(t, "KeepAlive.BeatNow, 1s after a scheduled heartbeat whose ACK takes 2s", h, run, 2, time.Now().Add(lateness))
			mustBeat(t, "KeepAlive.Run (after a BeatNow)", h, run, 3, first.Add(heartbeatInterval+heartbeatInterval/3+lateness))
			stillRunning(t, "KeepAlive.Run (every heartbeat acknowledged 2s later)", run)
		},
	},
	{
		name: "ZombieWhenAckMissed",
		rule: ruleZombie,
		run: func(t *caseT, newKeepAlive func() protocols.KeepAlive) {
			k := newKeepAlive()
			h := newHeartbeats(func(ctx context.Context, n int) error {
				if n == 1 { // only the first heartbeat is acknowledged
					return acker(k)(ctx, n)
				}
				return nil
			})
			run := runKeepAlive(t, k, h)
			first := mustBeat(t, "KeepAlive.Run", h, run, 1, time.Now().Add(heartbeatInterval+lateness))
			second := mustBeat(t, "KeepAlive.Run (first heartbeat acknowledged)", h, run, 2, first.Add(heartbeatInterval+lateness))
			third := second.Add(heartbeatInterval)
			if run.await(third.Add(-time.Millisecond)) {
				t.Fatalf("KeepAlive.Run: returned %v at %s, heartbeats at %s (acknowledged) and %s; want it running until the next heartbeat is due at %s",
					run.err, t.sinceMs(run.at), t.sinceMs(first), t.sinceMs(second), t.sinceMs(third))
			}
			if !run.await(third.Add(lateness)) {
				t.Fatalf("KeepAlive.Run: still running at %s, heartbeat 2 at %s was never acknowledged; want ErrZombieConnection when heartbeat 3 is due at %s",
					t.sinceMs(third.Add(lateness)), t.sinceMs(second), t.sinceMs(third))
			}
			if !errors.Is(run.err, protocols.ErrZombieConnection) {
				t.Errorf("KeepAlive.Run: returned %v at %s, want an error wrapping protocols.ErrZombieConnection", run.err, t.sinceMs(run.at))
			}
		},
	},
	{
		name: "AckKeepsAlive",
		rule: ruleAckGoroutines,
		run: func(t *caseT, newKeepAlive func() protocols.KeepAlive) {
			k := newKeepAlive()
			// Each ACK comes late, a second before the next heartbeat, from
			// another goroutine.
			late := heartbeatInterval - time.Second
			h := newHeartbeats(func(ctx context.Context, n int) error {
				go func() {
					timer := time.NewTimer(late)
					defer timer.Stop()
					select {
					case <-timer.C:
						k.Ack()
					case <-ctx.Done():
					}
				}()
				return nil
			})
			run := runKeepAlive(t, k, h)
			first := mustBeat(t, "KeepAlive.Run", h, run, 1, time.Now().Add(heartbeatInterval+lateness))
			const n = 8
			mustBeat(t, fmt.Sprintf("KeepAlive.Run (every heartbeat acknowledged %v later)", late), h, run, n, first.Add((n-1)*heartbeatInterval+n*lateness))
			stillRunning(t, fmt.Sprintf("KeepAlive.Run (every heartbeat acknowledged %v later)", late), run)
		},
	},
	{
		name: "AckReturnsAtOnce",
		rule: ruleAckAtOnce,
		run: func(t *caseT, newKeepAlive func() protocols.KeepAlive) {
			k := newKeepAlive()
			release := make(chan struct{})
			h := newHeartbeats(func(ctx context.Context, n int) error {
				if n == 1 { // a heartbeat stuck behind a burst of writes
					select {
					case <-release:
					case <-ctx.Done():
					}
				}
				return acker(k)(ctx, n)
			})
			run := runKeepAlive(t, k, h)
			first := mustBeat(t, "KeepAlive.Run", h, run, 1, time.Now().Add(heartbeatInterval+lateness))
			defer close(release)
			time.Sleep(time.Second)
			for _, call := range []struct {
				name string
				fn   func()
			}{{"Ack", k.Ack}, {"BeatNow", k.BeatNow}} {
				called := time.Now()
				a := callAsync(t, call.fn)
				if !a.await(called.Add(lateness)) {
					t.Errorf("KeepAlive.%s: called at %s while the beat function sent at %s was still running, had not returned by %s; want it to return at once",
						call.name, t.sinceMs(called), t.sinceMs(first), t.sinceMs(called.Add(lateness)))
				}
			}
		},
	},
	{
		name: "AckDuringSlowBeatCounts",
		rule: ruleZombie,
		run: func(t *caseT, newKeepAlive func() protocols.KeepAlive) {
			k := newKeepAlive()
			slow := heartbeatInterval / 2
			h := newHeartbeats(func(ctx context.Context, n int) error {
				if n == 1 {
					// The heartbeat is written, its ACK comes back, and
					// the write call returns only later.
					go func() {
						timer := time.NewTimer(time.Second)
						defer timer.Stop()
						select {
						case <-timer.C:
							k.Ack()
						case <-ctx.Done():
						}
					}()
					timer := time.NewTimer(slow)
					defer timer.Stop()
					select {
					case <-timer.C:
					case <-ctx.Done():
					}
					return nil
				}
				return acker(k)(ctx, n)
			})
			run := runKeepAlive(t, k, h)
			first := mustBeat(t, "KeepAlive.Run", h, run, 1, time.Now().Add(heartbeatInterval+lateness))
			// A schedule counted from when beat returned is not what this
			// case checks: allow for it.
			by := first.Add(heartbeatInterval + slow + lateness)
			if !h.wait(2, by) {
				if run.finished() {
					t.Fatalf("KeepAlive.Run: returned %v at %s; heartbeat 1 at %s was acknowledged at %s while its beat call ran until %s; want heartbeat 2",
						run.err, t.sinceMs(run.at), t.sinceMs(first), t.sinceMs(first.Add(time.Second)), t.sinceMs(first.Add(slow)))
				}
				t.Fatalf("KeepAlive.Run: no heartbeat 2 by %s", t.sinceMs(by))
			}
			stillRunning(t, "KeepAlive.Run (heartbeat 1 acknowledged while its beat call ran)", run)
		},
	},
	{
		name: "BeatErrorEndsRun",
		rule: ruleKeepAliveRun,
		run: func(t *caseT, newKeepAlive func() protocols.KeepAlive) {
			k := newKeepAlive()
			errWrite := errors.New("conformance: write failed")
			h := newHeartbeats(func(ctx context.Context, n int) error {
				if n == 2 {
					return errWrite
				}
				return acker(k)(ctx, n)
			})
			run := runKeepAlive(t, k, h)
			first := mustBeat(t, "KeepAlive.Run", h, run, 1, time.Now().Add(heartbeatInterval+lateness))
			second := mustBeat(t, "KeepAlive.Run", h, run, 2, first.Add(heartbeatInterval+lateness))
			if !run.await(second.Add(lateness)) {
				t.Fatalf("KeepAlive.Run: still running at %s, the beat at %s failed; want it to return the beat's error", t.sinceMs(second.Add(lateness)), t.sinceMs(second))
			}
			if !errors.Is(run.err, errWrite) {
				t.Errorf("KeepAlive.Run: returned %v after the beat failed with %q, want an error wrapping the beat's", run.err, errWrite)
			}
		},
	},
	{
		name: "RunHonorsContext",
		rule: ruleKeepAliveRun,
		run: func(t *caseT, newKeepAlive func() protocols.KeepAlive) {
			k := newKeepAlive()
			ctx, cancel := context.WithCancel(t.ctx)
			run := runKeepAliveCtx(t, ctx, k, newHeartbeats(acker(k)))
			time.Sleep(heartbeatInterval + 10*time.Second)
			stillRunning(t, "KeepAlive.Run", run)
			cancel()
			ctxError(t, "KeepAlive.Run (context cancelled)", run, time.Now().Add(lateness), context.Canceled)

			k = newKeepAlive()
			ctx, cancel = context.WithTimeout(t.ctx, 3*heartbeatInterval)
			defer cancel()
			deadline := time.Now().Add(3 * heartbeatInterval)
			run = runKeepAliveCtx(t, ctx, k, newHeartbeats(acker(k)))
			if run.await(deadline.Add(-time.Millisecond)) {
				t.Fatalf("KeepAlive.Run: returned %v at %s, want it running until its deadline at %s", run.err, t.sinceMs(run.at), t.sinceMs(deadline))
			}
			ctxError(t, "KeepAlive.Run (deadline)", run, deadline.Add(lateness), context.DeadlineExceeded)
		},
	},
	{
		name: "RunStartsAfresh",
		rule: ruleRunStartsAfresh,
		run: func(t *caseT, newKeepAlive func() protocols.KeepAlive) {
			k := newKeepAlive()
			// The first connection goes quiet: no ACK at all.
			h := newHeartbeats(nil)
			run := runKeepAlive(t, k, h)
			by := time.Now().Add(2*heartbeatInterval + lateness)
			if !run.await(by) {
				t.Fatalf("KeepAlive.Run (first connection, no ACK): still running at %s, want ErrZombieConnection", t.sinceMs(by))
			}
			// The second connection acknowledges every heartbeat.
			h = newHeartbeats(acker(k))
			run = runKeepAlive(t, k, h)
			begin := time.Now()
			first := mustBeat(t, "KeepAlive.Run (second connection, after a zombie)", h, run, 1, begin.Add(heartbeatInterval+lateness))
			if first.Sub(begin) >= heartbeatInterval {
				t.Errorf("KeepAlive.Run (second connection): first heartbeat %v after Run began, want within [0, %v)", first.Sub(begin).Round(time.Millisecond), heartbeatInterval)
			}
			mustBeat(t, "KeepAlive.Run (second connection, every heartbeat acknowledged)", h, run, 3, first.Add(2*heartbeatInterval+3*lateness))
			stillRunning(t, "KeepAlive.Run (second connection, every heartbeat acknowledged)", run)
		},
	},
}
