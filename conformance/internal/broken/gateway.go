package broken

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/cordkit/cordkit/protocols"
)

// FirstIdentifyOnly spaces each shard's first identify and lets the
// later ones through at once, as disgo's reconnect path did before #467.
// It breaks "Every IDENTIFY, reconnects included, waits for the
// IdentifyLimiter." and fails TestGateway/ReconnectIdentifiesRespectBuckets.
func FirstIdentifyOnly(next protocols.IdentifyLimiter) protocols.IdentifyLimiter {
	var (
		mu   sync.Mutex
		seen = map[int]bool{}
	)
	return protocols.IdentifyLimiterFunc(func(ctx context.Context, shardID int) error {
		mu.Lock()
		again := seen[shardID]
		seen[shardID] = true
		mu.Unlock()
		if again {
			return ctx.Err()
		}
		return next.Wait(ctx, shardID)
	})
}

// IgnoreShardIDs drops GatewayParams.ShardIDs, so every shard runs. It
// breaks "ShardIDs is the subset of shards to run; nil runs all." and
// fails TestGateway/ShardIDsSubset.
func IgnoreShardIDs(p *protocols.GatewayParams) { p.ShardIDs = nil }

// PinShardCount runs one shard when no count is configured, instead of
// asking /gateway/bot. It breaks "ShardCount is the total shard count; 0
// asks /gateway/bot." and fails TestGateway/ShardCountFromGatewayBot.
func PinShardCount(p *protocols.GatewayParams) {
	if p.ShardCount == 0 {
		p.ShardCount = 1
	}
}

// ConnectReturnsEarly returns from Connect as soon as it started, before
// any shard is ready. It breaks "Connect starts every shard and returns
// once all are ready, or with the first fatal error." and fails
// TestGateway/ConnectReadiesEveryShard.
func ConnectReturnsEarly(next protocols.Gateway) protocols.Gateway { return hastyGateway{next} }

type hastyGateway struct{ protocols.Gateway }

func (g hastyGateway) Connect(ctx context.Context) error {
	go func() { _ = g.Gateway.Connect(ctx) }()
	return nil
}

// ConnectIgnoresContext connects with a context that never ends. It
// breaks "Cancellation always satisfies errors.Is with the context's
// error." and fails TestGateway/ConnectHonorsContext.
func ConnectIgnoresContext(next protocols.Gateway) protocols.Gateway { return deafGateway{next} }

type deafGateway struct{ protocols.Gateway }

func (g deafGateway) Connect(ctx context.Context) error {
	return g.Gateway.Connect(context.WithoutCancel(ctx))
}

// RescaleNoop reports success without rescaling. It breaks "Rescale
// brings up count shards (ids, or all of 0..count-1 when nil) and closes
// the old ones once the new ones are ready." and fails
// TestGateway/RescaleWithoutLosingEvents.
func RescaleNoop(next protocols.Gateway) protocols.Gateway { return lazyGateway{next} }

type lazyGateway struct{ protocols.Gateway }

func (lazyGateway) Rescale(context.Context, int, []int) error { return nil }

// CloseLeavesShards returns from Close at once and closes the shards a
// minute later, in the background. It breaks "Close closes every shard
// and ends every goroutine." and fails TestGateway/CloseEndsEveryGoroutine.
func CloseLeavesShards(next protocols.Gateway) protocols.Gateway { return lateCloser{next} }

type lateCloser struct{ protocols.Gateway }

func (g lateCloser) Close() error {
	time.AfterFunc(time.Minute, func() { _ = g.Gateway.Close() })
	return nil
}

// GatewayForgetsClosed answers Connect and Rescale after Close with nil.
// It breaks "ErrClosed is returned by every method called after Close."
// and fails TestGateway/MethodsAfterCloseFail.
func GatewayForgetsClosed(next protocols.Gateway) protocols.Gateway { return amnesiacGateway{next} }

type amnesiacGateway struct{ protocols.Gateway }

func (g amnesiacGateway) Connect(ctx context.Context) error {
	if err := g.Gateway.Connect(ctx); !errors.Is(err, protocols.ErrClosed) {
		return err
	}
	return nil
}

func (g amnesiacGateway) Rescale(ctx context.Context, count int, ids []int) error {
	if err := g.Gateway.Rescale(ctx, count, ids); !errors.Is(err, protocols.ErrClosed) {
		return err
	}
	return nil
}
