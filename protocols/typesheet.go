package protocols

import (
	"log/slog"
	"time"
)

// TypeSheet says which implementation of each protocol to use. Every field
// is an implementation or a constructor; a nil field means the reference
// implementation (impl/default). The zero TypeSheet is valid.
//
// It lives here, not in the root package, so that an implementation package
// such as impl/fast can return a partial TypeSheet without importing the
// root; the root package re-exports it as cordkit.TypeSheet.
//
// Constructors receive the parts they need in a XxxParams struct, already
// resolved and validated by cordkit.New.
type TypeSheet struct {
	// Logger receives the parts' logs. Nil discards them.
	Logger *slog.Logger

	// Codec encodes and decodes JSON for REST helpers and the gateway.
	Codec Codec
	// HTTPDoer sends the HTTP requests of the HTTPClient. Nil means a
	// *http.Client with sensible timeouts.
	HTTPDoer HTTPDoer
	// NewBucket builds the RateLimiter's buckets.
	NewBucket BucketFunc
	// NewRateLimiter builds the REST rate limiter.
	NewRateLimiter func(RateLimiterParams) (RateLimiter, error)
	// NewHTTPClient builds the REST client.
	NewHTTPClient func(HTTPClientParams) (HTTPClient, error)

	// Dialer opens gateway connections.
	Dialer Dialer
	// NewInflater builds one Inflater per shard.
	NewInflater InflaterFunc
	// NewKeepAlive builds one KeepAlive per shard.
	NewKeepAlive func() KeepAlive
	// NewSendLimiter builds one SendLimiter per shard.
	NewSendLimiter func() SendLimiter
	// NewIdentifyLimiter builds the identify limiter shared by every shard,
	// once max_concurrency is known.
	NewIdentifyLimiter func(IdentifyLimiterParams) (IdentifyLimiter, error)
	// NewDispatcher builds the event and raw dispatchers.
	NewDispatcher func() Dispatcher
	// SessionStore keeps sessions for resuming. Nil means in memory.
	SessionStore SessionStore
	// NewShard builds one shard.
	NewShard func(ShardParams) (Shard, error)
	// NewGateway builds the shard manager.
	NewGateway func(GatewayParams) (Gateway, error)
}

// RateLimiterParams is what a RateLimiter is built from.
type RateLimiterParams struct {
	// NewBucket builds one bucket per bucket key.
	NewBucket BucketFunc
	// GlobalLimit is the number of requests allowed per second across all
	// routes. Zero means Discord's default, 50; set it higher only if
	// Discord raised it for the bot. Negative disables the global limit
	// (for a proxy that enforces it).
	GlobalLimit int
	// Logger receives the limiter's logs.
	Logger *slog.Logger
}

// HTTPClientParams is what an HTTPClient is built from.
type HTTPClientParams struct {
	// Token authenticates every request.
	Token Token
	// BaseURL is the API base including the version, such as
	// "https://discord.com/api/v10". The token is sent to this host only.
	BaseURL string
	// UserAgent is the User-Agent header: "DiscordBot (url, version)".
	UserAgent string
	// Doer sends the HTTP requests.
	Doer HTTPDoer
	// RateLimiter paces the requests; never nil.
	RateLimiter RateLimiter
	// MaxRetries is how many times a 5xx or network failure is retried
	// before the request fails with ErrRetriesExhausted. Zero means the
	// implementation's default (5 for the reference); negative disables
	// every retry, 429s included. 429s do not use up MaxRetries, but an
	// implementation bounds them too.
	MaxRetries int
	// InvalidRequestBudget is how many invalid responses (401, 403,
	// non-shared 429) are allowed per 10 minutes before requests fail fast.
	// Zero means the implementation's default, well under Discord's
	// 10,000.
	InvalidRequestBudget int
	// Logger receives the client's logs.
	Logger *slog.Logger
}

// IdentifyLimiterParams is what an IdentifyLimiter is built from.
type IdentifyLimiterParams struct {
	// MaxConcurrency is the number of identify buckets.
	MaxConcurrency int
	// SessionStartLimit is the daily budget from /gateway/bot; a zero
	// Total means unknown.
	SessionStartLimit SessionStartLimit
}

// ShardParams is what a Shard is built from.
type ShardParams struct {
	// ID and Count are the shard's [shard_id, num_shards].
	ID, Count int
	// Token is sent in IDENTIFY and RESUME.
	Token Token
	// URL is the gateway URL without query.
	URL string
	// Version is the gateway version, 10.
	Version int
	// Intents is the IDENTIFY intents bitfield.
	Intents Intents
	// Compression is the compression mode.
	Compression Compression
	// LargeThreshold is IDENTIFY's large_threshold (50-250).
	LargeThreshold int
	// Presence is IDENTIFY's initial presence, or nil.
	Presence any
	// HandshakeTimeout bounds each dial plus HELLO.
	HandshakeTimeout time.Duration

	Dialer          Dialer
	Codec           Codec
	NewInflater     InflaterFunc
	KeepAlive       KeepAlive
	SendLimiter     SendLimiter
	IdentifyLimiter IdentifyLimiter
	Sessions        SessionStore
	// Events receives dispatches by name; Raw receives every payload by
	// opcode name.
	Events, Raw Dispatcher
	// ShouldReconnect, when not nil, is asked before every reconnect; false
	// ends Run with err.
	ShouldReconnect func(shardID int, err error) bool
	Logger          *slog.Logger
}

// GatewayParams is what a Gateway is built from.
type GatewayParams struct {
	// Shard holds the settings every shard shares; ID and Count are set
	// per shard, and URL is filled from /gateway/bot when empty.
	Shard ShardParams
	// ShardCount is the total shard count; 0 asks /gateway/bot.
	ShardCount int
	// ShardIDs is the subset of shards to run; nil runs all.
	ShardIDs []int
	// MaxConcurrency overrides /gateway/bot's max_concurrency when > 0.
	MaxConcurrency int
	// HTTPClient fetches /gateway/bot.
	HTTPClient HTTPClient
	// NewShard builds each shard.
	NewShard func(ShardParams) (Shard, error)
	// NewKeepAlive, NewSendLimiter and NewIdentifyLimiter build the
	// per-shard and shared parts.
	NewKeepAlive       func() KeepAlive
	NewSendLimiter     func() SendLimiter
	NewIdentifyLimiter func(IdentifyLimiterParams) (IdentifyLimiter, error)
}
