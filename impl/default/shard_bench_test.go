package reference_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
	reference "github.com/cordkit/cordkit/impl/default"
	"github.com/cordkit/cordkit/protocols"
)

// benchMessage is a MESSAGE_CREATE of a realistic size (about 900 bytes of
// JSON) with the fields Discord sends for a guild message.
var benchMessage = json.RawMessage(`{"type":0,"tts":false,"timestamp":"2026-11-23T12:00:00.000000+00:00",` +
	`"pinned":false,"nonce":"1311111111111111111","mentions":[],"mention_roles":[],"mention_everyone":false,` +
	`"member":{"roles":["1191168914227331080"],"premium_since":null,"pending":false,"nick":null,"mute":false,` +
	`"joined_at":"2024-01-01T00:00:00.000000+00:00","flags":0,"deaf":false,"communication_disabled_until":null,"avatar":null},` +
	`"id":"1311111111111111112","flags":0,"embeds":[],"edited_timestamp":null,"content":"hello there, this is a message of ordinary length",` +
	`"components":[],"channel_id":"1191168914227331074","author":{"username":"alice","public_flags":0,"id":"1191168914227331090",` +
	`"global_name":"Alice","discriminator":"0","avatar_decoration_data":null,"avatar":"a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"},` +
	`"attachments":[],"guild_id":"1191168914227331072"}`)

// BenchmarkShardThroughput measures one reference shard receiving events
// from the mock Discord over loopback websockets: each op is one event read,
// inflated, decoded and handed to a handler. The numbers include the
// mock's own work in the same process (encoding, compressing, writing), so
// they are a floor for the shard's speed; the inflate and envelope
// benchmarks measure the client's parts alone.
func BenchmarkShardThroughput(b *testing.B) {
	modes := []protocols.Compression{protocols.CompressNone, protocols.CompressZlibStream, protocols.CompressZlibPayload}
	for _, mode := range modes {
		for _, size := range []string{"small", "message"} {
			b.Run(fmt.Sprintf("compress=%s/event=%s", mode, size), func(b *testing.B) {
				benchShard(b, mode, size == "message")
			})
		}
	}
}

func benchShard(b *testing.B, mode protocols.Compression, message bool) {
	srv := mockdiscord.New(&mockdiscord.Options{Guilds: 1, HeartbeatInterval: time.Minute, ReplayBuffer: 1})
	if err := srv.Start("127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	defer srv.Close()

	events := reference.NewDispatcher()
	var got atomic.Int64
	done := make(chan struct{})
	target := int64(b.N)
	events.Listen("BENCH", func(ev protocols.Event) {
		if got.Add(1) == target {
			close(done)
		}
	})
	shard, err := reference.NewShard(protocols.ShardParams{
		ID: 0, Count: 1, Token: protocols.BotToken(srv.Token()), URL: srv.GatewayURL(),
		Intents: protocols.IntentGuilds | protocols.IntentGuildMessages, Compression: mode,
		Events: events, Raw: reference.NewDispatcher(),
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ready := make(chan struct{}, 1)
	ran := make(chan error, 1)
	go func() { ran <- shard.Run(ctx, func() { ready <- struct{}{} }) }()
	select {
	case <-ready:
	case err := <-ran:
		b.Fatalf("shard ended before READY: %v", err)
	}

	b.ReportAllocs()
	b.ResetTimer()
	if message {
		for range b.N {
			if _, err := srv.DispatchToShard(0, "BENCH", benchMessage); err != nil {
				b.Fatal(err)
			}
		}
	} else if _, err := srv.Stream(0, b.N, "BENCH"); err != nil {
		b.Fatal(err)
	}
	select {
	case <-done:
	case <-ctx.Done():
		b.Fatalf("received %d of %d events", got.Load(), b.N)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	_ = shard.Close(protocols.CloseNormal)
	if err := <-ran; err != nil {
		b.Fatal(err)
	}
}
