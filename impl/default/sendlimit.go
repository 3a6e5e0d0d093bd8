package reference

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cordkit/cordkit/protocols"
)

var (
	_ protocols.SendLimiter        = (*sendLimiter)(nil)
	_ func() protocols.SendLimiter = NewSendLimiter
)

const (
	// SendLimit is how many payloads Discord accepts per connection in
	// [SendWindow]; going over closes the connection with 4008
	// (discord-protocol.md §C.13).
	SendLimit = 120
	// SendWindow is the period of [SendLimit].
	SendWindow = time.Minute
	// HeartbeatReserve is how many of the [SendLimit] slots only heartbeats
	// may use before Reset names the connection's heartbeat interval.
	// Discord's interval is about 41.25 s, so a 60 s window holds at most
	// two scheduled heartbeats (60/41.25 rounded up), plus one answer to a
	// server-requested heartbeat (op 1): three. This is twilight's
	// 60/interval + 1, rounded up; Reset computes the same for the
	// interval it is given, up to [MaxHeartbeatReserve].
	HeartbeatReserve = 3
	// MaxHeartbeatReserve caps the reserve for very short intervals, so
	// other payloads always keep most of the window.
	MaxHeartbeatReserve = SendLimit / 2
)

// heartbeatReserve returns the slots to keep for heartbeats at interval.
func heartbeatReserve(interval time.Duration) int {
	if interval <= 0 {
		return HeartbeatReserve
	}
	n := int((SendWindow+interval-1)/interval) + 1
	return max(1, min(n, MaxHeartbeatReserve))
}

// NewSendLimiter returns the reference [protocols.SendLimiter]: a sliding
// window over the admission times of the last [SendWindow].
//
// A heartbeat is admitted while fewer than [SendLimit] payloads were
// admitted in the last SendWindow; any other payload while fewer than
// SendLimit minus the heartbeat reserve were: [HeartbeatReserve] until
// Reset names the heartbeat interval, then SendWindow/interval rounded up,
// plus one for a server op 1. So at most SendLimit payloads are
// admitted in any SendWindow (a payload admitted at t counts during [t,
// t+SendWindow)), and heartbeats always find a slot unless heartbeats
// themselves used it. Other payloads wait in FIFO order; heartbeats do not
// queue behind them. Wait returns an error wrapping ctx.Err() when ctx
// ends first, and admits nothing for a context that has already ended.
//
// Reset forgets every admission, for a new connection, sizes the reserve
// from the heartbeat interval, and wakes the waiters to check again. The limiter starts no goroutine.
func NewSendLimiter() protocols.SendLimiter {
	return &sendLimiter{reset: make(chan struct{}), reserve: HeartbeatReserve}
}

type sendLimiter struct {
	queue fifoMutex // orders the non-heartbeat waiters

	mu      sync.Mutex
	sent    []time.Time   // admission times in the window, oldest first
	reset   chan struct{} // closed and replaced by Reset
	reserve int           // slots only heartbeats may use
}

func (l *sendLimiter) Wait(ctx context.Context, heartbeat bool) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("reference: send limiter: %w", err)
	}
	if !heartbeat {
		if err := l.queue.lock(ctx); err != nil {
			return fmt.Errorf("reference: send limiter: %w", err)
		}
		defer l.queue.unlock()
	}
	for {
		l.mu.Lock()
		limit := SendLimit
		if !heartbeat {
			limit -= l.reserve
		}
		now := time.Now()
		l.prune(now)
		if len(l.sent) < limit {
			l.sent = append(l.sent, now)
			l.mu.Unlock()
			return nil
		}
		// The window drops below limit when this admission leaves it.
		free := l.sent[len(l.sent)-limit].Add(SendWindow)
		reset := l.reset
		l.mu.Unlock()

		timer := time.NewTimer(free.Sub(now))
		select {
		case <-timer.C:
		case <-reset:
			timer.Stop()
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("reference: send limiter: %w", ctx.Err())
		}
	}
}

// prune drops the admissions that left the window.
func (l *sendLimiter) prune(now time.Time) {
	i := 0
	for i < len(l.sent) && !now.Before(l.sent[i].Add(SendWindow)) {
		i++
	}
	if i > 0 {
		l.sent = append(l.sent[:0], l.sent[i:]...)
	}
}

func (l *sendLimiter) Reset(heartbeatInterval time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent = l.sent[:0]
	l.reserve = heartbeatReserve(heartbeatInterval)
	close(l.reset)
	l.reset = make(chan struct{})
}
