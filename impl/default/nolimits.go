package reference

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/cordkit/cordkit/protocols"
)

var _ protocols.RateLimiter = (*NoLimits)(nil)

// NoLimits is a [protocols.RateLimiter] that never waits: for a client that
// sends through a proxy which enforces Discord's limits itself, such as
// nirn-proxy or twilight-http-proxy (set Config.APIBase to the proxy).
// Against Discord directly it would earn 429s and bans; it fails the
// conformance suite by design. The zero value is ready to use.
type NoLimits struct{ closed atomic.Bool }

// NewNoLimits returns a NoLimits. It has the shape of a
// TypeSheet.NewRateLimiter field; the params are ignored.
func NewNoLimits(protocols.RateLimiterParams) (protocols.RateLimiter, error) { return &NoLimits{}, nil }

// Acquire returns a permit at once, unless ctx has ended or the limiter is
// closed.
func (l *NoLimits) Acquire(ctx context.Context, r protocols.Route) (protocols.Permit, error) {
	if l.closed.Load() {
		return nil, fmt.Errorf("%s: %w", r.Endpoint(), protocols.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", r.Endpoint(), err)
	}
	return noPermit{}, nil
}

// Close makes later Acquire calls fail with ErrClosed. It is idempotent.
func (l *NoLimits) Close() error {
	l.closed.Store(true)
	return nil
}

type noPermit struct{}

func (noPermit) Complete(protocols.RateLimitInfo) {}
func (noPermit) Cancel()                          {}
