package redis

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// ErrNoClient is returned by the constructors when [Options.Client] is nil.
var ErrNoClient = errors.New("redis: Options.Client is nil")

// ErrNoNamespace is returned by the constructors when [Options.Namespace]
// is empty.
var ErrNoNamespace = errors.New("redis: Options.Namespace is empty (use the bot's application id)")

// Options is what every part of this package is built from.
type Options struct {
	// Client reaches Redis: a *goredis.Client, a ring or a cluster
	// client. Required. The parts never close it.
	Client goredis.UniversalClient
	// Namespace separates bots sharing one Redis: use the bot's
	// application id (protocols.Token.ID gives it). Required. Every key
	// is "cordkit:{Namespace}:...": the braces keep one bot's keys in one
	// cluster slot, so the Lua scripts may touch several of them.
	Namespace string
	// Logger receives the parts' logs. Nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock the Lua scripts are given. Nil means Redis's own
	// clock (TIME), which every process sharing the Redis agrees on. Set
	// it (to time.Now) only where all processes' clocks agree, or in
	// tests whose clock is fake (testing/synctest).
	Now func() time.Time
	// Timeout bounds each call to Redis; past it the call counts as a
	// Redis failure. Zero means DefaultTimeout.
	Timeout time.Duration
	// RateLimiter holds the settings of [Options.NewRateLimiter] that
	// the other parts do not share. Nil means the defaults of
	// [RateLimiterOptions].
	RateLimiter *RateLimiterOptions
}

// DefaultTimeout is [Options.Timeout] when zero.
const DefaultTimeout = 250 * time.Millisecond

func (o Options) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return DefaultTimeout
}

func (o Options) validate() error {
	if o.Client == nil {
		return ErrNoClient
	}
	if o.Namespace == "" {
		return ErrNoNamespace
	}
	if strings.ContainsAny(o.Namespace, "{}") {
		return fmt.Errorf("redis: Options.Namespace %q contains a brace", o.Namespace)
	}
	return nil
}

func (o Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.Default()
}

// key returns the namespaced key "cordkit:{ns}:part1:part2...".
func (o Options) key(parts ...string) string {
	var b strings.Builder
	b.WriteString("cordkit:{")
	b.WriteString(o.Namespace)
	b.WriteString("}")
	for _, p := range parts {
		b.WriteByte(':')
		b.WriteString(p)
	}
	return b.String()
}
