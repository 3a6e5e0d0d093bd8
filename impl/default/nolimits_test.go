package reference_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
	reference "github.com/cordkit/cordkit/impl/default"
	"github.com/cordkit/cordkit/protocols"
)

// Behind a proxy the client must not wait at all: 100 requests to one
// bucket of 5 per 5 s go out at once (the mock, standing in for the
// proxy's upstream, has its limits off).
func TestNoLimitsNeverWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := mockdiscord.New(&mockdiscord.Options{DisableRateLimits: true})
		defer srv.Close()
		l, _ := reference.NewNoLimits(protocols.RateLimiterParams{})
		c, err := reference.NewHTTPClient(protocols.HTTPClientParams{Token: protocols.BotToken(srv.Token()),
			BaseURL: srv.APIBase(), Doer: srv.Client(), RateLimiter: l})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		route, _ := protocols.NewRoute("POST", "/channels/{channel_id}/messages", srv.Channels()[0])
		start := time.Now()
		for range 100 {
			if _, err := c.Do(t.Context(), &protocols.Request{Route: route, Body: []byte(`{"content":"x"}`)}); err != nil {
				t.Fatal(err)
			}
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("100 requests took %v of fake time, want 0", d)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := l.Acquire(ctx, route); !errors.Is(err, context.Canceled) {
			t.Errorf("Acquire with a canceled context: got %v, want context.Canceled", err)
		}
		_ = l.Close()
		if _, err := l.Acquire(t.Context(), route); !errors.Is(err, protocols.ErrClosed) {
			t.Errorf("Acquire after Close: got %v, want ErrClosed", err)
		}
	})
}
