package reference

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cordkit/cordkit/protocols"
)

var (
	_ protocols.KeepAlive        = (*keepAlive)(nil)
	_ protocols.KeepAliveStarter = (*keepAlive)(nil)
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
// Start does what Run does on a time.AfterFunc timer: between beats no
// goroutine of the keep-alive runs, so a shard using it spends no
// goroutine on heartbeats while idle. Its beats, scheduled or asked for
// by BeatNow, run on short-lived timer goroutines, one at a time.
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

	mu  sync.Mutex // guards cur, and orders BeatNow with Start
	cur *timerRun  // the Start in progress, or nil
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
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cur != nil {
		k.cur.requestBeat()
		return
	}
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

func (k *keepAlive) Start(ctx context.Context, interval time.Duration, beat func(ctx context.Context) error, done func(error)) error {
	switch {
	case interval <= 0:
		return fmt.Errorf("reference: keepalive: heartbeat interval %v is not positive", interval)
	case beat == nil:
		return errors.New("reference: keepalive: nil beat function")
	case done == nil:
		return errors.New("reference: keepalive: nil done function")
	}
	r := &timerRun{k: k, ctx: ctx, interval: interval, beat: beat, done: done}
	k.acked.Store(true) // nothing outstanding yet
	r.mu.Lock()         // the timers' functions wait until r is complete
	defer r.mu.Unlock()
	r.due = time.Now().Add(firstBeatDelay(interval, k.jitter()))
	r.timer = time.AfterFunc(time.Until(r.due), r.scheduled)
	r.stopCtx = context.AfterFunc(ctx, r.cancelled)

	k.mu.Lock()
	k.cur = r
	select {
	case <-k.beatNow: // asked for while nothing ran
		r.requestBeat()
	default:
	}
	k.mu.Unlock()
	return nil
}

// timerRun is one Start: its beats run on timer goroutines, holding mu,
// so they never overlap.
type timerRun struct {
	k        *keepAlive
	ctx      context.Context
	interval time.Duration
	beat     func(context.Context) error
	done     func(error)

	nowPending atomic.Bool // a BeatNow beat is scheduled

	mu      sync.Mutex // held by a beat, and by ending
	ended   bool
	due     time.Time // of the next scheduled beat
	timer   *time.Timer
	stopCtx func() bool
}

// requestBeat schedules one BeatNow beat; requests made before it runs
// coalesce into it.
func (r *timerRun) requestBeat() {
	if r.nowPending.CompareAndSwap(false, true) {
		time.AfterFunc(0, r.requested)
	}
}

func (r *timerRun) scheduled() {
	r.mu.Lock()
	if r.ended {
		r.mu.Unlock()
		return
	}
	if !r.k.acked.Swap(false) {
		r.end(fmt.Errorf("reference: keepalive: no heartbeat ACK within %v: %w", r.interval, protocols.ErrZombieConnection))
		return
	}
	if err := r.beat(r.ctx); err != nil {
		r.end(fmt.Errorf("reference: keepalive: heartbeat: %w", err))
		return
	}
	r.due = r.due.Add(r.interval)
	r.timer.Reset(time.Until(r.due))
	r.mu.Unlock()
}

func (r *timerRun) requested() {
	r.mu.Lock()
	r.nowPending.Store(false) // a BeatNow from now on needs another beat
	if r.ended {
		r.mu.Unlock()
		return
	}
	if err := r.beat(r.ctx); err != nil {
		r.end(fmt.Errorf("reference: keepalive: requested heartbeat: %w", err))
		return
	}
	r.mu.Unlock()
}

func (r *timerRun) cancelled() {
	r.mu.Lock() // waits for a beat in progress, as Run would
	if r.ended {
		r.mu.Unlock()
		return
	}
	r.end(fmt.Errorf("reference: keepalive: %w", r.ctx.Err()))
}

// end finishes the run with err; r.mu is held and end releases it before
// calling done, so done may call back into the keep-alive.
func (r *timerRun) end(err error) {
	r.ended = true
	r.timer.Stop()
	r.stopCtx()
	r.mu.Unlock()
	r.k.mu.Lock()
	if r.k.cur == r {
		r.k.cur = nil
	}
	r.k.mu.Unlock()
	r.done(err)
}
