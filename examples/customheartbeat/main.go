// Command customheartbeat swaps one part of cordkit: the heartbeater
// (protocols.KeepAlive). Its KeepAlive wraps the reference one and measures
// every heartbeat's round trip, from the beat leaving to its ACK arriving.
// Everything else stays the reference implementation.
//
// With no TOKEN it connects two shards to the embedded mock Discord, whose
// HELLO asks for a heartbeat every 250 ms, watches the heartbeats for two
// seconds and prints each shard's round trips.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"sync"
	"time"

	"github.com/cordkit/cordkit"
	"github.com/cordkit/cordkit/conformance/mockdiscord"
	reference "github.com/cordkit/cordkit/impl/default"
	"github.com/cordkit/cordkit/protocols"
)

// TimedKeepAlive is a protocols.KeepAlive that wraps another and records
// the round trip of every acknowledged heartbeat.
type TimedKeepAlive struct {
	protocols.KeepAlive

	mu     sync.Mutex
	sentAt time.Time       // when the unacknowledged beat left; zero when none
	rtts   []time.Duration // round trips, oldest first
}

// NewTimedKeepAlive wraps the reference KeepAlive. It has the shape of a
// TypeSheet.NewKeepAlive field: one per shard.
func NewTimedKeepAlive() *TimedKeepAlive {
	return &TimedKeepAlive{KeepAlive: reference.NewKeepAlive()}
}

// Run runs the wrapped KeepAlive with a beat function that notes when each
// heartbeat left.
func (k *TimedKeepAlive) Run(ctx context.Context, interval time.Duration, beat func(context.Context) error) error {
	return k.KeepAlive.Run(ctx, interval, func(ctx context.Context) error {
		k.mu.Lock()
		k.sentAt = time.Now()
		k.mu.Unlock()
		return beat(ctx)
	})
}

// Ack records the round trip of the heartbeat it acknowledges, then passes
// the ACK on.
func (k *TimedKeepAlive) Ack() {
	k.mu.Lock()
	if !k.sentAt.IsZero() {
		k.rtts = append(k.rtts, time.Since(k.sentAt))
		k.sentAt = time.Time{}
	}
	k.mu.Unlock()
	k.KeepAlive.Ack()
}

// RoundTrips returns the recorded round trips.
func (k *TimedKeepAlive) RoundTrips() []time.Duration {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]time.Duration(nil), k.rtts...)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout, os.Getenv("TOKEN"), 2*time.Second); err != nil {
		fmt.Fprintln(os.Stderr, "customheartbeat:", err)
		os.Exit(1)
	}
}

// run connects a gateway whose TypeSheet swaps in TimedKeepAlive, watches
// for the given time (until ctx ends with a TOKEN), and prints the round
// trips per shard.
func run(ctx context.Context, out io.Writer, token string, watch time.Duration) error {
	cfg := cordkit.Config{Token: cordkit.BotToken(token), Intents: protocols.IntentGuilds}
	if token == "" {
		srv := mockdiscord.New(&mockdiscord.Options{Guilds: 2, Shards: 2, MaxConcurrency: 2, HeartbeatInterval: 250 * time.Millisecond})
		if err := srv.Start("127.0.0.1:0"); err != nil {
			return err
		}
		defer srv.Close()
		cfg.Token, cfg.APIBase = cordkit.BotToken(srv.Token()), srv.APIBase()
		fmt.Fprintf(out, "mock Discord at %s, heartbeat interval 250ms\n", srv.GatewayURL())
	} else {
		watch = 0 // until interrupted
	}

	var (
		mu         sync.Mutex
		keepAlives []*TimedKeepAlive
	)
	sheet := cordkit.TypeSheet{
		NewKeepAlive: func() protocols.KeepAlive {
			k := NewTimedKeepAlive()
			mu.Lock()
			keepAlives = append(keepAlives, k)
			mu.Unlock()
			return k
		},
	}
	state, err := cordkit.New(cfg, sheet)
	if err != nil {
		return err
	}
	defer state.Close()
	if err := state.Gateway().Connect(ctx); err != nil {
		return err
	}
	fmt.Fprintln(out, "gateway connected; watching heartbeats")
	if watch > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, watch)
		defer cancel()
	}
	<-ctx.Done()

	mu.Lock()
	defer mu.Unlock()
	for i, k := range keepAlives {
		rtts := k.RoundTrips()
		if len(rtts) == 0 {
			fmt.Fprintf(out, "keep-alive %d: no heartbeat acknowledged yet\n", i)
			continue
		}
		sorted := append([]time.Duration(nil), rtts...)
		sort.Slice(sorted, func(a, b int) bool { return sorted[a] < sorted[b] })
		fmt.Fprintf(out, "keep-alive %d: %d heartbeats acknowledged, round trip median %v, max %v\n",
			i, len(rtts), sorted[len(sorted)/2].Round(time.Microsecond), sorted[len(sorted)-1].Round(time.Microsecond))
	}
	return nil
}
