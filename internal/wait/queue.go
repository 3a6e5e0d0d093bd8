// Package wait holds context-aware waiting primitives shared by the
// implementations: a FIFO queue of waiters for a condition guarded by the
// caller's lock, and a sleep that ends early on cancellation.
//
// Every wait blocks on channels and timers from package time, never on a
// held sync.Mutex, so testing/synctest can advance its fake clock through
// them.
package wait

import (
	"container/list"
	"context"
	"net"
	"sync"
	"time"
)

// AdmitFunc decides whether the waiter at the head of a [Queue] may go. It
// is called with the queue's lock held and must not block. When it admits
// (ok is true) it also takes what it grants, since no other waiter can run
// between the check and the grant. When it refuses, retryAt is when to ask
// again; the zero time means "when the queue is signalled".
type AdmitFunc func(now time.Time) (ok bool, retryAt time.Time)

// Queue is a first-in, first-out line of goroutines waiting for a condition
// guarded by L. Only the goroutine at the head asks its AdmitFunc, so
// waiters are admitted in arrival order; the others sleep on their own
// channel and do not wake on every change. Whoever changes the guarded
// state calls [Queue.Signal] so that the head looks again.
//
// A Queue must be created with [NewQueue].
type Queue struct {
	// L guards the queue and the caller's state.
	L sync.Locker

	waiters list.List // of *waiter
	closed  bool
	done    chan struct{}
}

type waiter struct{ wake chan struct{} }

// NewQueue returns an empty queue guarded by l.
func NewQueue(l sync.Locker) *Queue {
	return &Queue{L: l, done: make(chan struct{})}
}

// Wait blocks until admit, asked while this caller is at the head of the
// queue, returns true; until ctx ends (it returns ctx.Err()); or until the
// queue is closed (it returns [net.ErrClosed]). L must not be held. A
// caller arriving at an empty queue is asked at once; otherwise it queues
// behind the others, so that it cannot overtake them.
//
// An already cancelled ctx fails even when admit would succeed, so that a
// caller's cancellation is always honoured.
func (q *Queue) Wait(ctx context.Context, admit AdmitFunc) error {
	q.L.Lock()
	if q.closed {
		q.L.Unlock()
		return net.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		q.L.Unlock()
		return err
	}
	if q.waiters.Len() == 0 {
		if ok, _ := admit(time.Now()); ok {
			q.L.Unlock()
			return nil
		}
	}
	w := &waiter{wake: make(chan struct{}, 1)}
	el := q.waiters.PushBack(w)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		var retryAt time.Time
		if q.waiters.Front() == el {
			ok, at := admit(time.Now())
			if ok {
				q.waiters.Remove(el)
				q.Signal() // the next waiter may be admitted too
				q.L.Unlock()
				return nil
			}
			retryAt = at
		}
		q.L.Unlock()

		var tick <-chan time.Time
		if !retryAt.IsZero() {
			d := time.Until(retryAt)
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			tick = timer.C
		} else if timer != nil {
			timer.Stop()
		}

		select {
		case <-ctx.Done():
			q.L.Lock()
			if !q.closed {
				q.remove(el)
			}
			q.L.Unlock()
			return ctx.Err()
		case <-q.done:
			return net.ErrClosed
		case <-w.wake:
		case <-tick:
		}

		q.L.Lock()
		if q.closed {
			q.L.Unlock()
			return net.ErrClosed
		}
	}
}

// remove takes el out of the line and, when it was the head, hands the
// turn to the next waiter so that no signal is lost. L must be held.
func (q *Queue) remove(el *list.Element) {
	head := q.waiters.Front() == el
	q.waiters.Remove(el)
	if head {
		q.Signal()
	}
}

// Signal wakes the waiter at the head so that it asks its AdmitFunc again.
// Signals to a waiter that is already awake are coalesced. L must be held.
func (q *Queue) Signal() {
	if front := q.waiters.Front(); front != nil {
		select {
		case front.Value.(*waiter).wake <- struct{}{}:
		default:
		}
	}
}

// Len returns the number of waiting goroutines. L must be held.
func (q *Queue) Len() int { return q.waiters.Len() }

// Close wakes every waiter with [net.ErrClosed]; later calls to Wait fail
// the same way. It is idempotent. L must be held.
func (q *Queue) Close() {
	if q.closed {
		return
	}
	q.closed = true
	close(q.done)
	q.waiters.Init()
}

// Closed reports whether Close was called. L must be held.
func (q *Queue) Closed() bool { return q.closed }
