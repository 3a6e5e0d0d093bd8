package backoff_test

import (
	"testing"
	"time"

	"github.com/cordkit/cordkit/internal/backoff"
)

func TestCeiling(t *testing.T) {
	tests := []struct {
		name string
		b    backoff.Backoff
		n    int
		want time.Duration
	}{
		{"ZeroFirst", backoff.Backoff{}, 0, 100 * time.Millisecond},
		{"ZeroThird", backoff.Backoff{}, 2, 400 * time.Millisecond},
		{"ZeroCapped", backoff.Backoff{}, 10, 10 * time.Second},
		{"HugeAttemptDoesNotOverflow", backoff.Backoff{}, 1000, 10 * time.Second},
		{"Custom", backoff.Backoff{Base: time.Second, Max: 5 * time.Second}, 2, 4 * time.Second},
		{"CustomCapped", backoff.Backoff{Base: time.Second, Max: 5 * time.Second}, 3, 5 * time.Second},
		{"BaseAboveMax", backoff.Backoff{Base: time.Minute, Max: time.Second}, 0, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.b.Ceiling(tt.n); got != tt.want {
				t.Errorf("Ceiling(%d) = %v, want %v", tt.n, got, tt.want)
			}
		})
	}
}

func TestDelayJitter(t *testing.T) {
	b := backoff.Backoff{}
	for n := range 12 {
		c := b.Ceiling(n)
		lo, hi := c, time.Duration(0)
		for range 200 {
			d := b.Delay(n)
			if d < c/2 || d > c {
				t.Fatalf("Delay(%d) = %v, want within [%v, %v]", n, d, c/2, c)
			}
			lo, hi = min(lo, d), max(hi, d)
		}
		if lo == hi {
			t.Errorf("Delay(%d) always %v: no jitter", n, lo)
		}
	}
}
