package fast

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"

	"github.com/cordkit/cordkit/internal/waitset"
	"github.com/cordkit/cordkit/protocols"
)

var (
	_ protocols.Dispatcher        = (*dispatcher)(nil)
	_ func() protocols.Dispatcher = NewDispatcher
)

// NewDispatcher returns a [protocols.Dispatcher] whose Dispatch takes no
// lock and, when no WaitFor is pending, allocates nothing.
//
// It keeps the reference dispatcher's semantics: an event goes to the
// handlers and WaitFor calls of its Name (when not empty), of its opcode's
// name [protocols.Opcode.String] and of [protocols.AnyEvent]; Dispatch runs
// the matching handlers synchronously on the caller's goroutine, each once,
// in the order they were added (across names too), then wakes the matching
// WaitFor calls, and starts no goroutine. Dispatch may be called from
// several goroutines at once.
//
// # How
//
// The handler table is an immutable map from name to handlers, replaced
// as a whole (copy on write) by Listen and remove, which a mutex
// serializes; Dispatch reads it with one atomic load. A handler added
// during a Dispatch is not called for that event; a removed handler is
// never called once remove has returned (unless it is already running):
// remove sets a per-handler flag that Dispatch checks before each call.
//
// WaitFor calls are kept apart, under the mutex, with an atomic count of
// pending waits: Dispatch looks at them, taking the mutex, only when that
// count is not zero.
//
// # Panics
//
// As with the reference, a panicking handler is not recovered: the panic
// goes up through Dispatch, and the event's later handlers and waiters are
// skipped. No lock is held while handlers run, so the dispatcher stays
// usable.
//
// # WaitFor
//
// A WaitFor's match runs on the dispatching goroutine, after the event's
// handlers, and may run concurrently for events dispatched concurrently;
// it must be quick and must not call the dispatcher's WaitFor. The event
// returned owns a copy of Data. A WaitFor whose context ends returns an
// error wrapping ctx.Err() and leaves nothing behind.
func NewDispatcher() protocols.Dispatcher {
	d := &dispatcher{}
	d.handlers.Store(&handlerTable{})
	return d
}

type dispatcher struct {
	// handlers is never changed in place: writers, holding mu, store a new
	// table.
	handlers atomic.Pointer[handlerTable]

	mu  sync.Mutex
	seq uint64 // order of Listen calls, across names; guarded by mu

	waits waitset.Set // pending WaitFor calls
}

// handlerTable maps a name to its handlers, in the order they were added.
// Neither the map nor its slices change once stored.
type handlerTable struct {
	byName map[string][]*listener
}

type listener struct {
	seq     uint64
	h       protocols.Handler
	removed atomic.Bool
}

// Listen panics if h is nil, a wiring mistake.
func (d *dispatcher) Listen(name string, h protocols.Handler) (remove func()) {
	if h == nil {
		panic("fast: Dispatcher.Listen called with a nil handler")
	}
	d.mu.Lock()
	d.seq++
	l := &listener{seq: d.seq, h: h}
	old := d.handlers.Load().byName
	next := maps.Clone(old)
	if next == nil {
		next = make(map[string][]*listener, 1)
	}
	list := old[name]
	next[name] = append(list[:len(list):len(list)], l) // always a new array
	d.handlers.Store(&handlerTable{byName: next})
	d.mu.Unlock()

	return func() {
		if !l.removed.CompareAndSwap(false, true) {
			return // removed already
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		old := d.handlers.Load().byName
		next := maps.Clone(old)
		if rest := waitset.Without(old[name], l); len(rest) > 0 {
			next[name] = rest
		} else {
			delete(next, name)
		}
		d.handlers.Store(&handlerTable{byName: next})
	}
}

func (d *dispatcher) Dispatch(ev protocols.Event) {
	keys := waitset.Keys(ev)
	var hs [3][]*listener
	if byName := d.handlers.Load().byName; len(byName) > 0 {
		for i, k := range keys {
			if k != "" {
				hs[i] = byName[k]
			}
		}
	}

	// Run the handlers of the three names merged by the order they were
	// added: each list is already in that order.
	for {
		next := -1
		for i := range hs {
			if len(hs[i]) > 0 && (next < 0 || hs[i][0].seq < hs[next][0].seq) {
				next = i
			}
		}
		if next < 0 {
			break
		}
		l := hs[next][0]
		hs[next] = hs[next][1:]
		if !l.removed.Load() {
			l.h(ev)
		}
	}

	d.waits.Deliver(ev, keys)
}

func (d *dispatcher) WaitFor(ctx context.Context, name string, match func(protocols.Event) bool) (protocols.Event, error) {
	ev, err := d.waits.Wait(ctx, name, match)
	if err != nil {
		return protocols.Event{}, fmt.Errorf("fast: wait for %q: %w", name, err)
	}
	return ev, nil
}
