package broken

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cordkit/cordkit/protocols"
)

// ReverseOrder returns a dispatcher that runs the handlers of a name newest
// first. It breaks "Handlers of one name run in the order they were
// added." and fails TestDispatcher/HandlersRunInOrder.
func ReverseOrder() protocols.Dispatcher { return &miniDispatcher{reverse: true} }

// WaitForSharesData returns a dispatcher whose WaitFor hands over the
// dispatched event's Data without copying it. It breaks "The returned
// event's Data is a copy the caller owns." and fails
// TestDispatcher/WaitForDataIsCopy.
func WaitForSharesData() protocols.Dispatcher { return &miniDispatcher{share: true} }

// NamesOnly returns a dispatcher that delivers events by Name and to
// AnyEvent, but not by opcode name, so a raw dispatcher's "HELLO" handler
// never runs. It breaks "An event goes to the handlers listening to its
// Name ("MESSAGE_CREATE"), to its opcode's name [Opcode.String] ("HELLO",
// "DISPATCH"), and to [AnyEvent]." and fails
// TestDispatcher/OpcodeNamesListen.
func NamesOnly() protocols.Dispatcher { return &miniDispatcher{namesOnly: true} }

// IgnoreRemove returns remove functions that do nothing. It breaks
// "Listen registers h for events named name, or for all with [AnyEvent],
// and returns a function that removes it; removing twice is harmless."
// and fails TestDispatcher/RemoveStopsDelivery and RemoveDuringDispatch.
func IgnoreRemove(next protocols.Dispatcher) protocols.Dispatcher { return deafRemover{next} }

type deafRemover struct{ protocols.Dispatcher }

func (d deafRemover) Listen(name string, h protocols.Handler) func() {
	d.Dispatcher.Listen(name, h)
	return func() {}
}

// DispatchAsync runs Dispatch in a new goroutine and returns at once, as
// libraries that run handlers in goroutines do. It breaks "Dispatch calls
// the handlers for ev, then wakes matching WaitFor calls, and returns when
// all have run." and fails TestDispatcher/DispatchReturnsAfterHandlers.
func DispatchAsync(next protocols.Dispatcher) protocols.Dispatcher { return asyncDispatcher{next} }

type asyncDispatcher struct{ protocols.Dispatcher }

func (d asyncDispatcher) Dispatch(ev protocols.Event) { go d.Dispatcher.Dispatch(ev) }

// miniDispatcher is a small dispatcher with a bug or two to order.
type miniDispatcher struct {
	reverse   bool // newest handler first
	share     bool // WaitFor gets the dispatched Data itself
	namesOnly bool // no delivery by opcode name

	mu       sync.Mutex
	handlers map[string][]*entry
	waiters  []*miniWaiter
}

type entry struct {
	h       protocols.Handler
	removed atomic.Bool
}

type miniWaiter struct {
	name  string
	match func(protocols.Event) bool
	done  atomic.Bool
	ch    chan protocols.Event // capacity 1
}

func (d *miniDispatcher) Listen(name string, h protocols.Handler) func() {
	e := &entry{h: h}
	d.mu.Lock()
	if d.handlers == nil {
		d.handlers = make(map[string][]*entry)
	}
	list := slices.Clip(d.handlers[name])
	if d.reverse {
		list = append([]*entry{e}, list...)
	} else {
		list = append(list, e)
	}
	d.handlers[name] = list
	d.mu.Unlock()
	return func() { e.removed.Store(true) }
}

func (d *miniDispatcher) Dispatch(ev protocols.Event) {
	d.mu.Lock()
	var hs []*entry
	if ev.Name != "" && ev.Name != protocols.AnyEvent {
		hs = append(hs, d.handlers[ev.Name]...)
	}
	if op := ev.Op.String(); !d.namesOnly && op != ev.Name {
		hs = append(hs, d.handlers[op]...)
	}
	hs = append(hs, d.handlers[protocols.AnyEvent]...)
	ws := slices.Clone(d.waiters)
	d.mu.Unlock()
	for _, e := range hs {
		if !e.removed.Load() {
			e.h(ev)
		}
	}
	for _, w := range ws {
		if w.name != ev.Name || (w.match != nil && !w.match(ev)) || !w.done.CompareAndSwap(false, true) {
			continue
		}
		got := ev
		if !d.share {
			got.Data = bytes.Clone(ev.Data)
		}
		w.ch <- got
		d.drop(w)
	}
}

func (d *miniDispatcher) WaitFor(ctx context.Context, name string, match func(protocols.Event) bool) (protocols.Event, error) {
	w := &miniWaiter{name: name, match: match, ch: make(chan protocols.Event, 1)}
	d.mu.Lock()
	d.waiters = append(d.waiters, w)
	d.mu.Unlock()
	select {
	case ev := <-w.ch:
		return ev, nil
	case <-ctx.Done():
		if w.done.CompareAndSwap(false, true) {
			d.drop(w)
			return protocols.Event{}, ctx.Err()
		}
		return <-w.ch, nil
	}
}

func (d *miniDispatcher) drop(w *miniWaiter) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if i := slices.Index(d.waiters, w); i >= 0 {
		d.waiters = slices.Delete(d.waiters, i, i+1)
	}
}
