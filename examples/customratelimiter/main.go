// Command customratelimiter swaps one part of cordkit: the REST rate
// limiter. Its limiter is a decorator around the reference one that
// measures how long each request waited for its permit, per endpoint, and
// prints a summary. Everything else stays the reference implementation.
//
// With no TOKEN it runs against the embedded mock Discord: 40 messages are
// sent at once to two channels whose bucket allows 5 per second (Discord's
// is 5 per 5 seconds; the mock's window is shortened so the example ends
// quickly), so the limiter has to make requests wait, and the mock confirms
// that Discord would have answered none of them with a 429.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/cordkit/cordkit"
	"github.com/cordkit/cordkit/conformance/mockdiscord"
	reference "github.com/cordkit/cordkit/impl/default"
	"github.com/cordkit/cordkit/protocols"
)

// TimingLimiter is a protocols.RateLimiter that wraps another and records
// how long Acquire waited, per endpoint.
type TimingLimiter struct {
	protocols.RateLimiter

	mu    sync.Mutex
	waits map[string][]time.Duration
}

// NewTimingLimiter builds the reference limiter from p and wraps it. It has
// the shape of a TypeSheet.NewRateLimiter field.
func NewTimingLimiter(p protocols.RateLimiterParams) (protocols.RateLimiter, error) {
	inner, err := reference.NewRateLimiter(p)
	if err != nil {
		return nil, err
	}
	return &TimingLimiter{RateLimiter: inner, waits: make(map[string][]time.Duration)}, nil
}

// Acquire waits on the wrapped limiter and records the wait.
func (l *TimingLimiter) Acquire(ctx context.Context, r protocols.Route) (protocols.Permit, error) {
	start := time.Now()
	p, err := l.RateLimiter.Acquire(ctx, r)
	if err == nil {
		l.mu.Lock()
		l.waits[r.Endpoint()] = append(l.waits[r.Endpoint()], time.Since(start))
		l.mu.Unlock()
	}
	return p, err
}

// Summary writes, per endpoint, the number of permits and the median and
// longest wait.
func (l *TimingLimiter) Summary(w io.Writer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	endpoints := make([]string, 0, len(l.waits))
	for e := range l.waits {
		endpoints = append(endpoints, e)
	}
	sort.Strings(endpoints)
	for _, e := range endpoints {
		ws := append([]time.Duration(nil), l.waits[e]...)
		sort.Slice(ws, func(i, j int) bool { return ws[i] < ws[j] })
		fmt.Fprintf(w, "  %-45s %3d permits, median wait %v, longest %v\n",
			e, len(ws), ws[len(ws)/2].Round(100*time.Millisecond), ws[len(ws)-1].Round(100*time.Millisecond))
	}
}

func main() {
	if err := run(context.Background(), os.Stdout, os.Getenv("TOKEN"), os.Getenv("CHANNEL_ID")); err != nil {
		fmt.Fprintln(os.Stderr, "customratelimiter:", err)
		os.Exit(1)
	}
}

// run sends messages through a State whose TypeSheet swaps in the
// TimingLimiter.
func run(ctx context.Context, out io.Writer, token, channelID string) error {
	cfg := cordkit.Config{Token: cordkit.BotToken(token)}
	channels := []string{channelID}
	var srv *mockdiscord.Server
	if token == "" {
		buckets := mockdiscord.DefaultBuckets()
		for i, b := range buckets {
			if b.Endpoint == "POST /channels/{channel_id}/messages" {
				buckets[i].Window = time.Second
			}
		}
		srv = mockdiscord.New(&mockdiscord.Options{Buckets: buckets})
		if err := srv.Start("127.0.0.1:0"); err != nil {
			return err
		}
		defer srv.Close()
		cfg = cordkit.Config{Token: cordkit.BotToken(srv.Token()), APIBase: srv.APIBase()}
		channels = srv.Channels()[:2]
		fmt.Fprintf(out, "mock Discord at %s\n", srv.APIBase())
	} else if channelID == "" {
		return fmt.Errorf("set CHANNEL_ID")
	}

	var limiter *TimingLimiter
	sheet := cordkit.TypeSheet{
		NewRateLimiter: func(p protocols.RateLimiterParams) (protocols.RateLimiter, error) {
			l, err := NewTimingLimiter(p)
			if err == nil {
				limiter = l.(*TimingLimiter)
			}
			return l, err
		},
	}
	state, err := cordkit.New(cfg, sheet)
	if err != nil {
		return err
	}
	defer state.Close()

	const perChannel = 20
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, perChannel*len(channels))
	for _, ch := range channels {
		for i := range perChannel {
			wg.Go(func() {
				_, err := state.REST().CreateMessage(ctx, ch, cordkit.MessageCreate{Content: fmt.Sprintf("message %d", i)})
				errs <- err
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "sent %d messages to %d channels in %v\n", perChannel*len(channels), len(channels), time.Since(start).Round(100*time.Millisecond))
	limiter.Summary(out)
	if srv != nil {
		fmt.Fprintf(out, "429s the mock Discord answered: %d\n", srv.Count(http.StatusTooManyRequests))
	}
	return nil
}
