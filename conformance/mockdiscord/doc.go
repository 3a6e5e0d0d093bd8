// Package mockdiscord is a mock Discord REST API for tests: a second,
// independent implementation of the parts of Discord a library's REST
// client and rate limiter talk to, strict where Discord is strict, with
// scriptable faults and a record of every request.
//
// It imports only the standard library. A client that passes against it
// should work against Discord, and other Go libraries (discordgo, disgo,
// arikawa) can be pointed at it.
//
// # Serving
//
// [New] builds a [Server] and starts nothing. Serve it one of three ways:
//
//   - [Server.Start] listens on loopback TCP; [Server.URL] and
//     [Server.APIBase] ("http://127.0.0.1:PORT/api/v10") give the address.
//   - [Server.Client] returns an *http.Client that reaches the mock in
//     memory (net.Pipe connections to an http.Server on a channel-based
//     listener), whatever the URL's host and scheme. It works inside a
//     testing/synctest bubble, so rate-limit timing can be tested exactly
//     with fake time; create the Server inside the bubble.
//   - [Server.Handler] for your own server.
//
// [Server.Close] ends every goroutine the Server started before returning.
//
// # The fake world
//
// Options.Guilds guilds (default 3), each with Options.ChannelsPerGuild
// text channels (default 2), one incoming webhook per channel, and the bot
// user (ID from the token: 111111111111111111 for [DefaultToken], username
// "cordkit-mock"). IDs are snowflakes from a deterministic generator:
// they encode 2024-01-01 plus the time elapsed since New, so they are the
// same on every run inside a synctest bubble. [Endpoints] lists the routes:
//
//	GET    /gateway                       no auth; {"url": "ws://HOST/gateway"}
//	GET    /gateway/bot                   url, shards, session_start_limit
//	GET    /users/@me                     the bot user
//	GET    /channels/{channel_id}
//	GET    /channels/{channel_id}/messages            limit (1-100, 50), before, after, around; newest first
//	POST   /channels/{channel_id}/messages            200 with the message
//	GET    /channels/{channel_id}/messages/{message_id}
//	PATCH  /channels/{channel_id}/messages/{message_id}  the bot's own messages only (else 403 50005)
//	DELETE /channels/{channel_id}/messages/{message_id}  204
//	POST   /channels/{channel_id}/typing              204
//	PUT    /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me        204
//	DELETE /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me        204
//	DELETE /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/{user_id}  204
//	GET    /channels/{channel_id}/messages/{message_id}/reactions/{emoji}            users
//	GET    /guilds/{guild_id}                         ?with_counts
//	GET    /guilds/{guild_id}/channels
//	POST   /interactions/{interaction_id}/{interaction_token}/callback  no auth, exempt from the global limit; 204
//	POST   /webhooks/{webhook_id}/{webhook_token}     no auth; 204, or the message with ?wait=true
//
// POST /webhooks/{application_id}/{token}, with the bot's ID as
// application ID, is an interaction follow-up: any token is accepted, it is
// exempt from the global limit, and the message lands in the first channel.
//
// # Strictness
//
// Each API request goes through these checks, in order; the first that
// fails answers:
//
//  1. An active ban (see below): 429, Retry-After only.
//  2. User-Agent must start with "DiscordBot", else 403 code 40333 (turn
//     off with Options.AllowAnyUserAgent).
//  3. The path must be /api/v10/... or /api/v9/...; other versions and
//     unversioned /api/... paths get 400 code 50041; other paths 404.
//  4. Unknown route: 404 {"message": "404: Not Found", "code": 0}; known
//     path, wrong method: 405 {"message": "405: Method Not Allowed", "code": 0}.
//  5. Authorization must be exactly "Bot <token>": 401 {"message": "401:
//     Unauthorized", "code": 0} otherwise. Webhook-with-token routes, the
//     interaction callback and GET /gateway need none, but a wrong one
//     still gets 401.
//  6. Injected faults ([Server.Inject]).
//  7. The global limit, then the route's per-route limit (429).
//  8. X-Audit-Log-Reason (percent-decoded) above 512 characters: 400 50035.
//  9. The route: a body needs Content-Type application/json,
//     application/x-www-form-urlencoded or multipart/form-data (else 400
//     50035); invalid JSON is 400 50109; an empty message 400 50006;
//     content above 2000 characters 400 50035 with nested errors
//     {"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", ...}]}};
//     an unknown channel, guild, message or webhook gets 404 with code
//     10003, 10004, 10008 or 10015. Multipart bodies carry files[n] parts
//     and an optional payload_json part; the files become the message's
//     attachments.
//
// Every response has Via: 1.1 google (except Cloudflare-shaped ones) and a
// Date header; every response with a body has Content-Type.
//
// # Rate limits
//
// Per-route limits come from [BucketSpec]s ([DefaultBuckets] unless
// Options.Buckets is set). A limited route sends X-RateLimit-Limit,
// -Remaining, -Reset (Unix seconds, three decimals), -Reset-After (seconds,
// three decimals, rounded up to the millisecond) and -Bucket on every
// response past the limiter. Windows are fixed: a window opens at the first
// request after the previous one ended and admits Limit requests; the next
// request is admitted exactly Window after it opened. Past the limit the
// mock answers 429 with those headers, X-RateLimit-Scope: user, an integer
// Retry-After (rounded up), and {"message": "You are being rate limited.",
// "retry_after": 1.234, "global": false}.
//
// The global limit allows Options.GlobalLimit (50) authenticated requests
// to non-exempt routes in any sliding second; past it the answer is a 429
// with only Retry-After, X-RateLimit-Global: true and X-RateLimit-Scope:
// global, and "global": true in the body. A request answered with a 429
// consumes no quota, per-route or global (Options.GlobalCountsRejected
// changes that for the global window).
//
// Invalid responses (401, 403, 429 other than shared scope) are counted in
// a sliding Options.InvalidRequestWindow; the one that goes past
// Options.InvalidRequestLimit starts a ban of Options.BanDuration during
// which every API request gets 429 with only Retry-After and {"code": 0,
// "message": "You are being blocked from accessing our API temporarily
// ..."} (or Cloudflare's "error code: 1015" with Options.BanStyle).
//
// [Server.Observations] records every request; [Server.WindowViolations]
// turns them into the list of 429s and bans a well-behaved client never
// sees.
//
// # Faults
//
// [Server.Inject] queues [Fault]s: shared429, server_error, cloudflare429,
// global429 replace a response; slow delays one; change_hash makes an
// endpoint advertise a new bucket hash from then on.
//
// # Control API
//
// Under /_mock/, with no authentication, not observed and not limited:
//
//	POST /_mock/reset                   Reset: 204
//	GET  /_mock/observations            Observations as JSON
//	POST /_mock/faults                  {"kind", "endpoint", "count", "status", "retry_after_ms", "new_hash", "delay_ms"}: 204, or 400
//	GET  /_mock/world                   {"bot", "guilds": [{"id", "name", "channels": [{"id", "name"}]}], "webhooks"}
//	GET  /_mock/messages?channel_id=ID  the channel's messages, oldest first
//	POST /_mock/messages                {"channel_id", "content", "author", "author_id"}: a message from a simulated user
//	GET  /_mock/interactions            accepted interaction callbacks
//
// Changes to the world (messages created, edited, deleted, reactions,
// typing) are delivered as [Event]s to [Server.Subscribe]rs, in order; the
// gateway half of the mock dispatches them.
//
// # Unverified behaviour
//
// Where Discord's docs are silent the mock follows issue reports, and lets
// you choose:
//
//   - the ban response's shape (Options.BanStyle) and length
//     (Options.BanDuration);
//   - Retry-After rounding (Options.FractionalRetryAfter);
//   - a "code" in shared 429 bodies (Options.SharedRateLimitCode);
//   - the 401 body (Options.UnauthorizedCode);
//   - whether rejected requests take global quota
//     (Options.GlobalCountsRejected);
//   - how routes are keyed and grouped, including the interaction callback
//     and age-dependent message-delete buckets ([BucketSpec.Group],
//     [BucketSpec.PerResource], and the change_hash fault).
package mockdiscord
