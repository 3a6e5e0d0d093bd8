package waitset_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cordkit/cordkit/internal/waitset"
	"github.com/cordkit/cordkit/protocols"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestKeys(t *testing.T) {
	for _, tt := range []struct {
		ev   protocols.Event
		want [3]string
	}{
		{protocols.Event{Op: protocols.OpDispatch, Name: "MESSAGE_CREATE"}, [3]string{"MESSAGE_CREATE", protocols.OpDispatch.String(), protocols.AnyEvent}},
		{protocols.Event{Op: protocols.OpHello}, [3]string{"", protocols.OpHello.String(), protocols.AnyEvent}},
		{protocols.Event{Op: protocols.OpDispatch, Name: protocols.AnyEvent}, [3]string{protocols.AnyEvent, protocols.OpDispatch.String(), ""}},
	} {
		if got := waitset.Keys(tt.ev); got != tt.want {
			t.Errorf("Keys(%+v) = %q, want %q", tt.ev, got, tt.want)
		}
	}
}

func TestWaitDeliver(t *testing.T) {
	var s waitset.Set
	ev := protocols.Event{Op: protocols.OpDispatch, Name: "X", Seq: 7, Data: []byte(`{"a":1}`)}
	got := make(chan protocols.Event, 1)
	go func() {
		e, err := s.Wait(context.Background(), "X", func(e protocols.Event) bool { return e.Seq == 7 })
		if err != nil {
			t.Error(err)
		}
		got <- e
	}()
	deadline := time.After(10 * time.Second)
	for {
		s.Deliver(protocols.Event{Op: protocols.OpDispatch, Name: "X", Seq: 6}, waitset.Keys(ev)) // no match
		s.Deliver(ev, waitset.Keys(ev))
		select {
		case e := <-got:
			if e.Seq != 7 || string(e.Data) != `{"a":1}` || &e.Data[0] == &ev.Data[0] {
				t.Errorf("got %+v, want seq 7 with a copy of Data", e)
			}
			return
		case <-deadline:
			t.Fatal("the wait was never woken")
		case <-time.After(time.Millisecond): // the waiter may not be registered yet
		}
	}
}

func TestWaitContext(t *testing.T) {
	var s waitset.Set
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := s.Wait(ctx, "X", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait: %v, want DeadlineExceeded", err)
	}
	if n := testing.AllocsPerRun(100, func() { s.Deliver(protocols.Event{Name: "X"}, [3]string{"X"}) }); n != 0 {
		t.Errorf("Deliver with nothing pending allocates %v times, want 0", n)
	}
}
