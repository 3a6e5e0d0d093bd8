// Command pingpong is cordkit's smallest bot: when someone says "ping" it
// answers "pong".
//
// With no TOKEN in the environment it starts the embedded mock Discord on
// 127.0.0.1, has a simulated user say "ping" in a channel, answers, prints
// every step and exits. With TOKEN and CHANNEL_ID set it watches that
// channel on Discord until interrupted.
//
// This version reads the channel over REST; the gateway version replaces
// the polling loop with MESSAGE_CREATE events.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/cordkit/cordkit"
	"github.com/cordkit/cordkit/conformance/mockdiscord"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout, os.Getenv("TOKEN"), os.Getenv("CHANNEL_ID")); err != nil {
		fmt.Fprintln(os.Stderr, "pingpong:", err)
		os.Exit(1)
	}
}

// run starts the bot. With an empty token it runs the whole scene against
// the embedded mock and returns once the pong was seen.
func run(ctx context.Context, out io.Writer, token, channelID string) error {
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	cfg := cordkit.Config{Token: cordkit.BotToken(token)}
	var srv *mockdiscord.Server
	if token == "" {
		srv = mockdiscord.New(&mockdiscord.Options{Guilds: 2, ChannelsPerGuild: 2})
		if err := srv.Start("127.0.0.1:0"); err != nil {
			return fmt.Errorf("starting the mock Discord: %w", err)
		}
		defer srv.Close()
		cfg = cordkit.Config{Token: cordkit.BotToken(srv.Token()), APIBase: srv.APIBase()}
		channelID = srv.Channels()[0]
		say("mock Discord listening: REST %s", srv.APIBase())
	} else if channelID == "" {
		return errors.New("set CHANNEL_ID to the channel to watch")
	}

	state, err := cordkit.New(cfg, cordkit.TypeSheet{})
	if err != nil {
		return err
	}
	defer state.Close()
	rest := state.REST()

	me, err := rest.GetCurrentUser(ctx)
	if err != nil {
		return fmt.Errorf("who am I: %w", err)
	}
	say("logged in as %s (%s)", me.Username, me.ID)

	// The newest message now is where watching starts.
	var latest []cordkit.Message
	if err := rest.Request(ctx, http.MethodGet, "/channels/"+channelID+"/messages", nil, &latest, cordkit.WithQuery("limit", "1")); err != nil {
		return fmt.Errorf("reading channel %s: %w", channelID, err)
	}
	after := ""
	if len(latest) > 0 {
		after = latest[0].ID
	}
	say("watching channel %s", channelID)

	// hc plays the simulated user's side, apart from the bot's client.
	hc := &http.Client{Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	if srv != nil {
		ctx2, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		ctx = ctx2
		if err := userSays(ctx, hc, srv.URL(), channelID, "ping"); err != nil {
			return err
		}
		say("simulated user said: ping")
	}

	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		var msgs []cordkit.Message
		opts := []cordkit.RequestOption{cordkit.WithQuery("limit", "50")}
		if after != "" {
			opts = append(opts, cordkit.WithQuery("after", after))
		}
		if err := rest.Request(ctx, http.MethodGet, "/channels/"+channelID+"/messages", nil, &msgs, opts...); err != nil {
			return fmt.Errorf("reading channel %s: %w", channelID, err)
		}
		// Discord returns the newest first.
		for i := len(msgs) - 1; i >= 0; i-- {
			m := msgs[i]
			after = m.ID
			if m.Author.ID == me.ID || !strings.EqualFold(strings.TrimSpace(m.Content), "ping") {
				continue
			}
			say("received %q from %s", m.Content, m.Author.Username)
			reply, err := rest.CreateMessage(ctx, channelID, cordkit.MessageCreate{
				Content:          "pong",
				MessageReference: &cordkit.MessageReference{MessageID: m.ID},
			})
			if err != nil {
				return fmt.Errorf("replying: %w", err)
			}
			say("replied %q (message %s)", reply.Content, reply.ID)
			if srv != nil {
				return checkPong(ctx, hc, srv.URL(), channelID, say)
			}
		}
		select {
		case <-ctx.Done():
			if srv != nil {
				return fmt.Errorf("no ping seen: %w", ctx.Err())
			}
			say("bye")
			return nil
		case <-tick.C:
		}
	}
}

// userSays posts a message as a simulated user through the mock's control
// API, the way a person would type in Discord.
func userSays(ctx context.Context, hc *http.Client, base, channelID, content string) error {
	body, _ := json.Marshal(map[string]string{"channel_id": channelID, "content": content, "author": "alice"})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/_mock/messages", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("simulated user: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("simulated user: %s: %s", resp.Status, b)
	}
	return nil
}

// checkPong reads the channel from the mock's side and confirms the pong.
func checkPong(ctx context.Context, hc *http.Client, base, channelID string, say func(string, ...any)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/_mock/messages?channel_id="+channelID, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var msgs []struct {
		Content string `json:"content"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&msgs); err != nil {
		return fmt.Errorf("reading the mock's messages: %w", err)
	}
	var seen []string
	for _, m := range msgs {
		seen = append(seen, m.Content)
	}
	if len(seen) < 2 || seen[len(seen)-2] != "ping" || seen[len(seen)-1] != "pong" {
		return fmt.Errorf("the channel holds %q, want ... ping, pong", seen)
	}
	say("the channel now reads: %s", strings.Join(seen, ", "))
	say("done")
	return nil
}
