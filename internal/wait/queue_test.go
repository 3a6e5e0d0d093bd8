package wait_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cordkit/cordkit/internal/wait"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// semaphore is a counting semaphore built on a Queue.
type semaphore struct {
	mu   sync.Mutex
	q    *wait.Queue
	free int
	at   time.Time // closed until then
}

func newSemaphore(n int) *semaphore {
	s := &semaphore{free: n}
	s.q = wait.NewQueue(&s.mu)
	return s
}

func (s *semaphore) acquire(ctx context.Context) error {
	return s.q.Wait(ctx, func(now time.Time) (bool, time.Time) {
		if now.Before(s.at) {
			return false, s.at
		}
		if s.free > 0 {
			s.free--
			return true, time.Time{}
		}
		return false, time.Time{}
	})
}

func (s *semaphore) release() {
	s.mu.Lock()
	s.free++
	s.q.Signal()
	s.mu.Unlock()
}

func TestQueueFIFO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSemaphore(0)
		order := make(chan int, 10)
		for i := range 10 {
			go func() {
				if err := s.acquire(t.Context()); err != nil {
					t.Error(err)
					return
				}
				order <- i
			}()
			synctest.Wait()
		}
		for want := range 10 {
			s.release()
			if got := <-order; got != want {
				t.Fatalf("admitted %d, want %d", got, want)
			}
		}
	})
}

func TestQueueNoBarging(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSemaphore(0)
		done := make(chan struct{})
		go func() {
			s.acquire(t.Context())
			close(done)
		}()
		synctest.Wait()
		s.mu.Lock()
		s.free = 1 // room appears without a signal
		s.mu.Unlock()
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		// A newcomer queues behind the waiter rather than taking the room.
		if err := s.acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("newcomer: got %v, want to wait behind the head until its deadline", err)
		}
		s.mu.Lock()
		s.q.Signal()
		s.mu.Unlock()
		<-done
	})
}

func TestQueueRetryAt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSemaphore(2)
		s.at = time.Now().Add(3 * time.Second)
		start := time.Now()
		for range 2 {
			if err := s.acquire(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got := time.Since(start); got != 3*time.Second {
				t.Errorf("admitted after %v, want 3s", got)
			}
		}
	})
}

func TestQueueContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSemaphore(0)
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := s.acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want DeadlineExceeded", err)
		}
		// The canceled waiter left: the next one is admitted on release.
		done := make(chan error)
		go func() { done <- s.acquire(t.Context()) }()
		synctest.Wait()
		s.release()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

func TestQueueClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSemaphore(0)
		errs := make(chan error, 3)
		for range 3 {
			go func() { errs <- s.acquire(t.Context()) }()
		}
		synctest.Wait()
		s.mu.Lock()
		s.q.Close()
		s.q.Close()
		if !s.q.Closed() || s.q.Len() != 0 {
			t.Error("Closed or Len wrong after Close")
		}
		s.mu.Unlock()
		for range 3 {
			if err := <-errs; !errors.Is(err, net.ErrClosed) {
				t.Errorf("waiter: got %v, want net.ErrClosed", err)
			}
		}
		if err := s.acquire(t.Context()); !errors.Is(err, net.ErrClosed) {
			t.Errorf("after Close: got %v, want net.ErrClosed", err)
		}
	})
}

func TestSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if err := wait.Sleep(t.Context(), time.Second, nil); err != nil || time.Since(start) != time.Second {
			t.Errorf("Sleep: %v after %v", err, time.Since(start))
		}
		if err := wait.Until(t.Context(), time.Now().Add(-time.Second), nil); err != nil {
			t.Errorf("Until the past: %v", err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := wait.Sleep(ctx, time.Hour, nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Sleep past the deadline: %v", err)
		}
		if err := wait.Sleep(ctx, 0, nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Sleep(0) on an ended context: %v", err)
		}
		done := make(chan struct{})
		time.AfterFunc(time.Second, func() { close(done) })
		if err := wait.Sleep(t.Context(), time.Hour, done); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Sleep until done: %v", err)
		}
	})
}
