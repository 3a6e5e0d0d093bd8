package fast

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"

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
	d := &dispatcher{waiters: make(map[string][]*waiter)}
	d.handlers.Store(&handlerTable{})
	return d
}

type dispatcher struct {
	// handlers is never changed in place: writers, holding mu, store a new
	// table.
	handlers atomic.Pointer[handlerTable]
	// pending counts the waiters in waiters; Dispatch reads it before
	// taking mu.
	pending atomic.Int64

	mu      sync.Mutex
	seq     uint64               // order of Listen calls, across names; guarded by mu
	waiters map[string][]*waiter // copy-on-write slices; guarded by mu
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

type waiter struct {
	match func(protocols.Event) bool
	done  atomic.Bool          // set by whoever ends the wait: a Dispatch or ctx
	ch    chan protocols.Event // capacity 1: the one matching event
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
		if rest := without(old[name], l); len(rest) > 0 {
			next[name] = rest
		} else {
			delete(next, name)
		}
		d.handlers.Store(&handlerTable{byName: next})
	}
}

func (d *dispatcher) Dispatch(ev protocols.Event) {
	keys := eventKeys(ev)
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

	if d.pending.Load() == 0 {
		return
	}
	var ws [3][]*waiter
	d.mu.Lock()
	for i, k := range keys {
		if k != "" {
			ws[i] = d.waiters[k]
		}
	}
	d.mu.Unlock()
	for i, list := range ws {
		for _, w := range list {
			if w.done.Load() || (w.match != nil && !w.match(ev)) {
				continue
			}
			if !w.done.CompareAndSwap(false, true) {
				continue // ended meanwhile: its ctx, or another Dispatch
			}
			got := ev
			got.Data = bytes.Clone(ev.Data)
			w.ch <- got // never blocks: capacity 1, one send per waiter
			d.removeWaiter(keys[i], w)
		}
	}
}

func (d *dispatcher) WaitFor(ctx context.Context, name string, match func(protocols.Event) bool) (protocols.Event, error) {
	if err := ctx.Err(); err != nil {
		return protocols.Event{}, fmt.Errorf("fast: wait for %q: %w", name, err)
	}
	w := &waiter{match: match, ch: make(chan protocols.Event, 1)}
	d.mu.Lock()
	old := d.waiters[name]
	d.waiters[name] = append(old[:len(old):len(old)], w)
	d.pending.Add(1)
	d.mu.Unlock()

	select {
	case ev := <-w.ch:
		return ev, nil
	case <-ctx.Done():
		if w.done.CompareAndSwap(false, true) {
			d.removeWaiter(name, w)
			return protocols.Event{}, fmt.Errorf("fast: wait for %q: %w", name, ctx.Err())
		}
		// A Dispatch matched first and is handing the event over.
		return <-w.ch, nil
	}
}

// removeWaiter removes w, which is in d.waiters[name] exactly once: only
// the goroutine that set w.done calls it.
func (d *dispatcher) removeWaiter(name string, w *waiter) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if rest := without(d.waiters[name], w); len(rest) > 0 {
		d.waiters[name] = rest
	} else {
		delete(d.waiters, name)
	}
	d.pending.Add(-1)
}

// eventKeys returns the names ev is delivered under, without duplicates;
// unused entries are "".
func eventKeys(ev protocols.Event) [3]string {
	keys := [3]string{ev.Name, ev.Op.String(), protocols.AnyEvent}
	if keys[1] == keys[0] {
		keys[1] = ""
	}
	if keys[0] == protocols.AnyEvent || keys[1] == protocols.AnyEvent {
		keys[2] = ""
	}
	return keys
}

// without returns a new slice holding s minus x.
func without[T comparable](s []T, x T) []T {
	out := make([]T, 0, len(s))
	for _, v := range s {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}
