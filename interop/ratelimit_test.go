package interop

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/disgoorg/disgo/discord"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
)

// rateLimitMessages is how many messages each library sends to one
// channel. The mock's default bucket for POST /channels/{id}/messages is 5
// per 5 s per channel, so a perfect limiter needs about 25 s.
const rateLimitMessages = 30

const createMessage = "POST /channels/{channel_id}/messages"

// headerLog wraps a transport and keeps the rate-limit headers of every
// response, so the report can show what the peer was told.
type headerLog struct {
	base http.RoundTripper
	mu   sync.Mutex
	rows []string
}

func (h *headerLog) RoundTrip(r *http.Request) (*http.Response, error) {
	rs, err := h.base.RoundTrip(r)
	if err == nil {
		row := fmt.Sprintf("%d remaining=%s reset-after=%s retry-after=%s scope=%s",
			rs.StatusCode, rs.Header.Get("X-RateLimit-Remaining"), rs.Header.Get("X-RateLimit-Reset-After"),
			rs.Header.Get("Retry-After"), rs.Header.Get("X-RateLimit-Scope"))
		h.mu.Lock()
		h.rows = append(h.rows, row)
		h.mu.Unlock()
	}
	return rs, err
}

func (h *headerLog) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.rows, "\n")
}

// rateLimitReport checks the mock's side of a 30-message run and logs the
// numbers: requests, 429s (the peer's limiter let them through), time.
func rateLimitReport(t *testing.T, srv *mockdiscord.Server, lib, chID string, elapsed time.Duration, hl *headerLog) {
	t.Helper()
	var requests, tooMany int
	for _, o := range srv.Observations() {
		if o.Endpoint != createMessage {
			continue
		}
		requests++
		if o.Status == http.StatusTooManyRequests {
			tooMany++
			if o.Scope != "user" {
				t.Errorf("a 429 of scope %q, want only per-route (user) 429s: %+v", o.Scope, o)
			}
		}
	}
	want := make([]string, rateLimitMessages)
	for i := range want {
		want[i] = fmt.Sprintf("%s message %d", lib, i+1)
	}
	checkMessages(t, srv, chID, want...)
	if requests != rateLimitMessages+tooMany {
		t.Errorf("%d requests with %d 429s for %d messages", requests, tooMany, rateLimitMessages)
	}
	if tooMany > 0 {
		t.Logf("%s: rate-limit headers the limiter saw:\n%s", lib, hl)
	}
	t.Logf("%s: %d messages to one channel through its own limiter against the default bucket (5 per 5 s): %d requests, %d x 429, %v",
		lib, rateLimitMessages, requests, tooMany, elapsed.Round(time.Millisecond))
}

// TestRateLimits sends 30 messages to one channel through each library's
// own REST rate limiter against the mock's default buckets, one after
// another, and counts the 429s the mock had to answer. The count is
// reported, not asserted: it documents the peer (disgo v0.18.15 truncates
// X-RateLimit-Reset-After to whole seconds, so it comes back one window
// early and takes a 429 at most window boundaries). What is asserted:
// every call succeeds (the peers parse every header the mock sends,
// 429s included, without error), every message lands once, in order,
// and no 429 is global.
func TestRateLimits(t *testing.T) {
	t.Parallel()
	t.Run("discordgo", func(t *testing.T) {
		t.Parallel()
		srv := startMock(t, nil)
		rw := newHostRewriter(srv)
		hl := &headerLog{base: rw}
		s, err := discordgo.New("Bot " + srv.Token())
		if err != nil {
			t.Fatal(err)
		}
		s.Client = &http.Client{Transport: hl, Timeout: 30 * time.Second}
		t.Cleanup(rw.base.CloseIdleConnections)
		chID := srv.Channels()[0]
		start := time.Now()
		for i := range rateLimitMessages {
			if _, err := s.ChannelMessageSend(chID, fmt.Sprintf("discordgo message %d", i+1)); err != nil {
				t.Fatalf("message %d: %v", i+1, err)
			}
		}
		rateLimitReport(t, srv, "discordgo", chID, time.Since(start), hl)
		if errs := dgLog.decodeErrors(); len(errs) > 0 {
			t.Errorf("discordgo: %s", strings.Join(errs, "\n"))
		}
	})
	t.Run("disgo", func(t *testing.T) {
		t.Parallel()
		srv := startMock(t, nil)
		c := newDisgo(t, srv)
		hl := &headerLog{base: c.restClient.HTTPClient().Transport}
		c.restClient.HTTPClient().Transport = hl
		chID := srv.Channels()[0]
		start := time.Now()
		for i := range rateLimitMessages {
			if _, err := c.rest.CreateMessage(sf(t, chID), discord.MessageCreate{Content: fmt.Sprintf("disgo message %d", i+1)}); err != nil {
				t.Fatalf("message %d: %v", i+1, err)
			}
		}
		rateLimitReport(t, srv, "disgo", chID, time.Since(start), hl)
		// disgo logs each 429 at warn level ("rate limit exceeded"); an
		// error-level line would be a header it could not use.
		noLoggedErrors(t, c.logs)
	})
}
