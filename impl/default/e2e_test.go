package reference_test

import (
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
	reference "github.com/cordkit/cordkit/impl/default"
	"github.com/cordkit/cordkit/protocols"
)

// TestEndToEndMockDiscord drives the client, limiter and bucket together
// against the mock Discord, in memory, inside a bubble: a burst of messages
// to a few channels and guild reads must all succeed without a single 429
// that the client could have avoided.
func TestEndToEndMockDiscord(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := mockdiscord.New(&mockdiscord.Options{Latency: 30 * time.Millisecond})
		defer srv.Close()
		l, err := reference.NewRateLimiter(protocols.RateLimiterParams{GlobalLimit: reference.DefaultGlobalLimit})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		c, err := reference.NewHTTPClient(protocols.HTTPClientParams{
			Token:       protocols.BotToken(mockdiscord.DefaultToken),
			BaseURL:     srv.APIBase(),
			Doer:        srv.Client(),
			RateLimiter: l,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()

		channels := srv.Channels()
		guilds := srv.Guilds()
		if len(channels) < 2 || len(guilds) < 1 {
			t.Fatalf("mock world has %d channels and %d guilds", len(channels), len(guilds))
		}
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		for i := range 60 {
			wg.Go(func() {
				var req *protocols.Request
				switch i % 3 {
				case 0, 1:
					ch := channels[i%2]
					req = &protocols.Request{
						Route:  route(t, "POST", "/channels/{channel_id}/messages", ch),
						Body:   fmt.Appendf(nil, `{"content":"message %d"}`, i),
						Reason: "end-to-end test",
					}
				default:
					req = &protocols.Request{Route: route(t, "GET", "/guilds/{guild_id}", guilds[0])}
				}
				if _, err := c.Do(t.Context(), req); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if v := srv.WindowViolations(); len(v) > 0 {
			t.Errorf("%d avoidable 429s; first: %s", len(v), v[0])
		}
		got := 0
		for _, ch := range channels[:2] {
			got += len(srv.Messages(ch))
		}
		if got < 40 {
			t.Errorf("%d messages stored in the two channels, want at least the 40 sent", got)
		}
		t.Logf("observations %d, 429s %d, elapsed %v", len(srv.Observations()), srv.Count(429), time.Since(time.Unix(946684800, 0)))
		for _, o := range srv.Observations() {
			if !o.Authorized || o.UserAgent != reference.DefaultUserAgent {
				t.Errorf("%s %s: authorized %v, User-Agent %q", o.Method, o.Path, o.Authorized, o.UserAgent)
				break
			}
			if o.Method == "POST" && o.AuditLogReason != "end-to-end test" {
				t.Errorf("%s %s: audit-log reason %q", o.Method, o.Path, o.AuditLogReason)
				break
			}
		}
	})
}
