package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cordkit/cordkit/protocols"
)

// Rule sentences of the Dispatcher suite, quoted from package protocols.
const (
	ruleDispatchListen       = "Listen registers h for events named name, or for all with [AnyEvent], and returns a function that removes it; removing twice is harmless."
	ruleDispatchOrder        = "Handlers of one name run in the order they were added."
	ruleDispatchRuns         = "Dispatch calls the handlers for ev, then wakes matching WaitFor calls, and returns when all have run."
	ruleWaitFor              = "WaitFor blocks until an event named name for which match returns true (match may be nil) is dispatched, or ctx ends."
	ruleWaitForCopy          = "The returned event's Data is a copy the caller owns."
	ruleDispatcherConcurrent = "A Dispatcher must be safe for concurrent use: Listen, remove and WaitFor may be called from any goroutine while Dispatch runs."
	ruleDispatchKeys         = `An event goes to the handlers listening to its Name ("MESSAGE_CREATE"), to its opcode's name [Opcode.String] ("HELLO", "DISPATCH"), and to [AnyEvent].`
)

// TestDispatcher tests a [protocols.Dispatcher] implementation.
// newDispatcher is called once per subtest, inside the subtest's synctest
// bubble, and must return a new dispatcher with no handlers.
//
// The suite dispatches events with a Name (dispatches such as
// "MESSAGE_CREATE") and without one (HELLO, HEARTBEAT_ACK), and listens by
// event name, by opcode name and with [protocols.AnyEvent].
//
// A dispatcher that deadlocks (say, one that holds a sync.Mutex while
// handlers run, which then call remove) cannot be stopped by the suite:
// the subtest hangs until go test's -timeout, whose goroutine dump names
// it.
func TestDispatcher(t *testing.T, newDispatcher func(t *testing.T) protocols.Dispatcher) {
	t.Helper()
	Options{}.TestDispatcher(t, newDispatcher)
}

// TestDispatcher is [TestDispatcher] with options.
func (o Options) TestDispatcher(t *testing.T, newDispatcher func(t *testing.T) protocols.Dispatcher) {
	t.Helper()
	runRules(t, o, "TestDispatcher", dispatcherRules, func(t *testing.T) func() protocols.Dispatcher {
		return func() protocols.Dispatcher {
			t.Helper()
			d := newDispatcher(t)
			if d == nil {
				t.Fatal("conformance: newDispatcher returned nil")
			}
			return d
		}
	})
}

// dispatch returns a dispatch event.
func dispatch(name string, seq int64) protocols.Event {
	return protocols.Event{Op: protocols.OpDispatch, Seq: seq, Name: name, Data: json.RawMessage(fmt.Sprintf(`{"seq":%d}`, seq))}
}

// record collects which handlers ran, in order.
type record struct {
	mu  sync.Mutex
	got []string
}

// handler returns a handler that records tag.
func (r *record) handler(tag string) protocols.Handler {
	return func(protocols.Event) { r.add(tag) }
}

func (r *record) add(tag string) {
	r.mu.Lock()
	r.got = append(r.got, tag)
	r.mu.Unlock()
}

// take returns what ran since the last take.
func (r *record) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	got := r.got
	r.got = nil
	return got
}

// sameCalls fails the case when the handlers that ran differ from want.
func sameCalls(t *caseT, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: handlers ran as [%s], want [%s]", what, strings.Join(got, " "), strings.Join(want, " "))
	}
}

// removeSafely calls remove, turning a panic into an error.
func removeSafely(remove func()) (err error) {
	defer recoverAs(&err, "remove")
	remove()
	return nil
}

// startWaitFor starts d.WaitFor in its own goroutine with the case's context.
func startWaitFor(t *caseT, d protocols.Dispatcher, name string, match func(protocols.Event) bool) *attempt[protocols.Event] {
	return start(t, func(ctx context.Context) (protocols.Event, error) { return d.WaitFor(ctx, name, match) })
}

// mustGet waits until a returned, and fails the case unless it returned
// the event with seq.
func mustGet(t *caseT, what string, a *attempt[protocols.Event], seq int64, by time.Time) {
	t.Helper()
	if !a.await(by) {
		t.Errorf("%s: still waiting at %s, want the event with seq %d", what, t.since(by), seq)
		return
	}
	if a.err != nil {
		t.Errorf("%s: got error %v, want the event with seq %d", what, a.err, seq)
		return
	}
	if a.v.Seq != seq {
		t.Errorf("%s: got the event %s with seq %d, want the one with seq %d", what, a.v.Name, a.v.Seq, seq)
	}
}

var dispatcherRules = []rule[func() protocols.Dispatcher]{
	{
		name: "HandlersRunInOrder",
		rule: ruleDispatchOrder,
		run: func(t *caseT, newDispatcher func() protocols.Dispatcher) {
			d := newDispatcher()
			var r record
			var want []string
			for i := range 6 {
				tag := fmt.Sprintf("m%d", i+1)
				d.Listen("MESSAGE_CREATE", r.handler(tag))
				d.Listen("GUILD_CREATE", r.handler(fmt.Sprintf("g%d", i+1)))
				want = append(want, tag)
			}
			for seq := range int64(3) {
				d.Dispatch(dispatch("MESSAGE_CREATE", seq+1))
				sameCalls(t, fmt.Sprintf("Dispatcher.Dispatch(MESSAGE_CREATE %d) after six handlers were added", seq+1), r.take(), want)
			}
		},
	},
	{
		name: "NamesAreSeparate",
		rule: ruleDispatchListen,
		run: func(t *caseT, newDispatcher func() protocols.Dispatcher) {
			d := newDispatcher()
			var r record
			d.Listen("MESSAGE_CREATE", r.handler("message"))
			d.Listen("GUILD_CREATE", r.handler("guild"))
			d.Dispatch(dispatch("MESSAGE_CREATE", 1))
			sameCalls(t, "Dispatcher.Dispatch(MESSAGE_CREATE)", r.take(), []string{"message"})
			d.Dispatch(dispatch("GUILD_CREATE", 2))
			sameCalls(t, "Dispatcher.Dispatch(GUILD_CREATE)", r.take(), []string{"guild"})
			d.Dispatch(dispatch("MESSAGE_DELETE", 3))
			sameCalls(t, "Dispatcher.Dispatch(MESSAGE_DELETE), which nobody listens to", r.take(), nil)
		},
	},
	{
		name: "AnyEventSeesAll",
		rule: ruleDispatchListen,
		run: func(t *caseT, newDispatcher func() protocols.Dispatcher) {
			d := newDispatcher()
			var r record
			var all []string
			d.Listen(protocols.AnyEvent, func(ev protocols.Event) {
				r.mu.Lock()
				all = append(all, fmt.Sprintf("%s/%s", ev.Op, ev.Name))
				r.mu.Unlock()
			})
			d.Listen("MESSAGE_CREATE", r.handler("message"))
			evs := []protocols.Event{
				dispatch("MESSAGE_CREATE", 1),
				dispatch("GUILD_CREATE", 2),
				{Op: protocols.OpHeartbeatACK},
				dispatch("TYPING_START", 3),
			}
			for _, ev := range evs {
				d.Dispatch(ev)
			}
			want := []string{"DISPATCH/MESSAGE_CREATE", "DISPATCH/GUILD_CREATE", "HEARTBEAT_ACK/", "DISPATCH/TYPING_START"}
			r.mu.Lock()
			got := all
			r.mu.Unlock()
			if !slices.Equal(got, want) {
				t.Errorf("Dispatcher.Listen(AnyEvent): the handler saw [%s], want every event: [%s]", strings.Join(got, " "), strings.Join(want, " "))
			}
			sameCalls(t, "Dispatcher.Listen(MESSAGE_CREATE) beside an AnyEvent handler", r.take(), []string{"message"})
		},
	},
	{
		name: "OpcodeNamesListen",
		rule: ruleDispatchKeys,
		run: func(t *caseT, newDispatcher func() protocols.Dispatcher) {
			d := newDispatcher()
			var r record
			d.Listen("HELLO", r.handler("hello"))
			d.Listen("DISPATCH", r.handler("dispatch"))
			d.Listen("MESSAGE_CREATE", r.handler("message"))
			d.Listen(protocols.AnyEvent, r.handler("any"))
			got := func(ev protocols.Event) []string {
				d.Dispatch(ev)
				calls := r.take()
				slices.Sort(calls)
				return calls
			}
			sameCalls(t, "Dispatcher.Dispatch(HELLO, no Name)", got(protocols.Event{Op: protocols.OpHello, Data: json.RawMessage(`{"heartbeat_interval":41250}`)}), []string{"any", "hello"})
			sameCalls(t, "Dispatcher.Dispatch(DISPATCH MESSAGE_CREATE)", got(dispatch("MESSAGE_CREATE", 1)), []string{"any", "dispatch", "message"})
			sameCalls(t, "Dispatcher.Dispatch(DISPATCH GUILD_CREATE)", got(dispatch("GUILD_CREATE", 2)), []string{"any", "dispatch"})
			sameCalls(t, "Dispatcher.Dispatch(HEARTBEAT_ACK, no Name)", got(protocols.Event{Op: protocols.OpHeartbeatACK}), []string{"any"})
		},
	},
	{
		name: "RemoveStopsDelivery",
		rule: ruleDispatchListen,
		run: func(t *caseT, newDispatcher func() protocols.Dispatcher) {
			d := newDispatcher()
			var r record
			d.Listen("MESSAGE_CREATE", r.handler("h1"))
			remove2 := d.Listen("MESSAGE_CREATE", r.handler("h2"))
			d.Listen("MESSAGE_CREATE", r.handler("h3"))
			removeAny := d.Listen(protocols.AnyEvent, r.handler("any"))
			d.Dispatch(dispatch("MESSAGE_CREATE", 1))
			r.take()
			if err := removeSafely(remove2); err != nil {
				t.Fatalf("Dispatcher.Listen's remove: %v", err)
			}
			if err := removeSafely(removeAny); err != nil {
				t.Fatalf("Dispatcher.Listen(AnyEvent)'s remove: %v", err)
			}
			d.Dispatch(dispatch("MESSAGE_CREATE", 2))
			sameCalls(t, "Dispatcher.Dispatch after h2 and the AnyEvent handler were removed", r.take(), []string{"h1", "h3"})
		},
	},
	{
		name: "RemoveTwiceHarmless",
		rule: ruleDispatchListen,
		run: func(t *caseT, newDispatcher func() protocols.Dispatcher) {
			d := newDispatcher()
			var r record
			d.Listen("MESSAGE_CREATE", r.handler("h1"))
			remove2 := d.Listen("MESSAGE_CREATE", r.handler("h2"))
			d.Listen("MESSAGE_CREATE", r.handler("h3"))
			for i := range 2 {
				if err := removeSafely(remove2); err != nil {
					t.Fatalf("Dispatcher.Listen's remove (call %d): %v, want removing twice to be harmless", i+1, err)
				}
			}
			d.Listen("MESSAGE_CREATE", r.handler("h4"))
			if err := removeSafely(remove2); err != nil {
				t.Fatalf("Dispatcher.Listen's remove (call 3): %v, want removing again to be harmless", err)
			}
			d.Dispatch(dispatch("MESSAGE_CREATE", 1))
			sameCalls(t, "Dispatcher.Dispatch after h2 was removed three times", r.take(), []string{"h1", "h3", "h4"})
		},
	},
	{
		name: "RemoveDuringDispatch",
		rule: ruleDispatcherConcurrent,
		run: func(t *caseT, newDispatcher func() protocols.Dispatcher) {
			d := newDispatcher()
			var r record
			var removeOnce, removeC func()
			var first atomic.Bool // handlers may run on other goroutines
			first.Store(true)
			removeOnce = d.Listen("MESSAGE_CREATE", func(protocols.Event) {
				r.add("once")
				removeOnce() // a one-shot handler removes itself
			})
			d.Listen("MESSAGE_CREATE", func(protocols.Event) {
				r.add("a")
				if first.Load() {
					removeC() // a handler removes a later one
				}
			})
			d.Listen("MESSAGE_CREATE", func(protocols.Event) {
				r.add("b")
				if first.CompareAndSwap(true, false) {
					d.Listen("MESSAGE_CREATE", r.handler("d")) // and one adds another
				}
			})
			removeC = d.Listen("MESSAGE_CREATE", r.handler("c"))
			d.Dispatch(dispatch("MESSAGE_CREATE", 1))
			got := r.take()
			if !slices.Contains(got, "once") || !slices.Contains(got, "a") || !slices.Contains(got, "b") {
				t.Errorf("Dispatcher.Dispatch (handlers removing and adding handlers): handlers ran as [%s], want once, a and b among them", strings.Join(got, " "))
			}
			for seq := int64(2); seq <= 3; seq++ {
				d.Dispatch(dispatch("MESSAGE_CREATE", seq))
				sameCalls(t, fmt.Sprintf("Dispatcher.Dispatch %d, after handlers removed 'once' and 'c' and added 'd' during Dispatch 1", seq), r.take(), []string{"a", "b", "d"})
			}
		},
	},
	{
		name: "DispatchReturnsAfterHandlers",
		rule: ruleDispatchRuns,
		run: func(t *caseT, newDispatcher func() protocols.Dispatcher) {
			d := newDispatcher()
			var slow, fast, anyRan atomic.Bool
			d.Listen("GUILD_CREATE", func(protocols.Event) {
				time.Sleep(2 * time.Second) // a handler that takes its time
				slow.Store(true)
			})
			d.Listen("GUILD_CREATE", func(protocols.Event) { fast.Store(true) })
			d.Listen(protocols.AnyEvent, func(protocols.Event) { anyRan.Store(true) })
			begin := time.Now()
			d.Dispatch(dispatch("GUILD_CREATE", 1))
			if !slow.Load() || !fast.Load() || !anyRan.Load() {
				t.Errorf("Dispatcher.Dispatch: returned at %s before its handlers had run (slow %t, fast %t, AnyEvent %t), want it to return when all have run",
					t.since(time.Now()), slow.Load(), fast.Load(), anyRan.Load())
			}
			if took := time.Since(begin); took < 2*time.Second {
				t.Errorf("Dispatcher.Dispatch: returned after %v, want after the 2s handler", took)
			}
			// Whatever ran late must be over before the case ends.
			time.Sleep(3 * time.Second)
		},
	},
	{
		name: "WaitForWakesAfterHandlers",
		rule: ruleDispatchRuns,
		run: func(t *caseT, newDispatcher func() protocols.Dispatcher) {
			d := newDispatcher()
			release := make(chan struct{})
			var ran atomic.Bool
			d.Listen("READY", func(protocols.Event) {
				<-release
				ran.Store(true)
			})
			w := startWaitFor(t, d, "READY", nil)
			settle()
			disp := start(t, func(context.Context) (struct{}, error) {
				d.Dispatch(dispatch("READY", 1))
				return struct{}{}, nil
			})
			time.Sleep(time.Second)
			settle()
			if w.finished() {
				t.Errorf("Dispatcher.WaitFor(READY): returned at %s while READY's handler still ran, want it woken after the handlers", t.since(w.at))
			}
			close(release)
			mustGet(t, "Dispatcher.WaitFor(READY)", w, 1, time.Now().Add(lateness))
			if !disp.await(time.Now().Add(lateness)) {
				t.Errorf("Dispatcher.Dispatch: still running at %s after its handler returned", t.since(time.Now()))
			}
			if !ran.Load() {
				t.Errorf("Dispatcher.Dispatch: the handler did not finish")
			}
		},
	},
	{
		name: "WaitForMatches",
		rule: ruleWaitFor,
		run: func(t *caseT, newDispatcher func() protocols.Dispatcher) {
			d := newDispatcher()
			third := startWaitFor(t, d, "MESSAGE_CREATE", func(ev protocols.Event) bool { return ev.Seq == 3 })
			anyMessage := startWaitFor(t, d, "MESSAGE_CREATE", nil)
			guild := startWaitFor(t, d, "GUILD_CREATE", nil)
			settle()
			d.Dispatch(dispatch("MESSAGE_CREATE", 1))
			mustGet(t, "Dispatcher.WaitFor(MESSAGE_CREATE, nil)", anyMessage, 1, time.Now().Add(lateness))
			mustWait(t, "Dispatcher.WaitFor(MESSAGE_CREATE, seq 3)", "only MESSAGE_CREATE 1 was dispatched", third)
			mustWait(t, "Dispatcher.WaitFor(GUILD_CREATE, nil)", "only MESSAGE_CREATE 1 was dispatched", guild)
			d.Dispatch(dispatch("GUILD_CREATE", 3)) // seq 3, but another name
			mustGet(t, "Dispatcher.WaitFor(GUILD_CREATE, nil)", guild, 3, time.Now().Add(lateness))
			mustWait(t, "Dispatcher.WaitFor(MESSAGE_CREATE, seq 3)", "GUILD_CREATE 3 has another name", third)
			d.Dispatch(dispatch("MESSAGE_CREATE", 2))
			mustWait(t, "Dispatcher.WaitFor(MESSAGE_CREATE, seq 3)", "its match refuses MESSAGE_CREATE 2", third)
			d.Dispatch(dispatch("MESSAGE_CREATE", 3))
			mustGet(t, "Dispatcher.WaitFor(MESSAGE_CREATE, seq 3)", third, 3, time.Now().Add(lateness))
			if third.finished() && third.err == nil && string(third.v.Data) != `{"seq":3}` {
				t.Errorf("Dispatcher.WaitFor(MESSAGE_CREATE, seq 3): got Data %s, want the event's %s", third.v.Data, `{"seq":3}`)
			}
		},
	},
	{
		name: "WaitForDataIsCopy",
		rule: ruleWaitForCopy,
		run: func(t *caseT, newDispatcher func() protocols.Dispatcher) {
			d := newDispatcher()
			w := startWaitFor(t, d, "MESSAGE_CREATE", nil)
			settle()
			const original = `{"content":"original"}`
			data := []byte(original)
			d.Dispatch(protocols.Event{Op: protocols.OpDispatch, Seq: 1, Name: "MESSAGE_CREATE", Data: data})
			for i := range data {
				data[i] = '#' // the shard reuses its read buffer
			}
			mustGet(t, "Dispatcher.WaitFor(MESSAGE_CREATE)", w, 1, time.Now().Add(lateness))
			if w.finished() && w.err == nil && string(w.v.Data) != original {
				t.Errorf("Dispatcher.WaitFor: got Data %q after the dispatcher's caller reused its buffer, want a copy: %s", w.v.Data, original)
			}
		},
	},
	{
		name: "WaitForHonorsContext",
		rule: ruleCtxErr,
		run: func(t *caseT, newDispatcher func() protocols.Dispatcher) {
			d := newDispatcher()
			wait := func(ctx context.Context) (protocols.Event, error) { return d.WaitFor(ctx, "GUILD_MEMBERS_CHUNK", nil) }
			// Whatever happens, a matching event in the end releases waiters
			// that ignored their context.
			defer d.Dispatch(dispatch("GUILD_MEMBERS_CHUNK", 99))

			ctx, cancel := context.WithCancel(t.ctx)
			cancel()
			pre := startCtx(t, ctx, wait)
			ctxError(t, "Dispatcher.WaitFor (context cancelled before the call)", pre, time.Now().Add(lateness), context.Canceled)

			ctx, cancel = context.WithCancel(t.ctx)
			waiting := startCtx(t, ctx, wait)
			time.Sleep(time.Second)
			mustWait(t, "Dispatcher.WaitFor", "nothing was dispatched", waiting)
			cancel()
			ctxError(t, "Dispatcher.WaitFor (context cancelled while waiting)", waiting, time.Now().Add(lateness), context.Canceled)

			ctx, cancel = context.WithTimeout(t.ctx, 2*time.Second)
			defer cancel()
			timed := startCtx(t, ctx, wait)
			ctxError(t, "Dispatcher.WaitFor (deadline 2s)", timed, time.Now().Add(2*time.Second+lateness), context.DeadlineExceeded)

			// Nothing is left behind: a new wait gets the next event.
			w := startWaitFor(t, d, "GUILD_MEMBERS_CHUNK", nil)
			settle()
			d.Dispatch(dispatch("GUILD_MEMBERS_CHUNK", 7))
			mustGet(t, "Dispatcher.WaitFor (after three waits ended on their contexts)", w, 7, time.Now().Add(lateness))
		},
	},
	{
		name: "ConcurrentSafeDispatch",
		rule: ruleDispatcherConcurrent,
		run: func(t *caseT, newDispatcher func() protocols.Dispatcher) {
			d := newDispatcher()
			var permanent, anyCount atomic.Int64
			d.Listen("MESSAGE_CREATE", func(protocols.Event) { permanent.Add(1) })
			d.Listen(protocols.AnyEvent, func(protocols.Event) { anyCount.Add(1) })
			const shards, each = 4, 150
			var wg sync.WaitGroup
			var waitErrs atomic.Int64
			for s := range shards { // one Dispatch goroutine per shard
				wg.Go(func() {
					for i := range each {
						ev := dispatch("MESSAGE_CREATE", int64(i+1))
						ev.Shard = s
						if i%5 == 0 {
							ev.Name = "GUILD_CREATE"
						}
						d.Dispatch(ev)
					}
				})
			}
			for range 4 { // handlers come and go
				wg.Go(func() {
					for i := range 60 {
						remove := d.Listen("MESSAGE_CREATE", func(protocols.Event) {})
						if i%2 == 0 {
							remove2 := d.Listen(protocols.AnyEvent, func(protocols.Event) {})
							remove2()
						}
						remove()
						remove()
					}
				})
			}
			for range 4 { // waits start and end
				wg.Go(func() {
					for range 30 {
						ctx, cancel := context.WithTimeout(t.ctx, 10*time.Millisecond)
						if _, err := d.WaitFor(ctx, "MESSAGE_CREATE", func(ev protocols.Event) bool { return ev.Seq%7 == 0 }); err != nil && !errors.Is(err, context.DeadlineExceeded) {
							waitErrs.Add(1)
						}
						cancel()
					}
				})
			}
			wg.Wait()
			if got, want := permanent.Load(), int64(shards*each*4/5); got != want {
				t.Errorf("Dispatcher: a handler added before concurrent Dispatch, Listen, remove and WaitFor calls ran %d times, want %d", got, want)
			}
			if got, want := anyCount.Load(), int64(shards*each); got != want {
				t.Errorf("Dispatcher: an AnyEvent handler ran %d times during concurrent calls, want %d", got, want)
			}
			if n := waitErrs.Load(); n > 0 {
				t.Errorf("Dispatcher.WaitFor: %d calls failed with an error other than their context's deadline", n)
			}
		},
	},
}
