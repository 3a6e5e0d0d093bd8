package main

import (
	"fmt"
	"log/slog"
	"os"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cordkit/cordkit"
	reference "github.com/cordkit/cordkit/impl/default"
	cordredis "github.com/cordkit/cordkit/impl/redis"
	"github.com/cordkit/cordkit/protocols"
)

// shardsForProcess returns the shards process index of processes runs.
func shardsForProcess(index, processes, shards, maxConcurrency int) ([]int, error) {
	return cordkit.ShardsForProcess(index, processes, shards, maxConcurrency)
}

// typeSheet returns base with the Redis rate limiter, identify limiter and
// session store set, a description of the parts for the start report, and
// a func that closes the Redis client. [InMemoryEnv] swaps reference
// parts back in.
func typeSheet(addr, namespace string, logger *slog.Logger, base cordkit.TypeSheet) (cordkit.TypeSheet, string, func(), error) {
	mode := inMemory()
	switch mode {
	case "", "limiters":
	case "all":
		return base, "in-memory limiters and session store (" + InMemoryEnv + "=all)", func() {}, nil
	default:
		return base, "", nil, fmt.Errorf("%s=%q: want limiters or all", InMemoryEnv, mode)
	}
	client := goredis.NewClient(&goredis.Options{Addr: addr})
	opts := cordredis.Options{Client: client, Namespace: namespace, Logger: logger}
	sheet, err := opts.TypeSheet(base)
	if err != nil {
		_ = client.Close()
		return base, "", nil, err
	}
	parts := "Redis limiters and session store at " + addr
	if mode == "limiters" {
		sheet.NewRateLimiter, sheet.NewIdentifyLimiter = base.NewRateLimiter, base.NewIdentifyLimiter
		parts = "in-memory limiters (" + InMemoryEnv + "=limiters), Redis session store at " + addr
	}
	return sheet, parts, func() { _ = client.Close() }, nil
}

// benchLimiter returns the rate limiter a bench row measures, a func
// reporting whether a Redis limiter ever fell back to local limits, and a
// func closing it.
func benchLimiter(kind, addr, namespace string) (protocols.RateLimiter, func() bool, func(), error) {
	p := protocols.RateLimiterParams{
		NewBucket:   reference.NewBucket,
		GlobalLimit: benchGlobalLimit,
		Logger:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	never := func() bool { return false }
	switch kind {
	case "memory":
		l, err := reference.NewRateLimiter(p)
		if err != nil {
			return nil, nil, nil, err
		}
		return l, never, func() { _ = l.Close() }, nil
	case "redis":
		client := goredis.NewClient(&goredis.Options{Addr: addr})
		l, err := cordredis.Options{Client: client, Namespace: namespace}.NewRateLimiter(p)
		if err != nil {
			_ = client.Close()
			return nil, nil, nil, err
		}
		fellBack := never
		if rl, ok := l.(*cordredis.RateLimiter); ok {
			fellBack = func() bool { return !rl.Status().Since.IsZero() }
		}
		return l, fellBack, func() { _ = l.Close(); _ = client.Close() }, nil
	}
	return nil, nil, nil, fmt.Errorf("-bench-limiter %q: want redis or memory", kind)
}
