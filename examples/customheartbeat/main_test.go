package main

import (
	"bytes"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/cordkit/cordkit/conformance"
	"github.com/cordkit/cordkit/protocols"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestConformance holds the swapped heartbeater to the same rules as the
// reference one.
func TestConformance(t *testing.T) {
	conformance.TestKeepAlive(t, func(t *testing.T) protocols.KeepAlive { return NewTimedKeepAlive() })
}

func TestRunAgainstMock(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), &out, "", 1500*time.Millisecond), out.String())
	lines := regexp.MustCompile(`keep-alive \d: (\d+) heartbeats acknowledged`).FindAllStringSubmatch(out.String(), -1)
	require.Len(t, lines, 2, "one line per shard:\n%s", out.String())
	for _, l := range lines {
		n, _ := strconv.Atoi(l[1])
		// 1.5 s at a 250 ms interval: the first beat comes after a random
		// part of one interval, then one every interval.
		assert.GreaterOrEqual(t, n, 4, out.String())
	}
}
