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

// TestConformance holds the swapped shard to the same rules as the
// reference one: the suite fills the connection settings, the factory the
// parts (here the reference ones, through reference.NewShard's defaults).
func TestConformance(t *testing.T) {
	conformance.TestShard(t, func(t *testing.T, p protocols.ShardParams) protocols.Shard {
		s, err := NewReportingShard(p, func(string, ...any) {})
		require.NoError(t, err)
		return s
	})
}

func TestRunAgainstMock(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), &out, ""), out.String())
	for _, want := range []string{"shard 0: ready after", "shard 1: ready after", "mock Discord sent RECONNECT to shard 1",
		"shard 1 resumed its session", "shard 0: sent PRESENCE_UPDATE (err <nil>)", "shard 1: sent PRESENCE_UPDATE (err <nil>)",
		"shard 0: closing with 1000", "shard 0: run ended: <nil>"} {
		assert.Contains(t, out.String(), want)
	}
}
