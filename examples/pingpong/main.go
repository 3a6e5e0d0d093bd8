// Command pingpong is cordkit's smallest bot: when someone says "ping" it
// answers "pong".
//
// With no TOKEN in the environment it starts the embedded mock Discord on
// 127.0.0.1 with two shards, connects the gateway, has a simulated user say
// "ping" in a channel, answers over REST, waits until the gateway echoes
// its own "pong", prints every step and exits. With TOKEN set it connects
// to Discord and answers every "ping" until interrupted (the bot needs the
// MESSAGE_CONTENT intent enabled in the developer portal).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/cordkit/cordkit"
	"github.com/cordkit/cordkit/conformance/mockdiscord"
	"github.com/cordkit/cordkit/protocols"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout, os.Getenv("TOKEN")); err != nil {
		fmt.Fprintln(os.Stderr, "pingpong:", err)
		os.Exit(1)
	}
}

const intents = protocols.IntentGuilds | protocols.IntentGuildMessages | protocols.IntentMessageContent

// run starts the bot. With an empty token it plays the whole scene against
// the embedded mock and returns once the pong has come back.
func run(ctx context.Context, out io.Writer, token string) error {
	var mu sync.Mutex // handlers of different shards print concurrently
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format+"\n", args...)
	}
	cfg := cordkit.Config{Token: cordkit.BotToken(token), Intents: intents}
	var srv *mockdiscord.Server
	if token == "" {
		srv = mockdiscord.New(&mockdiscord.Options{Guilds: 4, ChannelsPerGuild: 1, Shards: 2, MaxConcurrency: 2,
			HeartbeatInterval: 2 * time.Second})
		if err := srv.Start("127.0.0.1:0"); err != nil {
			return fmt.Errorf("starting the mock Discord: %w", err)
		}
		defer srv.Close()
		cfg.Token, cfg.APIBase = cordkit.BotToken(srv.Token()), srv.APIBase()
		say("mock Discord listening: REST %s, gateway %s", srv.APIBase(), srv.GatewayURL())
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}

	state, err := cordkit.New(cfg, cordkit.TypeSheet{})
	if err != nil {
		return err
	}
	defer state.Close()

	me, err := state.REST().GetCurrentUser(ctx)
	if err != nil {
		return fmt.Errorf("who am I: %w", err)
	}
	say("logged in as %s (%s)", me.Username, me.ID)

	// Handlers run on the shard's dispatching goroutine: they hand work
	// over and return at once, and the replies go out from here.
	pings := make(chan cordkit.Message, 16)
	pongs := make(chan cordkit.Message, 16)
	remove := state.Events().Listen("MESSAGE_CREATE", func(ev protocols.Event) {
		var m cordkit.Message
		if err := json.Unmarshal(ev.Data, &m); err != nil {
			return
		}
		switch {
		case m.Author.ID != me.ID && strings.EqualFold(strings.TrimSpace(m.Content), "ping"):
			say("shard %d: received %q from %s in channel %s", ev.Shard, m.Content, m.Author.Username, m.ChannelID)
			pings <- m
		case m.Author.ID == me.ID && m.Content == "pong":
			pongs <- m
		}
	})
	defer remove()
	readyLog := state.Events().Listen("READY", func(ev protocols.Event) {
		var r struct {
			SessionID string `json:"session_id"`
			Guilds    []any  `json:"guilds"`
		}
		_ = json.Unmarshal(ev.Data, &r)
		say("shard %d: READY (session %s, %d guilds)", ev.Shard, r.SessionID, len(r.Guilds))
	})
	defer readyLog()

	if err := state.Gateway().Connect(ctx); err != nil {
		return fmt.Errorf("connecting the gateway: %w", err)
	}
	say("gateway connected: every shard is ready")

	if srv != nil {
		channel := srv.Channels()[len(srv.Channels())-1]
		if _, err := srv.SimulateMessage(channel, "alice", "", "ping"); err != nil {
			return err
		}
		say("simulated user alice said \"ping\" in channel %s", channel)
	}

	for {
		select {
		case m := <-pings:
			reply, err := state.REST().CreateMessage(ctx, m.ChannelID, cordkit.MessageCreate{
				Content:          "pong",
				MessageReference: &cordkit.MessageReference{MessageID: m.ID},
			})
			if err != nil {
				return fmt.Errorf("replying: %w", err)
			}
			say("replied %q over REST (message %s)", reply.Content, reply.ID)
		case m := <-pongs:
			say("the gateway echoed our %q (message %s)", m.Content, m.ID)
			if srv != nil {
				say("done")
				return nil
			}
		case <-ctx.Done():
			if srv != nil {
				return fmt.Errorf("no pong came back: %w", ctx.Err())
			}
			if errors.Is(ctx.Err(), context.Canceled) {
				say("bye")
				return nil
			}
			return ctx.Err()
		}
	}
}
