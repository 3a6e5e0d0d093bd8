package cordkit_test

import (
	"context"
	"fmt"
	"log"

	"github.com/cordkit/cordkit"
	"github.com/cordkit/cordkit/conformance/mockdiscord"
	"github.com/cordkit/cordkit/protocols"
)

// New with the zero TypeSheet uses the reference implementation of every
// part. Here the REST base points at the mock Discord.
func ExampleNew() {
	srv := mockdiscord.New(nil)
	defer srv.Close()

	state, err := cordkit.New(cordkit.Config{
		Token:   cordkit.BotToken(srv.Token()),
		APIBase: srv.APIBase(),
	}, cordkit.TypeSheet{HTTPDoer: srv.Client()})
	if err != nil {
		log.Fatal(err)
	}
	defer state.Close()

	ctx := context.Background()
	me, err := state.REST().GetCurrentUser(ctx)
	if err != nil {
		log.Fatal(err)
	}
	msg, err := state.REST().CreateMessage(ctx, srv.Channels()[0], cordkit.MessageCreate{Content: "hello"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(me.Username, msg.Content)
	// Output: cordkit-mock hello
}

// loggingLimiter is a decorator: it wraps the reference rate limiter and
// reports every permit it hands out.
type loggingLimiter struct {
	protocols.RateLimiter
}

func (l loggingLimiter) Acquire(ctx context.Context, r protocols.Route) (protocols.Permit, error) {
	p, err := l.RateLimiter.Acquire(ctx, r)
	if err == nil {
		fmt.Println("permit for", r.Endpoint())
	}
	return p, err
}

// Swapping a part means setting one TypeSheet field; the others stay the
// reference implementation.
func ExampleTypeSheet_decorator() {
	srv := mockdiscord.New(nil)
	defer srv.Close()

	sheet := cordkit.TypeSheet{
		HTTPDoer: srv.Client(),
		NewRateLimiter: func(p protocols.RateLimiterParams) (protocols.RateLimiter, error) {
			inner, err := cordkit.DefaultTypeSheet().NewRateLimiter(p)
			return loggingLimiter{inner}, err
		},
	}
	state, err := cordkit.New(cordkit.Config{Token: cordkit.BotToken(srv.Token()), APIBase: srv.APIBase()}, sheet)
	if err != nil {
		log.Fatal(err)
	}
	defer state.Close()
	if _, err := state.REST().GetChannel(context.Background(), srv.Channels()[0]); err != nil {
		log.Fatal(err)
	}
	// Output: permit for GET /channels/{channel_id}
}
