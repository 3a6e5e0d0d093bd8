package conformance_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/cordkit/cordkit/conformance"
	reference "github.com/cordkit/cordkit/impl/default"
	"github.com/cordkit/cordkit/protocols"
)

// countingBucket is a decorator: it counts the requests a bucket admits
// and leaves the rate limiting to the bucket it wraps.
type countingBucket struct {
	next     protocols.Bucket
	admitted atomic.Int64
}

func (b *countingBucket) Acquire(ctx context.Context) (protocols.Permit, error) {
	p, err := b.next.Acquire(ctx)
	if err == nil {
		b.admitted.Add(1)
	}
	return p, err
}

func (b *countingBucket) Close() error { return b.next.Close() }

// An implementation runs the suite from a test of its own package, here
// for a bucket decorator. The same function, called with the package's
// real bucket, is the whole conformance_test.go of an implementation.
func Example_testBucket() {
	testConformance := func(t *testing.T) {
		conformance.TestBucket(t, func(t *testing.T) protocols.Bucket {
			return &countingBucket{next: reference.NewBucket()}
		})
	}
	_ = testConformance // in a _test.go file: func TestConformance(t *testing.T) { ... }
}
