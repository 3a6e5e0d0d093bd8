// Package reference is the reference implementation of the cordkit
// protocols: readable first, and the implementation the conformance suite
// is calibrated on. It lives in impl/default; the package is named
// reference because default is a Go keyword.
//
// # REST
//
//   - [NewBucket]: one Discord rate-limit bucket, one request in flight.
//   - [NewRateLimiter]: maps routes to buckets, learns shared bucket hashes,
//     moves waiting requests when a hash is learned, enforces the global
//     limit and honours every 429 scope.
//   - [NewHTTPClient]: a net/http client that authenticates, waits on the
//     limiter, retries 429s, 5xx and network errors, and returns typed
//     errors.
//   - [Codec]: encoding/json, shared with the gateway.
//
// # Gateway
//
//   - [NewInflater]: zlib-stream with one inflate context per connection
//     (a message may span frames), and per-payload zlib.
//   - [NewDispatcher]: handlers by event name, opcode name and AnyEvent,
//     run synchronously on the goroutine that calls Dispatch; WaitFor.
//   - [NewKeepAlive]: the heartbeater: jittered first beat, BeatNow for a
//     server op 1, zombie detection.
//   - [NewIdentifyLimiter]: max_concurrency buckets, one identify per
//     bucket per 5 s, and the daily session-start budget.
//   - [NewSendLimiter]: 120 payloads per 60 s, with room kept for
//     heartbeats.
//   - [NewSessionStore], [NewFileSessionStore]: sessions for resuming,
//     in memory or in a file that survives a restart.
//   - [Dialer]: websocket connections on github.com/gobwas/ws.
//   - [NewShard]: one gateway session composed of the parts above:
//     HELLO, IDENTIFY or RESUME, heartbeats, a reading goroutine that
//     handles ACKs apart from a dispatching goroutine that runs handlers,
//     and Discord's reconnect rules (zombie, op 7, op 9, close codes,
//     resume_gateway_url, backoff). [UpdatePresence], [UpdateVoiceState]
//     and [RequestGuildMembers] send the common commands.
//   - [NewGateway]: the shard manager: /gateway/bot, one identify limiter
//     for every shard, shards started bucket by bucket, automatic
//     rescaling on 4011, and Rescale without downtime.
//
// Settings that the protocols' Params structs do not carry live in
// [RateLimiterOptions], [HTTPClientOptions], [ShardOptions] and
// [GatewayOptions]; their New methods have the constructor shape a
// TypeSheet field wants:
//
//	ts.NewRateLimiter = reference.RateLimiterOptions{CloudflarePause: time.Hour}.New
//
// The leaf parts are safe for concurrent use where their protocol says so
// and start no goroutine: they wait with channels and timers in the
// caller's goroutine, so that testing/synctest can drive them and nothing
// outlives Close. The shard and the gateway do start goroutines (a shard's
// Run reads on its own goroutine and starts a dispatching and a
// heartbeating one; the gateway runs each shard on one); each ends before
// Run, or the gateway's Close, returns.
package reference
