package reference

import (
	"context"
	"sync"

	"github.com/cordkit/cordkit/protocols"
)

// orderedIdentify is the identify limiter as the shards of one set see
// it: a shard's first identify waits until the shard before it in its
// max_concurrency bucket (in the set's order) has passed its own, so that
// shards start bucket by bucket, in order, as Discord recommends
// (discord-protocol.md §C.14), whatever order their goroutines run in. The
// underlying limiter still does the spacing. A shard also lets the next
// one go when it becomes ready without identifying (it resumed) or stops.
type orderedIdentify struct {
	inner protocols.IdentifyLimiter
	turns map[int]*identifyTurn // by shard ID
}

// identifyTurn is one shard's place in its bucket's order.
type identifyTurn struct {
	prev <-chan struct{} // closed when the previous shard has gone; nil for the first
	gone chan struct{}   // closed when this shard has gone
	once sync.Once
}

// pass lets the next shard of the bucket go.
func (t *identifyTurn) pass() { t.once.Do(func() { close(t.gone) }) }

// newOrderedIdentify orders ids (in that order) within buckets of
// maxConcurrency.
func newOrderedIdentify(inner protocols.IdentifyLimiter, ids []int, maxConcurrency int) *orderedIdentify {
	o := &orderedIdentify{inner: inner, turns: make(map[int]*identifyTurn, len(ids))}
	last := make(map[int]*identifyTurn)
	for _, id := range ids {
		t := &identifyTurn{gone: make(chan struct{})}
		bucket := id % max(maxConcurrency, 1)
		if prev := last[bucket]; prev != nil {
			t.prev = prev.gone
		}
		last[bucket] = t
		o.turns[id] = t
	}
	return o
}

// Wait waits for the shard's turn, then on the underlying limiter.
func (o *orderedIdentify) Wait(ctx context.Context, shardID int) error {
	t := o.turns[shardID]
	if t == nil {
		return o.inner.Wait(ctx, shardID)
	}
	if t.prev != nil {
		select {
		case <-t.prev:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	err := o.inner.Wait(ctx, shardID)
	if err == nil {
		t.pass()
	}
	return err
}

// pass lets the shard after shardID go (it is ready, or stopped).
func (o *orderedIdentify) pass(shardID int) {
	if t := o.turns[shardID]; t != nil {
		t.pass()
	}
}
