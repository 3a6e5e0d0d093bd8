package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/cordkit/cordkit/conformance"
	"github.com/cordkit/cordkit/protocols"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestConformance holds the swapped part to the same rules as the
// reference one.
func TestConformance(t *testing.T) {
	conformance.TestRateLimiter(t, func(t *testing.T, p protocols.RateLimiterParams) protocols.RateLimiter {
		l, err := NewTimingLimiter(p)
		require.NoError(t, err)
		return l
	})
}

func TestRunAgainstMock(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), &out, "", ""), out.String())
	assert.Contains(t, out.String(), "sent 40 messages to 2 channels")
	assert.Contains(t, out.String(), "POST /channels/{channel_id}/messages")
	assert.Contains(t, out.String(), "429s the mock Discord answered: 0")
}
