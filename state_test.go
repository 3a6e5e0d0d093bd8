package cordkit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cordkit/cordkit"
	"github.com/cordkit/cordkit/conformance/mockdiscord"
	"github.com/cordkit/cordkit/protocols"
)

func TestNewRejectsBadConfig(t *testing.T) {
	good := cordkit.BotToken(mockdiscord.DefaultToken)
	tests := []struct {
		name  string
		cfg   cordkit.Config
		field string
		want  error
	}{
		{"MissingToken", cordkit.Config{}, "Token", cordkit.ErrMissingToken},
		{"BlankToken", cordkit.Config{Token: cordkit.BotToken("   ")}, "Token", cordkit.ErrMissingToken},
		{"TwoPartToken", cordkit.Config{Token: cordkit.BotToken("abc.def")}, "Token", protocols.ErrInvalidToken},
		{"TokenWithoutUserID", cordkit.Config{Token: cordkit.BotToken("bm90LWFuLWlk.abc.def")}, "Token", protocols.ErrInvalidToken},
		{"TokenWithSpace", cordkit.Config{Token: cordkit.BotToken("MTEx.a b.c")}, "Token", protocols.ErrInvalidToken},
		{"UndefinedIntentBits", cordkit.Config{Token: good, Intents: 1 << 17}, "Intents", protocols.ErrInvalidIntents},
		{"NegativeShardCount", cordkit.Config{Token: good, ShardCount: -1}, "ShardIDs", protocols.ErrInvalidShard},
		{"ShardIDsWithoutCount", cordkit.Config{Token: good, ShardIDs: []int{0}}, "ShardIDs", protocols.ErrInvalidShard},
		{"ShardIDOutOfRange", cordkit.Config{Token: good, ShardCount: 2, ShardIDs: []int{2}}, "ShardIDs", protocols.ErrInvalidShard},
		{"DuplicateShardID", cordkit.Config{Token: good, ShardCount: 4, ShardIDs: []int{1, 1}}, "ShardIDs", protocols.ErrInvalidShard},
		{"EmptyShardIDs", cordkit.Config{Token: good, ShardCount: 4, ShardIDs: []int{}}, "ShardIDs", protocols.ErrInvalidShard},
		{"NegativeMaxConcurrency", cordkit.Config{Token: good, MaxConcurrency: -1}, "MaxConcurrency", protocols.ErrInvalidShard},
		{"LargeThresholdTooBig", cordkit.Config{Token: good, LargeThreshold: 251}, "LargeThreshold", nil},
		{"RelativeAPIBase", cordkit.Config{Token: good, APIBase: "/api/v10"}, "APIBase", nil},
		{"UnknownCompression", cordkit.Config{Token: good, Compression: 99}, "Compression", nil},
		// The reference inflater has no zstd: TypeSheet.NewInflater must
		// be one that has (impl/fast's).
		{"ZstdWithReferenceInflater", cordkit.Config{Token: good, Compression: protocols.CompressZstdStream}, "Compression", protocols.ErrNotSupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := cordkit.New(tt.cfg, cordkit.TypeSheet{})
			require.Error(t, err)
			assert.Nil(t, s)
			assert.ErrorIs(t, err, cordkit.ErrInvalidConfig)
			var ce *cordkit.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tt.field, ce.Field)
			if tt.want != nil {
				assert.ErrorIs(t, err, tt.want)
			}
		})
	}
}

func TestNewFillsDefaults(t *testing.T) {
	s, err := cordkit.New(cordkit.Config{Token: cordkit.BotToken("Bot " + mockdiscord.DefaultToken)}, cordkit.TypeSheet{})
	require.NoError(t, err)
	defer s.Close()
	cfg := s.Config()
	assert.Equal(t, cordkit.DefaultAPIBase, cfg.APIBase)
	assert.Equal(t, cordkit.DefaultUserAgent, cfg.UserAgent)
	assert.Equal(t, cordkit.DefaultGlobalLimit, cfg.GlobalLimit)
	assert.Equal(t, cordkit.DefaultLargeThreshold, cfg.LargeThreshold)
	assert.Equal(t, mockdiscord.DefaultToken, cfg.Token.Reveal(), "the Bot prefix is stripped")
	sheet := s.TypeSheet()
	for name, part := range map[string]any{
		"Logger": sheet.Logger, "Codec": sheet.Codec, "HTTPDoer": sheet.HTTPDoer, "NewBucket": sheet.NewBucket,
		"NewRateLimiter": sheet.NewRateLimiter, "NewHTTPClient": sheet.NewHTTPClient,
		"Dialer": sheet.Dialer, "NewInflater": sheet.NewInflater, "NewKeepAlive": sheet.NewKeepAlive,
		"NewSendLimiter": sheet.NewSendLimiter, "NewIdentifyLimiter": sheet.NewIdentifyLimiter,
		"NewDispatcher": sheet.NewDispatcher, "SessionStore": sheet.SessionStore,
	} {
		assert.NotNil(t, part, "resolved TypeSheet.%s", name)
	}
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close is idempotent")
}

// countingLimiter decorates the reference limiter to prove that a TypeSheet
// field swaps exactly one part and that State wires it into the client.
type countingLimiter struct {
	protocols.RateLimiter
	acquires int
}

func (c *countingLimiter) Acquire(ctx context.Context, r protocols.Route) (protocols.Permit, error) {
	c.acquires++
	return c.RateLimiter.Acquire(ctx, r)
}

func TestTypeSheetSwapsOnePart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := mockdiscord.New(nil)
		defer srv.Close()
		var counting *countingLimiter
		sheet := cordkit.TypeSheet{
			HTTPDoer: srv.Client(),
			NewRateLimiter: func(p protocols.RateLimiterParams) (protocols.RateLimiter, error) {
				inner, err := cordkit.DefaultTypeSheet().NewRateLimiter(p)
				counting = &countingLimiter{RateLimiter: inner}
				return counting, err
			},
		}
		s, err := cordkit.New(cordkit.Config{Token: cordkit.BotToken(srv.Token()), APIBase: srv.APIBase()}, sheet)
		require.NoError(t, err)
		defer s.Close()
		me, err := s.REST().GetCurrentUser(t.Context())
		require.NoError(t, err)
		assert.Equal(t, "111111111111111111", me.ID)
		assert.Equal(t, 1, counting.acquires)
		assert.Same(t, counting, s.RateLimiter())
	})
}

func TestRESTHelpersAgainstMock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := mockdiscord.New(nil)
		defer srv.Close()
		s, err := cordkit.New(cordkit.Config{Token: cordkit.BotToken(srv.Token()), APIBase: srv.APIBase()},
			cordkit.TypeSheet{HTTPDoer: srv.Client()})
		require.NoError(t, err)
		defer s.Close()
		ctx := t.Context()
		rest := s.REST()
		ch := srv.Channels()[0]

		gb, err := rest.GetGatewayBot(ctx)
		require.NoError(t, err)
		assert.NotEmpty(t, gb.URL)
		assert.GreaterOrEqual(t, gb.Shards, 1)
		assert.GreaterOrEqual(t, gb.SessionStartLimit.MaxConcurrency, 1)

		c, err := rest.GetChannel(ctx, ch)
		require.NoError(t, err)
		assert.Equal(t, ch, c.ID)

		msg, err := rest.CreateMessage(ctx, ch, cordkit.MessageCreate{Content: "ping"})
		require.NoError(t, err)
		assert.Equal(t, "ping", msg.Content)
		assert.Equal(t, ch, msg.ChannelID)

		content := "pong"
		edited, err := rest.EditMessage(ctx, ch, msg.ID, cordkit.MessageEdit{Content: &content})
		require.NoError(t, err)
		assert.Equal(t, "pong", edited.Content)

		up, err := rest.CreateMessage(ctx, ch, cordkit.MessageCreate{Content: "file",
			Files: []protocols.File{{Name: "a.txt", ContentType: "text/plain", Reader: strings.NewReader("hello")}}})
		require.NoError(t, err)
		require.Len(t, up.Attachments, 1)
		assert.Equal(t, "a.txt", up.Attachments[0].Filename)
		assert.Equal(t, 5, up.Attachments[0].Size)

		require.NoError(t, rest.DeleteMessage(ctx, ch, msg.ID, cordkit.WithReason("tidy up: ünïcode")))
		var reason string
		for _, o := range srv.Observations() {
			if o.Method == http.MethodDelete {
				reason = o.AuditLogReason
			}
		}
		assert.Equal(t, "tidy up: ünïcode", reason)

		var msgs []cordkit.Message
		require.NoError(t, rest.Request(ctx, http.MethodGet, "/channels/"+ch+"/messages", nil, &msgs, cordkit.WithQuery("limit", "10")))
		require.Len(t, msgs, 1, "the deleted message is gone, the upload stays")
		assert.Equal(t, up.ID, msgs[0].ID)

		_, err = rest.GetChannel(ctx, "1")
		var he *protocols.HTTPError
		require.ErrorAs(t, err, &he)
		assert.Equal(t, http.StatusNotFound, he.Status)
		assert.Equal(t, 10003, he.Code)

		_, err = rest.CreateMessage(ctx, ch, cordkit.MessageCreate{Content: strings.Repeat("x", 2001)})
		require.ErrorAs(t, err, &he)
		assert.Equal(t, 50035, he.Code)
		require.NotEmpty(t, he.FieldErrors())
		assert.Equal(t, "content", he.FieldErrors()[0].Path)

		_, err = rest.GetChannel(ctx, "")
		assert.ErrorIs(t, err, protocols.ErrInvalidRoute)
	})
}

// TestTokenNeverLeaks drives the client through success, a 401, 5xx retries
// and a 429, with debug logs captured, then checks that the token appears in
// no log line, no error and no printed value.
func TestTokenNeverLeaks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := mockdiscord.New(nil)
		defer srv.Close()
		var logs bytes.Buffer
		logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		jsonLogger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		token := cordkit.BotToken(srv.Token())
		cfg := cordkit.Config{Token: token, APIBase: srv.APIBase()}
		s, err := cordkit.New(cfg, cordkit.TypeSheet{HTTPDoer: srv.Client(), Logger: logger})
		require.NoError(t, err)
		defer s.Close()
		ctx := t.Context()
		var errs []error

		_, err = s.REST().GetCurrentUser(ctx)
		errs = append(errs, err)
		srv.Inject(mockdiscord.Fault{Kind: mockdiscord.FaultKind("server_error"), Count: 2, Status: 502})
		_, err = s.REST().GetCurrentUser(ctx)
		errs = append(errs, err)
		srv.Inject(mockdiscord.Fault{Kind: mockdiscord.FaultKind("cloudflare429")})
		_, err = s.REST().GetChannel(ctx, srv.Channels()[0])
		errs = append(errs, err)

		bad, err := cordkit.New(cordkit.Config{Token: cordkit.BotToken("MTExMTExMTExMTExMTExMTEx.AAAAAA.wrong-secret-value"), APIBase: srv.APIBase()},
			cordkit.TypeSheet{HTTPDoer: srv.Client(), Logger: logger})
		require.NoError(t, err)
		defer bad.Close()
		_, err = bad.REST().GetCurrentUser(ctx)
		require.ErrorIs(t, err, protocols.ErrInvalidToken)
		errs = append(errs, err)
		_, err = bad.REST().GetCurrentUser(ctx)
		require.ErrorIs(t, err, protocols.ErrInvalidToken, "fails fast after a 401")
		errs = append(errs, err)

		jsonLogger.Info("config", "cfg", cfg, "token", token)
		logger.Info("config", "cfg", cfg, "token", token)
		asJSON, err := json.Marshal(cfg)
		require.NoError(t, err)

		printed := []string{
			logs.String(), string(asJSON),
			fmt.Sprintf("%v %+v %#v %s %q", cfg, cfg, cfg, token, token),
			fmt.Sprintf("%v %+v %#v", s, s, s.TypeSheet()),
			fmt.Sprintf("%v %+v", s.HTTPClient(), s.RateLimiter()),
		}
		for _, e := range errs {
			if e != nil {
				printed = append(printed, e.Error(), fmt.Sprintf("%+v %#v", e, e))
			}
		}
		for _, p := range printed {
			for _, secret := range []string{srv.Token(), "wrong-secret-value", strings.SplitN(srv.Token(), ".", 2)[1]} {
				if strings.Contains(p, secret) {
					t.Errorf("the token leaked into: %.300s", p)
				}
			}
		}
		assert.Contains(t, logs.String(), "[REDACTED]")
	})
}

func TestStateCloseFailsLaterRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := mockdiscord.New(nil)
		defer srv.Close()
		s, err := cordkit.New(cordkit.Config{Token: cordkit.BotToken(srv.Token()), APIBase: srv.APIBase()},
			cordkit.TypeSheet{HTTPDoer: srv.Client()})
		require.NoError(t, err)
		require.NoError(t, s.Close())
		_, err = s.REST().GetCurrentUser(t.Context())
		assert.True(t, errors.Is(err, protocols.ErrClosed), "got %v, want ErrClosed", err)
	})
}
