package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunAgainstMock(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), &out, ""), out.String())
	for _, want := range []string{"shard 0: ready after", "shard 1: ready after", "mock Discord sent RECONNECT to shard 1",
		"shard 1 resumed its session", "shard 0: sent PRESENCE_UPDATE (err <nil>)", "shard 1: sent PRESENCE_UPDATE (err <nil>)",
		"shard 0: closing with 1000", "shard 0: run ended: <nil>"} {
		assert.Contains(t, out.String(), want)
	}
}
