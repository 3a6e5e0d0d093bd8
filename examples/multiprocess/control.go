package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
)

// control talks to a mock Discord's control API (/_mock/...), so the
// parent drives an embedded mock and one started with cmd/mockdiscord
// alike.
type control struct {
	root   string // http://HOST:PORT
	client *http.Client
}

// newControl returns the control client of the mock whose REST base (or
// root URL) is apiBase.
func newControl(apiBase string) *control {
	root := strings.TrimSuffix(apiBase, "/")
	if i := strings.Index(root, "/api/"); i >= 0 {
		root = root[:i]
	}
	return &control{root: root, client: &http.Client{Timeout: 30 * time.Second}}
}

// APIBase is the REST base the workers use.
func (c *control) APIBase() string { return c.root + "/api/v10" }

func (c *control) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.root+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("mock control %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("mock control %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("mock control %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("mock control %s %s: %w", method, path, err)
	}
	return nil
}

// Channels lists every text channel of the mock's world.
func (c *control) Channels(ctx context.Context) ([]string, error) {
	var w struct {
		Guilds []struct {
			Channels []struct {
				ID string `json:"id"`
			} `json:"channels"`
		} `json:"guilds"`
	}
	if err := c.call(ctx, http.MethodGet, "/_mock/world", nil, &w); err != nil {
		return nil, err
	}
	var ids []string
	for _, g := range w.Guilds {
		for _, ch := range g.Channels {
			ids = append(ids, ch.ID)
		}
	}
	return ids, nil
}

// Probe dispatches the probe event id to every live session of shard and
// returns how many got it (kept for replay, when disconnected).
func (c *control) Probe(ctx context.Context, shard int, id int64) (int, error) {
	var out struct {
		Sessions int `json:"sessions"`
	}
	err := c.call(ctx, http.MethodPost, "/_mock/gateway/dispatch", map[string]any{
		"shard": shard, "name": ProbeEvent, "data": map[string]int64{"id": id},
	}, &out)
	return out.Sessions, err
}

// Sessions returns the live gateway sessions.
func (c *control) Sessions(ctx context.Context) ([]mockdiscord.GatewaySession, error) {
	var out []mockdiscord.GatewaySession
	err := c.call(ctx, http.MethodGet, "/_mock/gateway/sessions", nil, &out)
	return out, err
}

// Observations returns every REST request the mock saw.
func (c *control) Observations(ctx context.Context) ([]mockdiscord.Observation, error) {
	var out []mockdiscord.Observation
	err := c.call(ctx, http.MethodGet, "/_mock/observations", nil, &out)
	return out, err
}

// GatewayObservations returns everything the mock's gateway saw.
func (c *control) GatewayObservations(ctx context.Context) ([]mockdiscord.GatewayObservation, error) {
	var out []mockdiscord.GatewayObservation
	err := c.call(ctx, http.MethodGet, "/_mock/gateway/observations", nil, &out)
	return out, err
}

// GatewayViolations lists what a well-behaved gateway client never causes.
func (c *control) GatewayViolations(ctx context.Context) ([]string, error) {
	var out []string
	err := c.call(ctx, http.MethodGet, "/_mock/gateway/violations", nil, &out)
	return out, err
}
