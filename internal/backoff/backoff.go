// Package backoff computes retry delays: exponential growth with jitter and
// a cap, so that many clients retrying at once spread out instead of
// hitting a recovering server together.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Defaults for a zero [Backoff].
const (
	DefaultBase = 100 * time.Millisecond
	DefaultMax  = 10 * time.Second
)

// Backoff describes exponential backoff with "equal jitter": the n-th delay
// is drawn uniformly from [c/2, c], where c = min(Max, Base * 2^n). Half of
// the delay is guaranteed, so a retry never comes back immediately, and the
// other half is random, so concurrent retries do not line up.
//
// The zero Backoff uses [DefaultBase] and [DefaultMax].
type Backoff struct {
	// Base is the ceiling of the first delay. Defaults to 100ms.
	Base time.Duration
	// Max caps every delay. Defaults to 10s.
	Max time.Duration
}

// Ceiling returns the largest delay of retry n (counted from 0), before
// jitter.
func (b Backoff) Ceiling(n int) time.Duration {
	base, maxDelay := b.Base, b.Max
	if base <= 0 {
		base = DefaultBase
	}
	if maxDelay <= 0 {
		maxDelay = DefaultMax
	}
	if base > maxDelay {
		return maxDelay
	}
	d := base
	for i := 0; i < n; i++ {
		if d >= maxDelay/2 {
			return maxDelay
		}
		d *= 2
	}
	return d
}

// Delay returns the delay before retry n (counted from 0): a random value in
// [Ceiling(n)/2, Ceiling(n)].
func (b Backoff) Delay(n int) time.Duration {
	c := b.Ceiling(n)
	half := c / 2
	return half + rand.N(c-half+1)
}
