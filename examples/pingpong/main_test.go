package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPingPongAgainstMock(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, ""), out.String())
	for _, step := range []string{"mock Discord listening", "logged in as cordkit-mock", "shard 0: READY", "shard 1: READY",
		"gateway connected", `simulated user alice said "ping"`, `received "ping" from alice`, `replied "pong" over REST`,
		`the gateway echoed our "pong"`, "done"} {
		assert.Contains(t, out.String(), step)
	}
}
