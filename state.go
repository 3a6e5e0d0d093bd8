package cordkit

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cordkit/cordkit/protocols"
)

// State is a Config plus the parts built from a TypeSheet, each wired to the
// parts it needs: the HTTP client gets the rate limiter, the REST helpers
// get the HTTP client and the codec. It is immutable after [New] and safe
// for concurrent use.
type State struct {
	config  Config
	sheet   TypeSheet
	limiter protocols.RateLimiter
	http    protocols.HTTPClient
	rest    *REST

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

// Codec returns the JSON codec.
func (s *State) Codec() protocols.Codec { return s.sheet.Codec }

// Close closes every part, the HTTP client before the limiter it uses. It
// is idempotent; later calls return the first call's result.
func (s *State) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = errors.Join(s.http.Close(), s.limiter.Close())
	})
	return s.closeErr
}
