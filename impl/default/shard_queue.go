package reference

import (
	"context"
	"sync"
	"time"

	"github.com/cordkit/cordkit/protocols"
)

// queued is one entry of a shard's event queue.
type queued struct {
	ev      protocols.Event
	buf     *[]byte // ev.Data's pooled buffer, or nil
	events  bool    // also dispatch to Events (op 0); every entry goes to Raw
	notify  bool    // call Run's ready callback instead
	session string  // the session ev belongs to
}

// eventQueue hands payloads from a shard's reading goroutine to its
// dispatching goroutine, in order. It holds at most limit bytes of event
// data (but always admits one entry, however large), so that slow
// handlers slow the reading down rather than exhaust memory.
//
// The dispatching goroutine runs only while there is work: push starts
// it when none runs, and it ends once the queue stayed empty for
// drainLinger, so an idle shard costs no goroutine for dispatching. At
// most one runs at a time, so entries are still handled one at a time
// and in order.
type eventQueue struct {
	mu       sync.Mutex
	items    []queued
	head     int
	bytes    int
	limit    int
	stopped  bool
	draining bool          // a dispatching goroutine runs
	wake     chan struct{} // capacity 1: entries arrived, or stop
	space    chan struct{} // capacity 1: entries left

	drain    func() // the dispatching goroutine's body
	drainers sync.WaitGroup
	// linger times an idle dispatching goroutine; only the one running
	// uses it.
	linger *time.Timer
}

// drainLinger is how long an idle dispatching goroutine waits for more
// entries before it ends.
const drainLinger = time.Second

func newEventQueue(limit int, drain func()) *eventQueue {
	return &eventQueue{limit: limit, drain: drain, wake: make(chan struct{}, 1), space: make(chan struct{}, 1)}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// push appends it, waiting for room while the queue is over its limit. It
// reports false, without queuing, when ctx ends, abort is closed or the
// queue was stopped first.
func (q *eventQueue) push(ctx context.Context, abort <-chan struct{}, it queued) bool {
	size := len(it.ev.Data)
	for {
		q.mu.Lock()
		if q.stopped {
			q.mu.Unlock()
			return false
		}
		if size == 0 || q.bytes == 0 || q.bytes+size <= q.limit {
			q.items = append(q.items, it)
			q.bytes += size
			start := !q.draining
			q.draining = true
			if start {
				q.drainers.Go(q.drain)
			}
			q.mu.Unlock()
			signal(q.wake)
			return true
		}
		q.mu.Unlock()
		select {
		case <-q.space:
		case <-abort:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// pop returns the next entry, waiting up to drainLinger for one; false
// once stopped, or when none came: the caller must then end, and the next
// push starts a new dispatching goroutine.
func (q *eventQueue) pop() (queued, bool) {
	lingering := false
	defer func() {
		if lingering {
			q.linger.Stop()
		}
	}()
	idle := false
	for {
		q.mu.Lock()
		if q.stopped {
			q.draining = false
			q.mu.Unlock()
			return queued{}, false
		}
		if q.head < len(q.items) {
			it := q.items[q.head]
			q.items[q.head] = queued{}
			q.head++
			if q.head == len(q.items) {
				q.items, q.head = q.items[:0], 0
			} else if q.head > 1024 && q.head*2 > len(q.items) {
				n := copy(q.items, q.items[q.head:])
				clear(q.items[n:])
				q.items, q.head = q.items[:n], 0
			}
			q.bytes -= len(it.ev.Data)
			q.mu.Unlock()
			signal(q.space)
			return it, true
		}
		if idle {
			q.draining = false
			if cap(q.items) > 64 {
				q.items = nil // an idle shard keeps no large backlog array
			}
			q.mu.Unlock()
			return queued{}, false
		}
		q.mu.Unlock()
		if !lingering {
			lingering = true
			if q.linger == nil {
				q.linger = time.NewTimer(drainLinger)
			} else {
				q.linger.Reset(drainLinger)
			}
		}
		select {
		case <-q.wake:
		case <-q.linger.C:
			idle = true
		}
	}
}

// stop ends pop and push, and returns what was queued: dropped.
func (q *eventQueue) stop() []queued {
	q.mu.Lock()
	dropped := q.items[q.head:]
	q.stopped = true
	q.items, q.head, q.bytes = nil, 0, 0
	q.mu.Unlock()
	signal(q.wake)
	signal(q.space)
	q.drainers.Wait()
	return dropped
}

// deliver is the dispatching goroutine's body: it hands each queued
// payload to Raw, and dispatches to Events, until the queue stops or
// stays empty.
func (s *shard) deliver(q *eventQueue, ready func()) {
	for {
		it, ok := q.pop()
		if !ok {
			return
		}
		if it.notify {
			if ready != nil {
				ready()
			}
			continue
		}
		if s.p.Raw != nil {
			s.p.Raw.Dispatch(it.ev)
		}
		if it.events && s.p.Events != nil {
			s.p.Events.Dispatch(it.ev)
		}
		putData(it.buf) // handlers may not keep Data
		if it.ev.Op == protocols.OpDispatch && it.ev.Seq > 0 {
			s.mu.Lock()
			s.handled = seqMark{it.session, it.ev.Seq}
			s.mu.Unlock()
		}
	}
}

// dataPool holds the buffers of queued payloads: a payload is copied out
// of the connection's read buffer into one, and the buffer comes back once
// the handlers returned, since Event.Data is valid only while they run.
var dataPool = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledData is the largest buffer put back into dataPool; larger ones
// (a big GUILD_CREATE) are left to the garbage collector.
const maxPooledData = 64 << 10

// copyData copies p into a pooled buffer.
func copyData(p []byte) (*[]byte, []byte) {
	bp := dataPool.Get().(*[]byte)
	*bp = append((*bp)[:0], p...)
	return bp, *bp
}

// putData returns a buffer from copyData; nil does nothing.
func putData(bp *[]byte) {
	if bp == nil || cap(*bp) > maxPooledData {
		return
	}
	dataPool.Put(bp)
}
