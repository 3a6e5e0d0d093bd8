package reference

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cordkit/cordkit/internal/waitset"
	"github.com/cordkit/cordkit/protocols"
)

var (
	_ protocols.Dispatcher        = (*dispatcher)(nil)
	_ func() protocols.Dispatcher = NewDispatcher
)

// NewDispatcher returns the reference [protocols.Dispatcher].
//
// # Names
//
// An event is delivered to the handlers and WaitFor calls registered under
// its Name (when not empty), under its opcode's name [protocols.Opcode.String]
// ("HELLO", "DISPATCH", ...) and under [protocols.AnyEvent]. So one type
// serves both of a gateway's dispatchers: the event dispatcher is fed
// dispatches and is listened to by event name ("MESSAGE_CREATE"); the raw
// dispatcher is fed every payload and is listened to by opcode name, or by
// event name for one kind of dispatch.
//
// # Order and concurrency
//
// Dispatch runs the handlers synchronously on the caller's goroutine, each
// matching handler once, in the order they were added (across names: a
// handler for "MESSAGE_CREATE" added before a handler for AnyEvent runs
// first). It starts no goroutine. Dispatch may be called from several
// goroutines at once (one per shard): the handlers then run concurrently
// for different events.
//
// Listen, remove and WaitFor may be called at any time, from handlers too.
// The handler lists are copy-on-write, so Dispatch holds no lock while
// handlers run. A handler added during a Dispatch is not called for that
// event; a handler removed during a Dispatch is not called once remove has
// returned (unless it is already running).
//
// # Panics
//
// A panicking handler is not recovered: the panic goes up through Dispatch
// to its caller, as with any function call, and the event's later handlers
// and waiters are skipped. Recovering would hide the bug and leave the
// program running with a handler's work half done (the net/http server's
// recover is the standard library's usual example of why not); a handler
// that wants to survive its own panics can recover itself. The dispatcher
// holds no lock while handlers run, so it stays usable after a panic.
//
// # WaitFor
//
// A WaitFor's match runs on the dispatching goroutine, after the event's
// handlers, and may run concurrently for events dispatched concurrently;
// it must be quick and must not call the dispatcher's WaitFor. The event
// returned owns a copy of Data. A WaitFor whose context ends returns an
// error wrapping ctx.Err() and leaves nothing behind.
func NewDispatcher() protocols.Dispatcher {
	return &dispatcher{handlers: make(map[string][]*listener)}
}

type dispatcher struct {
	mu sync.Mutex
	// handlers maps a name to a slice that is never changed in place:
	// Listen and remove store a new slice, so Dispatch can use the slice
	// it loaded without holding mu.
	handlers map[string][]*listener
	seq      uint64 // order of Listen calls, across names

	waits waitset.Set // pending WaitFor calls
}

type listener struct {
	seq     uint64
	h       protocols.Handler
	removed atomic.Bool
}

// Listen panics if h is nil, a wiring mistake.
func (d *dispatcher) Listen(name string, h protocols.Handler) (remove func()) {
	if h == nil {
		panic("reference: Dispatcher.Listen called with a nil handler")
	}
	d.mu.Lock()
	d.seq++
	l := &listener{seq: d.seq, h: h}
	old := d.handlers[name]
	d.handlers[name] = append(old[:len(old):len(old)], l) // always a new array
	d.mu.Unlock()

	var once sync.Once
	return func() {
		once.Do(func() {
			l.removed.Store(true)
			d.mu.Lock()
			defer d.mu.Unlock()
			if rest := waitset.Without(d.handlers[name], l); len(rest) > 0 {
				d.handlers[name] = rest
			} else {
				delete(d.handlers, name)
			}
		})
	}
}

func (d *dispatcher) Dispatch(ev protocols.Event) {
	keys := waitset.Keys(ev)
	var hs [3][]*listener
	d.mu.Lock()
	for i, k := range keys {
		if k != "" {
			hs[i] = d.handlers[k]
		}
	}
	d.mu.Unlock()

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
		return protocols.Event{}, fmt.Errorf("reference: wait for %q: %w", name, err)
	}
	return ev, nil
}
