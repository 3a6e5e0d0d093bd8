package reference_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	reference "github.com/cordkit/cordkit/impl/default"
	"github.com/cordkit/cordkit/protocols"
)

// dispatchOf returns a dispatch event.
func dispatchOf(name string, data string) protocols.Event {
	return protocols.Event{Op: protocols.OpDispatch, Name: name, Data: json.RawMessage(data)}
}

func TestDispatcherOrder(t *testing.T) {
	d := reference.NewDispatcher()
	var got []string
	record := func(tag string) protocols.Handler {
		return func(ev protocols.Event) { got = append(got, tag+":"+ev.Name+ev.Op.String()) }
	}
	d.Listen("MESSAGE_CREATE", record("m1"))
	d.Listen(protocols.AnyEvent, record("any"))
	d.Listen("MESSAGE_CREATE", record("m2"))
	d.Listen("GUILD_CREATE", record("g"))
	d.Listen("DISPATCH", record("op"))
	d.Listen("HELLO", record("hello"))

	d.Dispatch(dispatchOf("MESSAGE_CREATE", `{}`))
	assert.Equal(t, []string{"m1:MESSAGE_CREATEDISPATCH", "any:MESSAGE_CREATEDISPATCH", "m2:MESSAGE_CREATEDISPATCH", "op:MESSAGE_CREATEDISPATCH"}, got,
		"handlers of the name, the opcode and AnyEvent, in the order added")

	got = nil
	d.Dispatch(protocols.Event{Op: protocols.OpHello, Data: json.RawMessage(`{"heartbeat_interval":41250}`)})
	assert.Equal(t, []string{"any:HELLO", "hello:HELLO"}, got, "a raw payload is keyed by its opcode's name")
}

func TestDispatcherRemove(t *testing.T) {
	d := reference.NewDispatcher()
	var calls []string
	var removeB func()
	removeA := d.Listen("E", func(protocols.Event) {
		calls = append(calls, "a")
		removeB() // during the dispatch
		d.Listen("E", func(protocols.Event) { calls = append(calls, "late") })
	})
	removeB = d.Listen("E", func(protocols.Event) { calls = append(calls, "b") })

	d.Dispatch(dispatchOf("E", `1`))
	assert.Equal(t, []string{"a"}, calls, "b was removed before its turn; late was added during the dispatch")

	removeA()
	removeA() // idempotent
	removeB()
	calls = nil
	d.Dispatch(dispatchOf("E", `2`))
	assert.Equal(t, []string{"late"}, calls)
}

func TestDispatcherWaitFor(t *testing.T) {
	t.Run("Match", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			d := reference.NewDispatcher()
			type result struct {
				ev  protocols.Event
				err error
			}
			res := make(chan result, 1)
			go func() {
				ev, err := d.WaitFor(t.Context(), "GUILD_CREATE", func(ev protocols.Event) bool {
					return string(ev.Data) == `{"id":"2"}`
				})
				res <- result{ev, err}
			}()
			synctest.Wait() // the waiter is registered

			data := []byte(`{"id":"1"}`)
			d.Dispatch(protocols.Event{Shard: 3, Name: "GUILD_CREATE", Seq: 1, Data: data})
			synctest.Wait()
			require.Empty(t, res, "the predicate rejected the first event")

			data = []byte(`{"id":"2"}`)
			d.Dispatch(protocols.Event{Shard: 3, Name: "GUILD_CREATE", Seq: 2, Data: data})
			r := <-res
			require.NoError(t, r.err)
			assert.Equal(t, int64(2), r.ev.Seq)
			assert.Equal(t, 3, r.ev.Shard)
			copy(data, `XXXXXXXXXX`) // the dispatcher's caller reuses its buffer
			assert.Equal(t, `{"id":"2"}`, string(r.ev.Data), "WaitFor returns a copy of Data")
		})
	})

	t.Run("NilMatchAndAnyEvent", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			d := reference.NewDispatcher()
			names := make(chan string, 2)
			for _, name := range []string{"READY", protocols.AnyEvent} {
				go func() {
					ev, err := d.WaitFor(t.Context(), name, nil)
					assert.NoError(t, err)
					names <- ev.Name
				}()
			}
			synctest.Wait()
			d.Dispatch(dispatchOf("READY", `{}`))
			assert.Equal(t, "READY", <-names)
			assert.Equal(t, "READY", <-names)
		})
	})

	t.Run("ContextEnds", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			d := reference.NewDispatcher()
			ctx, cancel := context.WithCancel(t.Context())
			errc := make(chan error, 1)
			go func() {
				_, err := d.WaitFor(ctx, "READY", nil)
				errc <- err
			}()
			synctest.Wait()
			cancel()
			err := <-errc
			assert.ErrorIs(t, err, context.Canceled)

			ctx, cancel = context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			start := time.Now()
			_, err = d.WaitFor(ctx, "READY", nil)
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.Equal(t, time.Second, time.Since(start))

			// Nothing is left behind: dispatching finds no waiter.
			d.Dispatch(dispatchOf("READY", `{}`))
		})
	})
}

func TestDispatcherPanicPropagates(t *testing.T) {
	d := reference.NewDispatcher()
	d.Listen("E", func(protocols.Event) { panic("handler bug") })
	assert.PanicsWithValue(t, "handler bug", func() { d.Dispatch(dispatchOf("E", `{}`)) })

	var ran bool
	d.Listen("F", func(protocols.Event) { ran = true })
	d.Dispatch(dispatchOf("F", `{}`))
	assert.True(t, ran, "the dispatcher is usable after a handler panicked")
	assert.Panics(t, func() { d.Listen("F", nil) }, "a nil handler is a wiring mistake")
}

func TestDispatcherConcurrentSafe(t *testing.T) {
	d := reference.NewDispatcher()
	var total atomic.Int64
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() { // listeners come and go
			for i := range 200 {
				remove := d.Listen(fmt.Sprint("E", i%3), func(protocols.Event) { total.Add(1) })
				if i%2 == g%2 {
					remove()
				}
				remove()
			}
		})
		wg.Go(func() { // shards dispatch
			for i := range 500 {
				d.Dispatch(dispatchOf(fmt.Sprint("E", i%3), `{"n":1}`))
			}
		})
		wg.Go(func() { // waiters, some cancelled
			for i := range 50 {
				wctx, wcancel := context.WithTimeout(ctx, time.Duration(i%3)*time.Millisecond)
				_, _ = d.WaitFor(wctx, fmt.Sprint("E", i%3), func(ev protocols.Event) bool { return len(ev.Data) > 0 })
				wcancel()
			}
		})
	}
	wg.Wait()
	require.NoError(t, ctx.Err(), "no WaitFor hung")
}

func ExampleNewDispatcher() {
	events := reference.NewDispatcher()
	remove := events.Listen("MESSAGE_CREATE", func(ev protocols.Event) {
		var m struct{ Content string }
		_ = json.Unmarshal(ev.Data, &m)
		fmt.Printf("shard %d seq %d: %s\n", ev.Shard, ev.Seq, m.Content)
	})
	events.Listen(protocols.AnyEvent, func(ev protocols.Event) {
		fmt.Println("saw", ev.Name)
	})

	events.Dispatch(protocols.Event{Shard: 0, Seq: 7, Name: "MESSAGE_CREATE", Data: json.RawMessage(`{"content":"ping"}`)})
	remove()
	events.Dispatch(protocols.Event{Shard: 0, Seq: 8, Name: "MESSAGE_CREATE", Data: json.RawMessage(`{"content":"pong"}`)})
	// Output:
	// shard 0 seq 7: ping
	// saw MESSAGE_CREATE
	// saw MESSAGE_CREATE
}
