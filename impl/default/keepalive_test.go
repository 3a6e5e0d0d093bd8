package reference_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	reference "github.com/cordkit/cordkit/impl/default"
	"github.com/cordkit/cordkit/protocols"
)

const kaInterval = 41250 * time.Millisecond

// kaRun runs k in its own goroutine, recording the fake time of each beat
// since start, and acking each beat when ack is true.
type kaRun struct {
	start time.Time
	beats chan time.Duration
	errc  chan error
}

func startKeepAlive(ctx context.Context, k protocols.KeepAlive, ack bool) *kaRun {
	r := &kaRun{start: time.Now(), beats: make(chan time.Duration, 100), errc: make(chan error, 1)}
	go func() {
		r.errc <- k.Run(ctx, kaInterval, func(context.Context) error {
			r.beats <- time.Since(r.start)
			if ack {
				go k.Ack() // the ACK arrives on the shard's read goroutine
			}
			return nil
		})
	}()
	return r
}

func fixedJitter(j float64) protocols.KeepAlive {
	return reference.KeepAliveOptions{Jitter: func() float64 { return j }}.New()
}

func TestKeepAliveSchedule(t *testing.T) {
	for _, jitter := range []float64{0, 0.25, 0.999} {
		t.Run("", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				r := startKeepAlive(ctx, fixedJitter(jitter), true)
				first := time.Duration(jitter * float64(kaInterval))
				for i := range 5 {
					assert.Equal(t, first+time.Duration(i)*kaInterval, <-r.beats, "beat %d", i)
				}
				cancel()
				assert.ErrorIs(t, <-r.errc, context.Canceled)
			})
		})
	}
}

func TestKeepAliveDefaultJitterInRange(t *testing.T) {
	for range 20 {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			r := startKeepAlive(ctx, reference.NewKeepAlive(), true)
			first := <-r.beats
			assert.GreaterOrEqual(t, first, time.Duration(0))
			assert.Less(t, first, kaInterval)
			cancel()
			<-r.errc
		})
	}
}

func TestKeepAliveJitterClamped(t *testing.T) {
	for _, jitter := range []float64{-1, 1, 7} {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			r := startKeepAlive(ctx, fixedJitter(jitter), true)
			first := <-r.beats
			assert.GreaterOrEqual(t, first, time.Duration(0), "jitter %v", jitter)
			assert.Less(t, first, kaInterval, "jitter %v", jitter)
			cancel()
			<-r.errc
		})
	}
}

func TestKeepAliveBeatNow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := fixedJitter(0.5)
		ctx, cancel := context.WithCancel(t.Context())
		r := startKeepAlive(ctx, k, true)
		time.Sleep(time.Second)
		k.BeatNow()
		assert.Equal(t, time.Second, <-r.beats, "BeatNow beats at once")
		assert.Equal(t, kaInterval/2, <-r.beats, "the schedule does not move")
		cancel()
		assert.ErrorIs(t, <-r.errc, context.Canceled)
	})
}

func TestKeepAliveBeatNowCoalesces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := fixedJitter(0.5)
		release := make(chan struct{})
		var beats []time.Duration
		start := time.Now()
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			errc <- k.Run(ctx, kaInterval, func(context.Context) error {
				beats = append(beats, time.Since(start))
				if len(beats) == 1 {
					<-release // a slow first beat
				}
				go k.Ack()
				return nil
			})
		}()
		k.BeatNow()
		synctest.Wait() // Run is inside the first beat
		k.BeatNow()
		k.BeatNow()
		k.BeatNow()
		time.Sleep(time.Second)
		close(release)
		synctest.Wait()
		assert.Equal(t, []time.Duration{0, time.Second}, beats, "three BeatNow calls during a beat give one more beat")
		cancel()
		assert.ErrorIs(t, <-errc, context.Canceled)
	})
}

func TestKeepAliveZombie(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startKeepAlive(t.Context(), fixedJitter(0.1), false)
		first := time.Duration(0.1 * float64(kaInterval))
		assert.Equal(t, first, <-r.beats)
		err := <-r.errc
		require.ErrorIs(t, err, protocols.ErrZombieConnection)
		assert.Equal(t, first+kaInterval, time.Since(r.start), "detected exactly when the second beat was due")
		assert.Empty(t, r.beats, "no second beat on a zombie connection")
	})
}

func TestKeepAliveAckKeepsAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := fixedJitter(0)
		ctx, cancel := context.WithCancel(t.Context())
		r := startKeepAlive(ctx, k, false)
		for i := range 4 {
			assert.Equal(t, time.Duration(i)*kaInterval, <-r.beats)
			if i < 3 {
				time.Sleep(300 * time.Millisecond) // round trip
				go k.Ack()
			}
		}
		// The fourth beat gets no ACK: the fifth is due, the connection is a zombie.
		err := <-r.errc
		assert.ErrorIs(t, err, protocols.ErrZombieConnection)
		assert.Equal(t, 4*kaInterval, time.Since(r.start))
		cancel()
	})
}

func TestKeepAliveBeatError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("write failed")
		k := fixedJitter(0)
		err := k.Run(t.Context(), kaInterval, func(context.Context) error { return boom })
		assert.ErrorIs(t, err, boom)
	})
}

func TestKeepAliveContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := fixedJitter(0.5)
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		err := k.Run(ctx, kaInterval, func(context.Context) error { return nil })
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Error(t, k.Run(t.Context(), 0, func(context.Context) error { return nil }), "a zero interval")
	})
}

// A keep-alive serves one connection after another: the ACK state of the
// last connection does not leak into the next.
func TestKeepAliveReusedAcrossConnections(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := fixedJitter(0)
		ctx, cancel := context.WithCancel(t.Context())
		r := startKeepAlive(ctx, k, false)
		<-r.beats
		cancel()
		<-r.errc // the first connection ended with its beat unacknowledged

		ctx, cancel = context.WithCancel(t.Context())
		defer cancel()
		r = startKeepAlive(ctx, k, true)
		for range 3 {
			<-r.beats
		}
		assert.Empty(t, r.errc)
	})
}

func TestKeepAliveConcurrentSafe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := fixedJitter(0.5)
		ctx, cancel := context.WithTimeout(t.Context(), 10*kaInterval)
		defer cancel()
		done := make(chan struct{})
		for range 4 {
			go func() {
				for {
					select {
					case <-done:
						return
					case <-time.After(time.Second):
						k.Ack()
						k.BeatNow()
					}
				}
			}()
		}
		err := k.Run(ctx, kaInterval, func(context.Context) error { return nil })
		close(done)
		assert.ErrorIs(t, err, context.DeadlineExceeded, "acknowledged every second, never a zombie")
	})
}
