package reference_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
	reference "github.com/cordkit/cordkit/impl/default"
	"github.com/cordkit/cordkit/protocols"
)

// startTCP starts a mock Discord on 127.0.0.1.
func startTCP(t *testing.T, opts *mockdiscord.Options) *mockdiscord.Server {
	t.Helper()
	srv := mockdiscord.New(opts)
	if err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// TestGatewayEndToEndTCP runs a gateway of two shards over real loopback
// websockets, with the default dialer and HTTP client: /gateway/bot,
// identify, guilds, a message, a RECONNECT and resume, a member request,
// and Close.
func TestGatewayEndToEndTCP(t *testing.T) {
	srv := startTCP(t, &mockdiscord.Options{Shards: 2, MaxConcurrency: 2, Guilds: 4, HeartbeatInterval: 300 * time.Millisecond})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	l, err := reference.NewRateLimiter(protocols.RateLimiterParams{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	token := protocols.BotToken(mockdiscord.DefaultToken)
	client, err := reference.NewHTTPClient(protocols.HTTPClientParams{Token: token, BaseURL: srv.APIBase(), RateLimiter: l})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	events := reference.NewDispatcher()
	var (
		mu       sync.Mutex
		guilds   = map[string]int{}
		messages []string
	)
	events.Listen("GUILD_CREATE", func(ev protocols.Event) {
		var g struct{ ID string }
		_ = json.Unmarshal(ev.Data, &g)
		mu.Lock()
		guilds[g.ID]++
		mu.Unlock()
	})
	events.Listen("MESSAGE_CREATE", func(ev protocols.Event) {
		var m struct{ Content string }
		_ = json.Unmarshal(ev.Data, &m)
		mu.Lock()
		messages = append(messages, m.Content)
		mu.Unlock()
	})
	g, err := reference.GatewayOptions{Shard: reference.ShardOptions{BackoffBase: 50 * time.Millisecond}}.New(protocols.GatewayParams{
		Shard: protocols.ShardParams{
			Token:   token,
			Intents: protocols.IntentGuilds | protocols.IntentGuildMessages | protocols.IntentMessageContent | protocols.IntentGuildMembers,
			Events:  events,
		},
		HTTPClient: client,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	resumed := make(chan error, 1)
	go func() {
		_, err := events.WaitFor(ctx, "RESUMED", func(ev protocols.Event) bool { return ev.Shard == 1 })
		resumed <- err
	}()
	time.Sleep(50 * time.Millisecond) // let WaitFor register
	if n, err := srv.InjectGateway(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultReconnect, Shard: 1}); err != nil || n != 1 {
		t.Fatalf("InjectGateway: %d, %v", n, err)
	}
	if err := <-resumed; err != nil {
		t.Fatalf("waiting for RESUMED on shard 1: %v", err)
	}

	channel := srv.Channels()[1]
	if _, err := srv.SimulateMessage(channel, "alice", "", "hello over TCP"); err != nil {
		t.Fatal(err)
	}
	members, err := reference.RequestGuildMembers(ctx, g.Shard(1), events, reference.GuildMembersRequest{GuildID: srv.Guilds()[1], Query: "member-", Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(members.Members) != 3 {
		t.Errorf("%d members, want 3", len(members.Members))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(messages)
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(guilds) != 4 {
		t.Errorf("GUILD_CREATE for %d guilds, want 4", len(guilds))
	}
	for id, n := range guilds {
		if n != 1 {
			t.Errorf("guild %s: %d GUILD_CREATE, want 1", id, n)
		}
	}
	if len(messages) != 1 || messages[0] != "hello over TCP" {
		t.Errorf("messages %q, want [hello over TCP]", messages)
	}
	for _, c := range clientCloses(srv) {
		if c.Code == 1000 {
			continue
		}
		if c.Code != int(reference.ReconnectCloseCode) {
			t.Errorf("client close %+v", c)
		}
	}
	noViolations(t, srv)
}

// TestShardEndToEndTCPZlibStream streams 2,000 events with zlib-stream
// over a real socket while the connection drops, and checks that each
// arrives once, in order.
func TestShardEndToEndTCPZlibStream(t *testing.T) {
	srv := startTCP(t, &mockdiscord.Options{HeartbeatInterval: time.Second})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	events := reference.NewDispatcher()
	var (
		mu   sync.Mutex
		seen []int
	)
	events.Listen("TEST_EVENT", func(ev protocols.Event) {
		var d struct{ N int }
		_ = json.Unmarshal(ev.Data, &d)
		mu.Lock()
		seen = append(seen, d.N)
		mu.Unlock()
	})
	sh, err := reference.ShardOptions{BackoffBase: 20 * time.Millisecond}.New(protocols.ShardParams{
		ID: 0, Count: 1, Token: protocols.BotToken(mockdiscord.DefaultToken), URL: srv.GatewayURL(),
		Intents: protocols.IntentGuilds, Compression: protocols.CompressZlibStream, Events: events,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := run(ctx, sh)
	r.waitReady(t, 5*time.Second)
	for i := range 4 {
		if _, err := srv.InjectGateway(mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultDrop, Shard: 0, AfterDispatches: 100 + 37*i}); err != nil {
			t.Fatal(err)
		}
		for k := range 500 {
			if _, err := srv.DispatchToShard(0, "TEST_EVENT", map[string]int{"n": 500*i + k + 1}); err != nil {
				t.Fatal(err)
			}
		}
		r.waitReady(t, 5*time.Second)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n >= 2000 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := r.stop(t, protocols.CloseNormal); err != nil {
		t.Errorf("Run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2000 {
		t.Errorf("%d events, want 2000", len(seen))
	}
	for i, n := range seen {
		if n != i+1 {
			t.Fatalf("event %d is n=%d, want %d", i, n, i+1)
		}
	}
	noViolations(t, srv)
}
