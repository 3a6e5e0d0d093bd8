package broken

import (
	"context"
	"time"

	"github.com/cordkit/cordkit/protocols"
)

// NeverCounts returns a send limiter that admits everything, as disgo's
// did before #500. It breaks "No more than 120 payloads are admitted in
// any 60 seconds." and fails TestSendLimiter/NoMoreThan120PerMinute and
// NonHeartbeatsLeaveRoom.
func NeverCounts() protocols.SendLimiter { return openLimiter{} }

type openLimiter struct{}

func (openLimiter) Wait(ctx context.Context, _ bool) error { return ctx.Err() }
func (openLimiter) Reset(time.Duration)                    {}

// HeartbeatsWait treats heartbeats as any other payload, so they queue
// behind a burst and the connection is closed for missing them. It breaks
// "Heartbeats are admitted even when other payloads have used their
// share." and fails TestSendLimiter/HeartbeatsFindRoom.
func HeartbeatsWait(next protocols.SendLimiter) protocols.SendLimiter { return flatLimiter{next} }

type flatLimiter struct{ protocols.SendLimiter }

func (l flatLimiter) Wait(ctx context.Context, _ bool) error { return l.SendLimiter.Wait(ctx, false) }

// IgnoreSendReset has a Reset that does nothing, so a new connection
// inherits the old one's window and the reserve ignores the heartbeat
// interval. It breaks "Reset forgets what was sent, for a new connection
// whose HELLO announced heartbeatInterval; ..." and fails
// TestSendLimiter/ResetForgetsSent and ReserveFollowsHeartbeatInterval.
func IgnoreSendReset(next protocols.SendLimiter) protocols.SendLimiter { return sticky{next} }

type sticky struct{ protocols.SendLimiter }

func (sticky) Reset(time.Duration) {}
