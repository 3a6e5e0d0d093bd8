package broken

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/cordkit/cordkit/protocols"
)

// Unjittered returns a heartbeater that sends its first heartbeat at once,
// so that every shard of a restarted bot beats at the same instant. It
// breaks "The first heartbeat is sent after interval times a random jitter
// in [0, 1), then one every interval." and fails
// TestKeepAlive/FirstBeatJittered.
func Unjittered() protocols.KeepAlive { return &plainKeepAlive{beatNow: make(chan struct{}, 1)} }

type plainKeepAlive struct {
	acked   atomic.Bool
	beatNow chan struct{}
}

func (k *plainKeepAlive) Run(ctx context.Context, interval time.Duration, beat func(ctx context.Context) error) error {
	k.acked.Store(true)
	timer := time.NewTimer(0) // no jitter
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			if !k.acked.Swap(false) {
				return protocols.ErrZombieConnection
			}
			if err := beat(ctx); err != nil {
				return err
			}
			timer.Reset(interval)
		case <-k.beatNow:
			if err := beat(ctx); err != nil {
				return err
			}
		}
	}
}

func (k *plainKeepAlive) Ack() { k.acked.Store(true) }

func (k *plainKeepAlive) BeatNow() {
	select {
	case k.beatNow <- struct{}{}:
	default:
	}
}

// NeverZombie acknowledges every heartbeat itself as it sends it, so it
// never notices a zombie connection. It breaks "When no Ack arrived between
// two heartbeats, Run returns ErrZombieConnection." and fails
// TestKeepAlive/ZombieWhenAckMissed.
func NeverZombie(next protocols.KeepAlive) protocols.KeepAlive { return selfAcking{next} }

type selfAcking struct{ protocols.KeepAlive }

func (k selfAcking) Run(ctx context.Context, interval time.Duration, beat func(ctx context.Context) error) error {
	return k.KeepAlive.Run(ctx, interval, func(ctx context.Context) error {
		k.KeepAlive.Ack()
		return beat(ctx)
	})
}

// AckWaitsForBeat takes, in Ack, a lock that Run holds while the beat
// function runs, so an ACK waits for a slow heartbeat write: disgo's
// zombie false positives (#499), where ACKs queued behind other work. It
// breaks "Ack and BeatNow return at once, even while beat runs." and fails
// TestKeepAlive/AckReturnsAtOnce.
func AckWaitsForBeat(next protocols.KeepAlive) protocols.KeepAlive {
	return &lockedKeepAlive{next: next, lock: make(chan struct{}, 1)}
}

type lockedKeepAlive struct {
	next protocols.KeepAlive
	lock chan struct{} // a mutex that testing/synctest sees blocking on
}

func (k *lockedKeepAlive) Run(ctx context.Context, interval time.Duration, beat func(ctx context.Context) error) error {
	return k.next.Run(ctx, interval, func(ctx context.Context) error {
		select {
		case k.lock <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		defer func() { <-k.lock }()
		return beat(ctx)
	})
}

func (k *lockedKeepAlive) Ack() {
	k.lock <- struct{}{}
	k.next.Ack()
	<-k.lock
}

func (k *lockedKeepAlive) BeatNow() { k.next.BeatNow() }
