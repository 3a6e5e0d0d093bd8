// Package protocols defines the small interfaces that make up cordkit, one
// per strategy, and the value types and errors they share.
//
// An implementation of any interface here can be swapped into a
// [github.com/cordkit/cordkit.TypeSheet] without touching the others. The
// reference implementations live in impl/default (package reference); the
// conformance package holds suites that any implementation runs from its own
// tests.
//
// This package imports only the standard library, so that an implementation
// never needs to import another one.
//
// # Data flow
//
//	REST:    caller -> HTTPClient.Do -> RateLimiter.Acquire (global slot, then Bucket)
//	         -> HTTPDoer -> RateLimitInfo -> Permit.Complete / Permit.Cancel
//	Gateway: Gateway -> IdentifyLimiter.Wait -> Shard -> Dialer.Dial -> Conn
//	         -> Inflater -> Codec.DecodeEnvelope -> Dispatcher -> handlers
//	         (KeepAlive beats, SendLimiter paces, SessionStore remembers)
//
// # Concurrency
//
// Every interface documents whether it must be safe for concurrent use. Byte
// slices passed into or returned from a method are owned as each method's
// doc says; where nothing is said, the callee must not retain the slice after
// returning.
//
// # Errors
//
// Conditions a caller branches on are sentinels (ErrXxx) or types (XxxError)
// in this package; test them with [errors.Is] and [errors.As], never by
// string. Cancellation always satisfies errors.Is with the context's error.
//
// # Evolution
//
// Before v1 these interfaces may still change. After v1 no method is added
// to an interface here; new capabilities arrive as small optional
// interfaces found by type assertion.
package protocols
