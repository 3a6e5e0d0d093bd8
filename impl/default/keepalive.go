package reference

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/cordkit/cordkit/protocols"
)

var (
	_ protocols.KeepAlive        = (*keepAlive)(nil)
	_ func() protocols.KeepAlive = NewKeepAlive
	_ func() protocols.KeepAlive = KeepAliveOptions{}.New
)

// KeepAliveOptions holds the settings of the reference heartbeater. The
// zero value gives the defaults. Its New method has the shape of the
// TypeSheet's NewKeepAlive field.
type KeepAliveOptions struct {
	// Jitter returns the fraction of the interval to wait before the first
	// heartbeat, in [0, 1); values outside are clamped into it. Tests set
	// it to place the first beat exactly. Defaults to
	// [math/rand/v2.Float64].
	Jitter func() float64
}

// NewKeepAlive returns the reference [protocols.KeepAlive] with default
// [KeepAliveOptions].
func NewKeepAlive() protocols.KeepAlive { return KeepAliveOptions{}.New() }

// New returns the reference [protocols.KeepAlive] with options o.
//
// Run sends the first heartbeat after interval × Jitter(), then one every
// interval, counted from when each beat was due so that a slow beat (one
// waiting on the send limiter) does not push the schedule back. It uses one
// time.Timer and starts no goroutine.
//
// Zombie detection happens when a scheduled beat is due: if no Ack arrived
// since the previous scheduled beat, Run returns an error wrapping
// [protocols.ErrZombieConnection] without beating. The first scheduled beat
// is never a zombie. Acks are not matched to beats: any Ack in the interval
// proves that the connection delivers.
//
// BeatNow (the server's op 1) beats at once, without moving the schedule
// and without a zombie check: the server asking for a beat shows that the
// connection works, and checking would flag a connection whose previous
// ACK is simply still in flight. Calls made while a beat is pending
// coalesce into one beat. A BeatNow made while Run is not running is kept
// and answered as soon as Run starts: an early heartbeat is harmless, a
// lost one is not.
//
// One keep-alive serves one connection at a time; Run resets its ACK
// tracking when it starts, so a shard can reuse it for every connection.
// Run must not be called concurrently with itself.
func (o KeepAliveOptions) New() protocols.KeepAlive {
	jitter := o.Jitter
	if jitter == nil {
		jitter = rand.Float64
	}
	return &keepAlive{jitter: jitter, beatNow: make(chan struct{}, 1)}
}

type keepAlive struct {
	jitter  func() float64
	acked   atomic.Bool   // an Ack arrived since the last scheduled beat
	beatNow chan struct{} // capacity 1: pending BeatNow requests coalesce
}

func (k *keepAlive) Run(ctx context.Context, interval time.Duration, beat func(ctx context.Context) error) error {
	if interval <= 0 {
		return fmt.Errorf("reference: keepalive: heartbeat interval %v is not positive", interval)
	}
	if beat == nil {
		return errors.New("reference: keepalive: nil beat function")
	}
	k.acked.Store(true) // nothing outstanding yet
	due := time.Now().Add(firstBeatDelay(interval, k.jitter()))
	timer := time.NewTimer(time.Until(due))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("reference: keepalive: %w", ctx.Err())
		case <-timer.C:
			if !k.acked.Swap(false) {
				return fmt.Errorf("reference: keepalive: no heartbeat ACK within %v: %w", interval, protocols.ErrZombieConnection)
			}
			if err := beat(ctx); err != nil {
				return fmt.Errorf("reference: keepalive: heartbeat: %w", err)
			}
			due = due.Add(interval)
			timer.Reset(time.Until(due))
		case <-k.beatNow:
			if err := beat(ctx); err != nil {
				return fmt.Errorf("reference: keepalive: requested heartbeat: %w", err)
			}
		}
	}
}

func (k *keepAlive) Ack() { k.acked.Store(true) }

func (k *keepAlive) BeatNow() {
	select {
	case k.beatNow <- struct{}{}:
	default: // one is already pending
	}
}

// firstBeatDelay returns interval × jitter, with jitter clamped into [0, 1).
func firstBeatDelay(interval time.Duration, jitter float64) time.Duration {
	if math.IsNaN(jitter) || jitter < 0 {
		jitter = 0
	}
	d := time.Duration(math.Min(jitter, 1) * float64(interval))
	return min(d, interval-1)
}
