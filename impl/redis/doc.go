// Package redis implements the limits and sessions that shards in many
// processes must share, on Redis through github.com/redis/go-redis/v9:
// a RateLimiter (bucket state and the global per-bot limit), an
// IdentifyLimiter (max_concurrency buckets and the daily session-start
// budget) and a SessionStore.
//
// Every part is built from [Options]: a go-redis client and a namespace,
// the bot's application id, so several bots can share one Redis. State in
// Redis changes only through Lua scripts, atomically, and every key has a
// TTL, so nothing leaks.
package redis
