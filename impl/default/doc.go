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
//     run synchronously on the reading goroutine; WaitFor.
//   - [NewKeepAlive]: the heartbeater: jittered first beat, BeatNow for a
//     server op 1, zombie detection.
//   - [NewIdentifyLimiter]: max_concurrency buckets, one identify per
//     bucket per 5 s, and the daily session-start budget.
//   - [NewSendLimiter]: 120 payloads per 60 s, with room kept for
//     heartbeats.
//   - [NewSessionStore], [NewFileSessionStore]: sessions for resuming,
//     in memory or in a file that survives a restart.
//   - [Dialer]: websocket connections on github.com/gobwas/ws.
//
// Settings that the protocols' Params structs do not carry live in
// [RateLimiterOptions] and [HTTPClientOptions]; their New methods have the
// constructor shape a TypeSheet field wants:
//
//	ts.NewRateLimiter = reference.RateLimiterOptions{CloudflarePause: time.Hour}.New
//
// The parts are safe for concurrent use where their protocol says so and
// start no goroutine: they
// wait with channels and timers in the caller's goroutine, so that
// testing/synctest can drive them and nothing outlives Close.
package reference
