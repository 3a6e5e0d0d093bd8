// Command mockdiscord runs cordkit's mock Discord as a standalone server, so
// a bot can be developed and tested offline:
//
//	go run ./cmd/mockdiscord -addr 127.0.0.1:8088 -guilds 20 -shards 2 -max-concurrency 1 -heartbeat 41.25s
//
// It prints the REST base URL and the gateway URL to point a client at (any
// Go library's: see the README) and serves until interrupted. The control API under /_mock/
// resets the mock, lists the world, posts messages as simulated users,
// injects faults and returns the observations.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, nil); err != nil {
		fmt.Fprintln(os.Stderr, "mockdiscord:", err)
		os.Exit(2)
	}
}

// run parses args, starts the mock and serves until ctx ends. started, when
// not nil, receives the server once it listens (for tests).
func run(ctx context.Context, args []string, out io.Writer, started chan<- *mockdiscord.Server) error {
	fs := flag.NewFlagSet("mockdiscord", flag.ContinueOnError)
	fs.SetOutput(out)
	var (
		addr        = fs.String("addr", "127.0.0.1:8088", "address to listen on")
		token       = fs.String("token", mockdiscord.DefaultToken, "the bot token the mock accepts")
		guilds      = fs.Int("guilds", 3, "number of guilds in the fake world")
		channels    = fs.Int("channels", 2, "text channels per guild")
		shards      = fs.Int("shards", 1, "shard count /gateway/bot recommends")
		maxConc     = fs.Int("max-concurrency", 1, "max_concurrency /gateway/bot reports")
		globalLimit = fs.Int("global-limit", mockdiscord.DefaultGlobalLimit, "global REST requests per second (negative disables)")
		noLimits    = fs.Bool("no-ratelimits", false, "disable per-route and global rate limits")
		latency     = fs.Duration("latency", 0, "delay added before every REST response")
		anyUA       = fs.Bool("any-user-agent", false, "accept requests whose User-Agent does not start with DiscordBot")
		heartbeat   = fs.Duration("heartbeat", mockdiscord.DefaultHeartbeatInterval, "gateway heartbeat interval sent in HELLO")
		identifyGap = fs.Duration("identify-interval", mockdiscord.DefaultIdentifyInterval, "minimum spacing of identifies per max_concurrency bucket")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *heartbeat <= 0 || *identifyGap < 0 {
		return fmt.Errorf("-heartbeat must be positive and -identify-interval not negative")
	}
	if *shards < 1 || *maxConc < 1 {
		return fmt.Errorf("-shards and -max-concurrency must be at least 1, got %d and %d", *shards, *maxConc)
	}
	if *guilds < 0 || *channels < 0 {
		return fmt.Errorf("-guilds and -channels must not be negative")
	}
	opts := &mockdiscord.Options{
		Token:             *token,
		Guilds:            *guilds,
		ChannelsPerGuild:  *channels,
		Shards:            *shards,
		MaxConcurrency:    *maxConc,
		GlobalLimit:       *globalLimit,
		DisableRateLimits: *noLimits,
		Latency:           *latency,
		AllowAnyUserAgent: *anyUA,
		HeartbeatInterval: *heartbeat,
		IdentifyInterval:  *identifyGap,
	}
	if err := opts.Validate(); err != nil {
		return err
	}
	srv := mockdiscord.New(opts)
	if err := srv.Start(*addr); err != nil {
		return err
	}
	defer srv.Close()
	fmt.Fprintf(out, "mock Discord serving\n  REST base: %s\n  gateway:   %s\n  token:     %s\n  control:   %s/_mock/ (world, messages, faults, observations, reset, gateway/...)\n",
		srv.APIBase(), srv.GatewayURL(), srv.Token(), srv.URL())
	if started != nil {
		started <- srv
	}
	<-ctx.Done()
	fmt.Fprintln(out, "shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Close() }()
	select {
	case err := <-done:
		return err
	case <-shutdown.Done():
		return shutdown.Err()
	}
}
