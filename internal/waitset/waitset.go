// Package waitset holds the pending WaitFor calls of a
// [protocols.Dispatcher], and the names an event is delivered under; the
// reference and fast dispatchers share it and differ only in how they
// keep their handlers.
package waitset

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"

	"github.com/cordkit/cordkit/protocols"
)

// Set is a dispatcher's pending WaitFor calls. The zero value is ready to
// use; a Set must not be copied after first use. Deliver costs one atomic
// load when nothing waits.
type Set struct {
	pending atomic.Int64 // waiters in byName; read before taking mu

	mu     sync.Mutex
	byName map[string][]*waiter // copy-on-write slices
}

type waiter struct {
	match func(protocols.Event) bool
	done  atomic.Bool          // set by whoever ends the wait: a Deliver or ctx
	ch    chan protocols.Event // capacity 1: the one matching event
}

// Wait blocks until Deliver hands over an event delivered under name for
// which match (nil matches all) returns true, or ctx ends; the error is
// then ctx.Err(), and nothing is left behind. The event's Data is a copy.
func (s *Set) Wait(ctx context.Context, name string, match func(protocols.Event) bool) (protocols.Event, error) {
	if err := ctx.Err(); err != nil {
		return protocols.Event{}, err
	}
	w := &waiter{match: match, ch: make(chan protocols.Event, 1)}
	s.mu.Lock()
	if s.byName == nil {
		s.byName = make(map[string][]*waiter)
	}
	old := s.byName[name]
	s.byName[name] = append(old[:len(old):len(old)], w)
	s.pending.Add(1)
	s.mu.Unlock()

	select {
	case ev := <-w.ch:
		return ev, nil
	case <-ctx.Done():
		if w.done.CompareAndSwap(false, true) {
			s.remove(name, w)
			return protocols.Event{}, ctx.Err()
		}
		// A Deliver matched first and is handing the event over.
		return <-w.ch, nil
	}
}

// Deliver wakes the pending waits, under the names in keys (see [Keys]),
// whose match accepts ev. A match runs on the caller's goroutine and may
// run concurrently for events delivered concurrently.
func (s *Set) Deliver(ev protocols.Event, keys [3]string) {
	if s.pending.Load() == 0 {
		return
	}
	var ws [3][]*waiter
	s.mu.Lock()
	for i, k := range keys {
		if k != "" {
			ws[i] = s.byName[k]
		}
	}
	s.mu.Unlock()
	for i, list := range ws {
		for _, w := range list {
			if w.done.Load() || (w.match != nil && !w.match(ev)) {
				continue
			}
			if !w.done.CompareAndSwap(false, true) {
				continue // ended meanwhile: its ctx, or another Deliver
			}
			got := ev
			got.Data = bytes.Clone(ev.Data)
			w.ch <- got // never blocks: capacity 1, one send per waiter
			s.remove(keys[i], w)
		}
	}
}

// remove removes w, which is in byName[name] exactly once: only the
// goroutine that set w.done calls it.
func (s *Set) remove(name string, w *waiter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rest := Without(s.byName[name], w); len(rest) > 0 {
		s.byName[name] = rest
	} else {
		delete(s.byName, name)
	}
	s.pending.Add(-1)
}

// Keys returns the names ev is delivered under: its Name (when not empty),
// its opcode's name ([protocols.Opcode.String]) and [protocols.AnyEvent],
// without duplicates; unused entries are "".
func Keys(ev protocols.Event) [3]string {
	keys := [3]string{ev.Name, ev.Op.String(), protocols.AnyEvent}
	if keys[1] == keys[0] {
		keys[1] = ""
	}
	if keys[0] == protocols.AnyEvent || keys[1] == protocols.AnyEvent {
		keys[2] = ""
	}
	return keys
}

// Without returns a new slice holding s minus x.
func Without[T comparable](s []T, x T) []T {
	out := make([]T, 0, len(s))
	for _, v := range s {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}
