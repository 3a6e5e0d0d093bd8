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
// Settings that the protocols' Params structs do not carry live in
// [RateLimiterOptions] and [HTTPClientOptions]; their New methods have the
// constructor shape a TypeSheet field wants:
//
//	ts.NewRateLimiter = reference.RateLimiterOptions{CloudflarePause: time.Hour}.New
//
// The REST types are safe for concurrent use and start no goroutine: they
// wait with channels and timers in the caller's goroutine, so that
// testing/synctest can drive them and nothing outlives Close.
package reference
