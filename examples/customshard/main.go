// Command customshard swaps one part of cordkit: the gateway Shard. Its
// shard wraps the reference one and reports what happens to it: each
// connection attempt's time to READY, every payload sent, and how it was
// closed. A library builder replacing the whole shard implements the same
// four methods of protocols.Shard and runs the same conformance suite.
//
// With no TOKEN it connects two shards to the embedded mock Discord, asks
// the mock to send one of them a RECONNECT, updates both presences, and
// prints what each shard went through.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"time"

	"github.com/cordkit/cordkit"
	"github.com/cordkit/cordkit/conformance/mockdiscord"
	reference "github.com/cordkit/cordkit/impl/default"
	"github.com/cordkit/cordkit/protocols"
)

// ReportingShard is a protocols.Shard that wraps another and reports its
// lifecycle through Report.
type ReportingShard struct {
	protocols.Shard
	id     int
	Report func(format string, args ...any)
}

// NewReportingShard builds the reference shard from p and wraps it. report
// receives one line per event.
func NewReportingShard(p protocols.ShardParams, report func(format string, args ...any)) (*ReportingShard, error) {
	inner, err := reference.NewShard(p)
	if err != nil {
		return nil, err
	}
	return &ReportingShard{Shard: inner, id: p.ID, Report: report}, nil
}

// Run runs the wrapped shard, reporting how long each connection took to
// become ready and how Run ended.
func (s *ReportingShard) Run(ctx context.Context, ready func()) error {
	start := time.Now()
	s.Report("shard %d: connecting", s.id)
	err := s.Shard.Run(ctx, func() {
		st := s.Shard.Status()
		s.Report("shard %d: ready after %v (session %s, seq %d)", s.id, time.Since(start).Round(time.Millisecond), st.Session.ID, st.Session.Seq)
		start = time.Now()
		if ready != nil {
			ready()
		}
	})
	s.Report("shard %d: run ended: %v", s.id, err)
	return err
}

// Send reports the opcode and sends through the wrapped shard.
func (s *ReportingShard) Send(ctx context.Context, op protocols.Opcode, d any) error {
	err := s.Shard.Send(ctx, op, d)
	s.Report("shard %d: sent %s (err %v)", s.id, op, err)
	return err
}

// Close reports the code and closes the wrapped shard.
func (s *ReportingShard) Close(code protocols.CloseCode) error {
	s.Report("shard %d: closing with %d (%s)", s.id, int(code), code)
	return s.Shard.Close(code)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout, os.Getenv("TOKEN")); err != nil {
		fmt.Fprintln(os.Stderr, "customshard:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, token string) error {
	var mu sync.Mutex
	report := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format+"\n", args...)
	}
	cfg := cordkit.Config{Token: cordkit.BotToken(token), Intents: protocols.IntentGuilds}
	var srv *mockdiscord.Server
	if token == "" {
		srv = mockdiscord.New(&mockdiscord.Options{Guilds: 2, Shards: 2, MaxConcurrency: 2, HeartbeatInterval: time.Second})
		if err := srv.Start("127.0.0.1:0"); err != nil {
			return err
		}
		defer srv.Close()
		cfg.Token, cfg.APIBase = cordkit.BotToken(srv.Token()), srv.APIBase()
		report("mock Discord at %s", srv.GatewayURL())
	}

	sheet := cordkit.TypeSheet{
		NewShard: func(p protocols.ShardParams) (protocols.Shard, error) {
			return NewReportingShard(p, report)
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
	report("gateway connected")

	if srv != nil {
		// Discord sends RECONNECT when it moves a session; the shard resumes.
		resumed := make(chan struct{}, 1)
		remove := state.Events().Listen("RESUMED", func(protocols.Event) { resumed <- struct{}{} })
		defer remove()
		if _, err := srv.InjectGateway(mockdiscord.GatewayFault{Kind: "reconnect", Shard: 1}); err != nil {
			return err
		}
		report("mock Discord sent RECONNECT to shard 1")
		select {
		case <-resumed:
			report("shard 1 resumed its session")
		case <-time.After(10 * time.Second):
			return fmt.Errorf("shard 1 did not resume")
		}
	}
	for id := range 2 {
		sh := state.Gateway().Shard(id)
		if sh == nil {
			continue
		}
		err := reference.UpdatePresence(ctx, sh, reference.Presence{Status: "online", Activities: []reference.Activity{{Name: "ping-pong", Type: 0}}})
		if err != nil {
			return err
		}
	}
	if token != "" {
		<-ctx.Done()
	}
	return nil
}
