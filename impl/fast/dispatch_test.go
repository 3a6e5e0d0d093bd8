package fast_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cordkit/cordkit/impl/fast"
	"github.com/cordkit/cordkit/protocols"
)

func msg(seq int64) protocols.Event {
	return protocols.Event{Op: protocols.OpDispatch, Seq: seq, Name: "MESSAGE_CREATE", Data: json.RawMessage(`{"id":"1"}`)}
}

type calls struct {
	mu  sync.Mutex
	got []string
}

func (c *calls) h(tag string) protocols.Handler {
	return func(protocols.Event) {
		c.mu.Lock()
		c.got = append(c.got, tag)
		c.mu.Unlock()
	}
}

func (c *calls) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	got := c.got
	c.got = nil
	return got
}

func TestDispatcherOrderAcrossNames(t *testing.T) {
	d := fast.NewDispatcher()
	var c calls
	d.Listen(protocols.AnyEvent, c.h("any1"))
	d.Listen("MESSAGE_CREATE", c.h("m1"))
	d.Listen("DISPATCH", c.h("op1"))
	d.Listen("GUILD_CREATE", c.h("g"))
	d.Listen("MESSAGE_CREATE", c.h("m2"))
	d.Listen(protocols.AnyEvent, c.h("any2"))
	d.Listen("HELLO", c.h("hello"))

	d.Dispatch(msg(1))
	if got, want := c.take(), []string{"any1", "m1", "op1", "m2", "any2"}; !slices.Equal(got, want) {
		t.Errorf("MESSAGE_CREATE: ran %v, want %v", got, want)
	}
	d.Dispatch(protocols.Event{Op: protocols.OpHello})
	if got, want := c.take(), []string{"any1", "any2", "hello"}; !slices.Equal(got, want) {
		t.Errorf("HELLO: ran %v, want %v", got, want)
	}
	// An event named like its opcode runs that name's handlers once.
	d.Dispatch(protocols.Event{Op: protocols.OpDispatch, Name: "DISPATCH"})
	if got, want := c.take(), []string{"any1", "op1", "any2"}; !slices.Equal(got, want) {
		t.Errorf("DISPATCH named DISPATCH: ran %v, want %v", got, want)
	}
	// Listening to AnyEvent by Name does not run AnyEvent handlers twice.
	d.Dispatch(protocols.Event{Op: protocols.OpDispatch, Name: protocols.AnyEvent})
	if got, want := c.take(), []string{"any1", "op1", "any2"}; !slices.Equal(got, want) {
		t.Errorf("DISPATCH named *: ran %v, want %v", got, want)
	}
}

func TestDispatcherRemove(t *testing.T) {
	d := fast.NewDispatcher()
	var c calls
	d.Listen("MESSAGE_CREATE", c.h("a"))
	rb := d.Listen("MESSAGE_CREATE", c.h("b"))
	rany := d.Listen(protocols.AnyEvent, c.h("any"))
	rb()
	rb()
	rany()
	d.Listen("MESSAGE_CREATE", c.h("c"))
	rb()
	d.Dispatch(msg(1))
	if got, want := c.take(), []string{"a", "c"}; !slices.Equal(got, want) {
		t.Errorf("after removes: ran %v, want %v", got, want)
	}
}

func TestDispatcherRemoveDuringDispatch(t *testing.T) {
	d := fast.NewDispatcher()
	var c calls
	var removeLater func()
	d.Listen("MESSAGE_CREATE", func(protocols.Event) {
		c.h("first")(protocols.Event{})
		// A later handler of the same event: never called.
		removeLater()
		// Not called for this event.
		d.Listen("MESSAGE_CREATE", c.h("added"))
	})
	removeLater = d.Listen(protocols.AnyEvent, c.h("later"))
	d.Dispatch(msg(1))
	if got, want := c.take(), []string{"first"}; !slices.Equal(got, want) {
		t.Errorf("dispatch 1: ran %v, want %v", got, want)
	}
	d.Dispatch(msg(2))
	if got, want := c.take(), []string{"first", "added"}; !slices.Equal(got, want) {
		t.Errorf("dispatch 2: ran %v, want %v", got, want)
	}
}

func TestDispatcherNilHandlerPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Listen(nil) did not panic")
		}
	}()
	fast.NewDispatcher().Listen("X", nil)
}

func TestDispatcherWaitFor(t *testing.T) {
	d := fast.NewDispatcher()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type result struct {
		ev  protocols.Event
		err error
	}
	done := make(chan result, 1)
	ready := make(chan struct{})
	var handlerRan atomic.Bool
	d.Listen("MESSAGE_CREATE", func(protocols.Event) { handlerRan.Store(true) })
	go func() {
		close(ready)
		ev, err := d.WaitFor(ctx, "MESSAGE_CREATE", func(ev protocols.Event) bool { return ev.Seq == 2 })
		done <- result{ev, err}
	}()
	<-ready
	// Dispatch until the waiter has registered and matched.
	data := []byte(`{"seq":2}`)
	for seq := int64(1); ; seq = 2 {
		ev := msg(seq)
		ev.Data = data
		d.Dispatch(ev)
		select {
		case r := <-done:
			copy(data, "#########")
			if r.err != nil || r.ev.Seq != 2 || string(r.ev.Data) != `{"seq":2}` {
				t.Fatalf("WaitFor = %+v, %v; want seq 2 with its own copy of Data", r.ev, r.err)
			}
			if !handlerRan.Load() {
				t.Error("WaitFor returned before the handler ran")
			}
			return
		case <-time.After(time.Millisecond):
		}
	}
}

func TestDispatcherWaitForContext(t *testing.T) {
	d := fast.NewDispatcher()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.WaitFor(ctx, "X", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitFor(cancelled ctx) = %v, want context.Canceled", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := d.WaitFor(ctx, "X", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitFor(timed out ctx) = %v, want context.DeadlineExceeded", err)
	}
	// The waits that ended left nothing behind: Dispatch allocates nothing.
	d.Listen("X", func(protocols.Event) {})
	ev := protocols.Event{Op: protocols.OpDispatch, Name: "X"}
	if n := testing.AllocsPerRun(100, func() { d.Dispatch(ev) }); n != 0 {
		t.Errorf("Dispatch after ended waits: %v allocs, want 0", n)
	}
}

func TestDispatcherDispatchAllocs(t *testing.T) {
	d := fast.NewDispatcher()
	var n atomic.Int64
	for range 5 {
		d.Listen("MESSAGE_CREATE", func(protocols.Event) { n.Add(1) })
		d.Listen(protocols.AnyEvent, func(protocols.Event) { n.Add(1) })
		d.Listen("DISPATCH", func(protocols.Event) { n.Add(1) })
	}
	for _, ev := range []protocols.Event{msg(1), {Op: protocols.OpHeartbeatACK}, {Op: protocols.OpDispatch, Name: "GUILD_CREATE"}} {
		if allocs := testing.AllocsPerRun(100, func() { d.Dispatch(ev) }); allocs != 0 {
			t.Errorf("Dispatch(%s %s): %v allocs, want 0", ev.Op, ev.Name, allocs)
		}
	}
	if n.Load() == 0 {
		t.Error("no handler ran")
	}
	empty := fast.NewDispatcher()
	ev := msg(1)
	if allocs := testing.AllocsPerRun(100, func() { empty.Dispatch(ev) }); allocs != 0 {
		t.Errorf("Dispatch with no handlers: %v allocs, want 0", allocs)
	}
}

// Run with -race: Listen, remove, WaitFor and Dispatch from many goroutines.
func TestDispatcherConcurrent(t *testing.T) {
	d := fast.NewDispatcher()
	var permanent, anyCount atomic.Int64
	d.Listen("MESSAGE_CREATE", func(protocols.Event) { permanent.Add(1) })
	d.Listen(protocols.AnyEvent, func(protocols.Event) { anyCount.Add(1) })
	const shards, each = 4, 300
	var wg sync.WaitGroup
	var stop atomic.Bool
	// A handler removed by another goroutine must not be called by a
	// Dispatch that began after remove returned. (A Dispatch already past
	// its check may still call it: "unless it is already running".) clock
	// orders the two: each Dispatch carries the tick it began at in Seq,
	// each removal records the tick after remove returned.
	var clock, violations atomic.Int64
	for range 2 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				var removedAt atomic.Int64
				remove := d.Listen("MESSAGE_CREATE", func(ev protocols.Event) {
					if at := removedAt.Load(); at != 0 && ev.Seq > at {
						violations.Add(1)
					}
				})
				if i%2 == 0 {
					d.Listen(protocols.AnyEvent, func(protocols.Event) {})()
				}
				runtime.Gosched()
				remove()
				removedAt.Store(clock.Add(1))
				remove()
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for !stop.Load() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
				_, err := d.WaitFor(ctx, "MESSAGE_CREATE", func(ev protocols.Event) bool { return ev.Seq%7 == 0 })
				cancel()
				if err != nil && !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("WaitFor: %v", err)
				}
			}
		})
	}
	var shardsWG sync.WaitGroup
	for s := range shards {
		shardsWG.Go(func() {
			for i := range each {
				ev := msg(int64(i + 1))
				ev.Shard = s
				ev.Seq = clock.Add(1)
				d.Dispatch(ev)
			}
		})
	}
	shardsWG.Wait()
	stop.Store(true)
	wg.Wait()
	if got, want := permanent.Load(), int64(shards*each); got != want {
		t.Errorf("permanent handler ran %d times, want %d", got, want)
	}
	if got, want := anyCount.Load(), int64(shards*each); got != want {
		t.Errorf("AnyEvent handler ran %d times, want %d", got, want)
	}
	if n := violations.Load(); n > 0 {
		t.Errorf("removed handlers ran %d times in a Dispatch begun after remove returned", n)
	}
}

// BenchmarkDispatcher measures Dispatch of one MESSAGE_CREATE with 1 and 10
// handlers (all under its name), from 1 goroutine and from 8 at once, with
// no WaitFor pending.
func BenchmarkDispatcher(b *testing.B) {
	benchmarkDispatcher(b, fast.NewDispatcher)
}

func benchmarkDispatcher(b *testing.B, newDispatcher func() protocols.Dispatcher) {
	for _, handlers := range []int{1, 10} {
		for _, goroutines := range []int{1, 8} {
			b.Run(fmt.Sprintf("handlers=%d/goroutines=%d", handlers, goroutines), func(b *testing.B) {
				d := newDispatcher()
				var n atomic.Int64
				for range handlers {
					d.Listen("MESSAGE_CREATE", func(protocols.Event) { n.Add(1) })
				}
				ev := msg(1)
				b.ReportAllocs()
				if goroutines == 1 {
					for b.Loop() {
						d.Dispatch(ev)
					}
					return
				}
				procs := runtime.GOMAXPROCS(0)
				b.SetParallelism((goroutines + procs - 1) / procs)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						d.Dispatch(ev)
					}
				})
			})
		}
	}
}
