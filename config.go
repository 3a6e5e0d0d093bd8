package cordkit

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/cordkit/cordkit/protocols"
)

// Version is cordkit's version, sent in the User-Agent.
const Version = "0.1.0"

// GatewayVersion is the gateway protocol version the shards speak.
const GatewayVersion = 10

// Defaults of [Config].
const (
	DefaultAPIBase        = "https://discord.com/api/v10"
	DefaultUserAgent      = "DiscordBot (https://github.com/cordkit/cordkit, " + Version + ")"
	DefaultGlobalLimit    = 50
	DefaultLargeThreshold = 50
)

// Token is a Discord credential that never prints itself; see
// [protocols.Token].
type Token = protocols.Token

// BotToken returns a bot token; a leading "Bot " is accepted and stripped.
func BotToken(s string) Token { return protocols.BotToken(s) }

// Config is what a [State] needs besides its parts. The zero value of each
// field means its documented default; only Token is required.
type Config struct {
	// Token authenticates REST requests and the gateway. Required.
	Token Token
	// Intents is the gateway intents bitfield.
	Intents protocols.Intents

	// APIBase is the REST base URL including the version. Defaults to
	// DefaultAPIBase; point it at the mock or at a proxy such as
	// nirn-proxy (with GlobalLimit < 0). The token is sent to this host
	// only.
	APIBase string
	// UserAgent defaults to DefaultUserAgent. Discord requires it to start
	// with "DiscordBot (url, version)".
	UserAgent string
	// GlobalLimit is the bot's global REST limit per second. Defaults to
	// 50; set it higher only if Discord raised it for the bot; negative
	// disables the global limiter (for a proxy that enforces it).
	GlobalLimit int
	// MaxRetries bounds the retries of 429, 5xx and network failures.
	// Defaults to 5; negative disables retries.
	MaxRetries int
	// InvalidRequestBudget is how many 401, 403 and non-shared 429
	// responses are tolerated per 10 minutes before requests fail fast.
	// Defaults to the HTTP client's default, well under Discord's 10,000.
	InvalidRequestBudget int

	// GatewayURL overrides the URL from /gateway/bot.
	GatewayURL string
	// ShardCount is the total number of shards; 0 asks /gateway/bot.
	ShardCount int
	// ShardIDs is the subset of shards this process runs; nil runs all.
	// It needs an explicit ShardCount.
	ShardIDs []int
	// MaxConcurrency overrides /gateway/bot's max_concurrency when > 0.
	MaxConcurrency int
	// Compression is the gateway compression mode. The TypeSheet's
	// NewInflater must support it: the reference inflater lacks
	// protocols.CompressZstdStream (impl/fast's has it), and New returns a
	// *ConfigError wrapping protocols.ErrNotSupported for a mode the
	// inflater lacks.
	Compression protocols.Compression
	// LargeThreshold is IDENTIFY's large_threshold, 50 to 250. Defaults to
	// 50.
	LargeThreshold int
}

// Errors of [New]. A *ConfigError wraps one of them, or a protocols
// sentinel (ErrInvalidToken, ErrInvalidIntents, ErrInvalidShard).
var (
	// ErrMissingToken means Config.Token is empty.
	ErrMissingToken = errors.New("cordkit: missing token")
	// ErrInvalidConfig matches every *ConfigError.
	ErrInvalidConfig = errors.New("cordkit: invalid config")
)

// ConfigError reports one invalid Config field. It never contains the token.
type ConfigError struct {
	// Field is the Config field, such as "Token" or "ShardIDs".
	Field string
	// Err is the reason.
	Err error
}

// Error describes the failure; it never contains the token.
func (e *ConfigError) Error() string { return "cordkit: config " + e.Field + ": " + e.Err.Error() }

// Unwrap returns the reason.
func (e *ConfigError) Unwrap() error { return e.Err }

// Is reports whether target is ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// withDefaults validates c and returns it with defaults filled in.
func (c Config) withDefaults() (Config, error) {
	if c.Token.IsZero() {
		return c, &ConfigError{"Token", ErrMissingToken}
	}
	if err := c.Token.Validate(); err != nil {
		return c, &ConfigError{"Token", err}
	}
	if err := c.Intents.Validate(); err != nil {
		return c, &ConfigError{"Intents", err}
	}
	if c.APIBase == "" {
		c.APIBase = DefaultAPIBase
	}
	if u, err := url.Parse(c.APIBase); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return c, &ConfigError{"APIBase", fmt.Errorf("%q is not an absolute http(s) URL", c.APIBase)}
	}
	if c.UserAgent == "" {
		c.UserAgent = DefaultUserAgent
	}
	if c.GlobalLimit == 0 {
		c.GlobalLimit = DefaultGlobalLimit
	}
	if c.LargeThreshold == 0 {
		c.LargeThreshold = DefaultLargeThreshold
	}
	if c.LargeThreshold < 50 || c.LargeThreshold > 250 {
		return c, &ConfigError{"LargeThreshold", fmt.Errorf("%d is outside 50-250", c.LargeThreshold)}
	}
	if c.MaxConcurrency < 0 {
		return c, &ConfigError{"MaxConcurrency", fmt.Errorf("%w: max concurrency %d", protocols.ErrInvalidShard, c.MaxConcurrency)}
	}
	if err := validShards(c.ShardCount, c.ShardIDs); err != nil {
		return c, &ConfigError{"ShardIDs", err}
	}
	if c.ShardIDs != nil {
		c.ShardIDs = append([]int(nil), c.ShardIDs...)
	}
	switch c.Compression {
	case protocols.CompressNone, protocols.CompressZlibStream, protocols.CompressZlibPayload, protocols.CompressZstdStream:
	default:
		return c, &ConfigError{"Compression", fmt.Errorf("unknown mode %d", int(c.Compression))}
	}
	return c, nil
}

func validShards(count int, ids []int) error {
	if count < 0 {
		return fmt.Errorf("%w: shard count %d", protocols.ErrInvalidShard, count)
	}
	if ids == nil {
		return nil
	}
	if count == 0 {
		return fmt.Errorf("%w: shard IDs need an explicit shard count", protocols.ErrInvalidShard)
	}
	if len(ids) == 0 {
		return fmt.Errorf("%w: shard IDs is empty", protocols.ErrInvalidShard)
	}
	seen := make(map[int]bool, len(ids))
	for _, id := range ids {
		if id < 0 || id >= count {
			return fmt.Errorf("%w: shard %d is outside 0-%d", protocols.ErrInvalidShard, id, count-1)
		}
		if seen[id] {
			return fmt.Errorf("%w: shard %d listed twice", protocols.ErrInvalidShard, id)
		}
		seen[id] = true
	}
	return nil
}
