// Package cordkit is a kit for Discord's low-level API built from swappable
// parts: REST with rate limits, and the gateway with sharding, heartbeats,
// identify queues and compression.
//
// Every strategy is a small interface in package protocols. A [TypeSheet]
// names the implementation of each (nil fields mean the reference one in
// impl/default), and [New] builds a [State] from a [Config] and a TypeSheet,
// wiring each part to the parts it needs.
//
//	state, err := cordkit.New(cordkit.Config{Token: cordkit.BotToken(token)}, cordkit.TypeSheet{})
//	if err != nil { ... }
//	defer state.Close()
//	msg, err := state.REST().CreateMessage(ctx, channelID, cordkit.MessageCreate{Content: "pong"})
//
// # Data flow
//
//	REST:    REST helpers -> HTTPClient.Do -> RateLimiter.Acquire (global token, Bucket)
//	         -> HTTPDoer -> RateLimitInfo -> Permit.Complete or Permit.Cancel
//	Gateway: Gateway -> IdentifyLimiter.Wait -> Shard -> Dialer -> Conn -> Inflater
//	         -> Codec.DecodeEnvelope -> Dispatcher -> handlers
//
// # Implementing a protocol
//
// Implement the interface from package protocols, set the matching
// TypeSheet field, and run the conformance suite from your own tests:
//
//	func TestConformance(t *testing.T) {
//		conformance.TestBucket(t, func(t *testing.T) protocols.Bucket { return mybucket.New() })
//	}
//
// The suite runs against conformance/mockdiscord, a strict mock of Discord.
// A decorator is the cheapest implementation: wrap the reference part and
// add logging or metrics around it.
//
// # Errors
//
// [New] returns a *ConfigError (matching [ErrInvalidConfig]) for bad
// configuration. Parts return the sentinels and types of package protocols:
// test with errors.Is and errors.As. The token never appears in an error, a
// log line or the printed form of any value.
package cordkit
