package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestServesUntilCanceled(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	started := make(chan *mockdiscord.Server, 1)
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-guilds", "4", "-channels", "1"}, &out, started)
	}()
	var srv *mockdiscord.Server
	select {
	case srv = <-started:
	case err := <-done:
		t.Fatalf("run ended before serving: %v", err)
	}
	assert.Len(t, srv.Channels(), 4)

	hc := &http.Client{Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.APIBase()+"/users/@me", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bot "+srv.Token())
	req.Header.Set("User-Agent", "DiscordBot (https://example.test, 1.0)")
	resp, err := hc.Do(req)
	require.NoError(t, err)
	var me struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&me))
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "111111111111111111", me.ID)

	cancel()
	require.NoError(t, <-done)
	assert.True(t, strings.Contains(out.String(), srv.APIBase()), out.String())
	assert.True(t, strings.Contains(out.String(), srv.GatewayURL()), out.String())
}

func TestRejectsBadFlags(t *testing.T) {
	var out bytes.Buffer
	assert.Error(t, run(t.Context(), []string{"-guilds", "x"}, &out, nil))
	for _, args := range [][]string{{"-shards", "-3"}, {"-max-concurrency", "0"}, {"-guilds", "-1"}, {"-token", "has space"}, {"-heartbeat", "0s"}} {
		assert.Error(t, run(t.Context(), append(args, "-addr", "127.0.0.1:0"), &out, nil), "%q", args)
	}
}
