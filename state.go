package cordkit

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cordkit/cordkit/protocols"
)

// State is a Config plus the parts built from a TypeSheet, each wired to the
// parts it needs: the HTTP client gets the rate limiter, the REST helpers
// get the HTTP client and the codec, and the gateway gets the HTTP client
// (for /gateway/bot), the dispatchers, the session store and the
// constructors of its per-shard parts. The gateway connects only when
// Gateway().Connect is called. It is immutable after [New] and safe
// for concurrent use.
type State struct {
	config  Config
	sheet   TypeSheet
	limiter protocols.RateLimiter
	http    protocols.HTTPClient
	rest    *REST
	events  protocols.Dispatcher
	raw     protocols.Dispatcher
	gateway protocols.Gateway

	closeOnce sync.Once
	closeErr  error
}

// New validates cfg once, fills in defaults, and builds every part named by
// sheet (the reference implementation for each nil field). It returns a
// *ConfigError for an invalid Config and never panics.
func New(cfg Config, sheet TypeSheet) (*State, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	sheet = resolve(sheet)
	// Every shard builds its Inflater when it is created: ask once here, so
	// that a Compression the sheet's inflater lacks (zstd-stream with the
	// reference one) is a *ConfigError from New, wrapping
	// protocols.ErrNotSupported, rather than a failure at Connect.
	if _, err := sheet.NewInflater(cfg.Compression); err != nil {
		return nil, &ConfigError{"Compression", fmt.Errorf("%s with TypeSheet.NewInflater: %w", cfg.Compression, err)}
	}
	s := &State{config: cfg, sheet: sheet}

	s.limiter, err = sheet.NewRateLimiter(protocols.RateLimiterParams{
		NewBucket:   sheet.NewBucket,
		GlobalLimit: cfg.GlobalLimit,
		Logger:      sheet.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("cordkit: building rate limiter: %w", err)
	}
	s.http, err = sheet.NewHTTPClient(protocols.HTTPClientParams{
		Token:                cfg.Token,
		BaseURL:              cfg.APIBase,
		UserAgent:            cfg.UserAgent,
		Doer:                 sheet.HTTPDoer,
		RateLimiter:          s.limiter,
		MaxRetries:           cfg.MaxRetries,
		InvalidRequestBudget: cfg.InvalidRequestBudget,
		Logger:               sheet.Logger,
	})
	if err != nil {
		_ = s.limiter.Close()
		return nil, fmt.Errorf("cordkit: building HTTP client: %w", err)
	}
	s.rest = NewREST(s.http, sheet.Codec)

	s.events, s.raw = sheet.NewDispatcher(), sheet.NewDispatcher()
	s.gateway, err = sheet.NewGateway(protocols.GatewayParams{
		Shard: protocols.ShardParams{
			Token:          cfg.Token,
			URL:            cfg.GatewayURL,
			Version:        GatewayVersion,
			Intents:        cfg.Intents,
			Compression:    cfg.Compression,
			LargeThreshold: cfg.LargeThreshold,
			Dialer:         sheet.Dialer,
			Codec:          sheet.Codec,
			NewInflater:    sheet.NewInflater,
			Sessions:       sheet.SessionStore,
			Events:         s.events,
			Raw:            s.raw,
			Logger:         sheet.Logger,
		},
		ShardCount:         cfg.ShardCount,
		ShardIDs:           cfg.ShardIDs,
		MaxConcurrency:     cfg.MaxConcurrency,
		HTTPClient:         s.http,
		NewShard:           sheet.NewShard,
		NewKeepAlive:       sheet.NewKeepAlive,
		NewSendLimiter:     sheet.NewSendLimiter,
		NewIdentifyLimiter: sheet.NewIdentifyLimiter,
	})
	if err != nil {
		_ = errors.Join(s.http.Close(), s.limiter.Close())
		return nil, fmt.Errorf("cordkit: building gateway: %w", err)
	}
	return s, nil
}

// Config returns the validated Config with its defaults filled in.
func (s *State) Config() Config {
	c := s.config
	if c.ShardIDs != nil {
		c.ShardIDs = append([]int(nil), c.ShardIDs...)
	}
	return c
}

// TypeSheet returns the resolved TypeSheet: which implementation of each
// protocol is in use.
func (s *State) TypeSheet() TypeSheet { return s.sheet }

// RateLimiter returns the REST rate limiter.
func (s *State) RateLimiter() protocols.RateLimiter { return s.limiter }

// HTTPClient returns the REST client.
func (s *State) HTTPClient() protocols.HTTPClient { return s.http }

// REST returns the typed REST helpers.
func (s *State) REST() *REST { return s.rest }

// Gateway returns the shard manager. Call Connect to start the shards.
func (s *State) Gateway() protocols.Gateway { return s.gateway }

// Events returns the dispatcher of gateway dispatches, by event name
// ("MESSAGE_CREATE") or protocols.AnyEvent.
func (s *State) Events() protocols.Dispatcher { return s.events }

// Raw returns the dispatcher of every gateway payload, by opcode name
// ("HELLO", "HEARTBEAT_ACK") or protocols.AnyEvent.
func (s *State) Raw() protocols.Dispatcher { return s.raw }

// Codec returns the JSON codec.
func (s *State) Codec() protocols.Codec { return s.sheet.Codec }

// Close closes every part: the gateway, then the HTTP client, then the
// limiter it uses. It is idempotent; later calls return the first call's
// result.
func (s *State) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = errors.Join(s.gateway.Close(), s.http.Close(), s.limiter.Close())
	})
	return s.closeErr
}
