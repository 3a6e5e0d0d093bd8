// Package conformance provides tests that any implementation of the
// protocols interfaces can run, in the style of testing/fstest.TestFS and
// testing/slogtest.Run: an implementation calls the suite from its own
// tests, and the suite holds it to Discord's real behaviour.
//
// This file set covers REST: [TestBucket], [TestRateLimiter] and
// [TestHTTPClient], with [BenchmarkBucket], [BenchmarkRateLimiter] and
// [BenchmarkHTTPClient]. The HTTP suite runs against
// [github.com/cordkit/cordkit/conformance/mockdiscord], a strict mock of
// Discord.
//
// The gateway's leaf protocols have suites too: [TestInflater],
// [TestCodec], [TestDispatcher], [TestKeepAlive], [TestIdentifyLimiter],
// [TestSendLimiter] and [TestSessionStore], with [BenchmarkInflater] and
// [BenchmarkCodec]. The Inflater and Codec checks need no clock, so
// [CheckInflater] and [CheckCodec] run them without a *testing.T, in the
// style of testing/fstest.TestFS; they suit examples and fuzz targets.
//
// The shard and the shard manager have suites that run against the mock's
// gateway: [TestShard] and [TestGateway]. They hand the implementation a
// websocket [protocols.Dialer] of their own (github.com/gobwas/ws over
// [mockdiscord.Server.NetDial], in memory), recording dispatchers, an
// in-memory session store and, for /gateway/bot, a minimal
// [protocols.HTTPClient]; the factory supplies the other parts (keep-alive,
// send and identify limiters, inflater, codec), its own or the reference
// ones. They hold the implementation to Discord's gateway rules and to the
// bugs other libraries shipped: heartbeats, zombie connections, resuming
// where READY says, close codes, op 7 and op 9, identify spacing, the send
// limit, compression, exactly-once delivery across reconnects, sharding
// required, rescaling.
//
// [Run] runs the suite of every part a [protocols.TypeSheet] sets, so an
// implementation package that offers a partial TypeSheet checks it in one
// call, in the style of testing/slogtest.Run.
//
// # Adversarial input
//
// The frames the Inflater suite feeds come from helpers that an
// implementation can reuse in its own tests and fuzz targets, in the style
// of testing/iotest: [ZlibStream] compresses messages as Discord's
// zlib-stream transport does (one zlib context, a sync flush per message),
// [ZlibPayloads] as payload compression does, [SplitFrames] and
// [OneByteFrames] cut the frames up, and [InflateFrames] feeds them to an
// Inflater:
//
//	frames := conformance.SplitFrames(conformance.ZlibStream(msgs), rnd)
//	got, err := conformance.InflateFrames(myInflater, frames)
//
// A capability an implementation lacks (a compression mode, the optional
// [protocols.AppendMarshaler]) makes the subtests that need it skip, never
// pass: an InflaterFunc that returns [protocols.ErrNotSupported] for a
// mode skips that mode's subtests.
//
// # Running a suite
//
// An implementation adds one small file to its package:
//
//	// conformance_test.go
//	func TestConformance(t *testing.T) {
//		conformance.TestBucket(t, func(t *testing.T) protocols.Bucket { return mybucket.New() })
//	}
//
// and runs it with the race detector and more than once, since concurrency
// bugs show up only sometimes:
//
//	go test -race -count=5 -run TestConformance ./...
//
// Subtests whose names start with ConcurrentSafe exist for the race
// detector; run them with a higher -count in CI.
//
// # Rules
//
// Every subtest checks one property, named by a stable CamelCase name
// (UnknownLimitAdmitsOneAtATime, Global429PausesEveryRoute, ...), and
// quotes the contract sentence it checks from the doc comments of package
// protocols. A failure reads like
//
//	Bucket.Acquire: admitted at +1s, want not before +1.5s; rule: "ResetAfter is X-RateLimit-Reset-After, to the millisecond."
//
// Errors are checked with [errors.Is] and [errors.As] against the
// sentinels and types of package protocols and the context errors, never
// by their text.
//
// # Time
//
// Every subtest runs in its own [testing/synctest] bubble, so the suites
// check timing exactly and fast: hours of Discord rate limits take
// milliseconds. The factory is called inside the bubble, so an
// implementation under test must
//
//   - wait with channels, timers and tickers of package time (never with
//     real sockets, or a sync.Mutex held across a wait), and
//   - stop every goroutine it starts when it is closed.
//
// Admissions may come up to 100 ms after the instant the rules allow (a
// safety margin), never before it. The throughput subtests allow 25% over
// the theoretical minimum; each says why in its failure message.
//
// The HTTP suite serves the mock in memory ([mockdiscord.Server.Client])
// and hands it to the factory as HTTPClientParams.Doer; the factory must
// send every request through that Doer.
//
// # Exclusions
//
// An implementation that deliberately deviates from a rule lists the
// subtest in [Options.Exclude] with its reason, and calls the suite as a
// method of [Options]:
//
//	conformance.Options{Exclude: map[string]string{
//		"InFlightCountsAgainstRemaining": "admits optimistically; relies on 429 retries",
//	}}.TestBucket(t, newBucket)
//
// An excluded subtest is skipped with "excluded: <reason>", so it shows in
// go test -v and is never passed silently. A name that is no subtest of
// any suite fails the test.
//
// # Benchmarks
//
// The benchmarks run the same workload against every implementation, so
// that benchstat can compare them:
//
//	func BenchmarkConformance(b *testing.B) {
//		conformance.BenchmarkBucket(b, func(b *testing.B) protocols.Bucket { return mybucket.New() })
//	}
package conformance
