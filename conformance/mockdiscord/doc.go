// Package mockdiscord is a mock Discord for tests, REST API and gateway: a
// second, independent implementation of the parts of Discord a library's
// REST client, rate limiter and gateway client talk to, strict where
// Discord is strict, with scriptable faults and a record of everything it
// saw.
//
// It imports only the standard library and github.com/gobwas/ws (for the
// websocket handshake and frame headers). A client that passes against it
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
// same on every run inside a synctest bubble. Guild IDs are the exception:
// they encode consecutive milliseconds a few days before 2024, chosen so
// that guild i lands on gateway shard i % N for any N up to 20. Every
// guild has the same members: the bot and Options.MembersPerGuild users
// (default 10) named "member-1", "member-2", ... ([Server.Members]).
// [Endpoints] lists the routes:
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
//	GET  /_mock/gateway/observations    GatewayObservations as JSON
//	GET  /_mock/gateway/violations      GatewayViolations as JSON
//	GET  /_mock/gateway/sessions        Sessions as JSON
//	POST /_mock/gateway/faults          {"kind", "shard", "after_dispatches", "next", "before_hello", "code", "reason", "resumable", "parts", "count"}: 200 {"connections": n}, or 400
//	POST /_mock/gateway/dispatch        {"guild_id", "name", "data"} (Dispatch), or with "shard" (DispatchToShard): 200 {"sessions": n}
//	POST /_mock/gateway/stream          {"shard", "n", "name"} (Stream): 200 {"sessions": n}
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
//     [BucketSpec.PerResource], and the change_hash fault);
//   - on the gateway: the close code for a missed heartbeat
//     (Options.MissedHeartbeatCode) and the grace allowed
//     (Options.HeartbeatTolerance); whether heartbeats count toward the
//     send limit (Options.SendLimitExemptsHeartbeats); whether the server
//     closes after op 9 (Options.InvalidSessionCloseCode); which payloads
//     payload compression compresses (Options.PayloadCompressThreshold;
//     compressed ones are always binary frames); how long sessions stay
//     resumable (Options.SessionTTL); the resume URL
//     (Options.ResumeGatewayURL); and, through faults, server closes with
//     1000/1001 (the session stays resumable), op 7 or op 9 at any time,
//     before HELLO included.
//
// Fixed choices where Discord is silent: RESUMED is {} with a new s (not
// kept for replay); a server op 1 has d null; the "Bot " prefix is
// accepted in IDENTIFY and RESUME tokens; channels in GUILD_CREATE have
// no guild_id; the mock never sends VOICE_STATE_UPDATE or
// VOICE_SERVER_UPDATE (the world has no voice channels).
//
// # Gateway
//
// The websocket is at /gateway and /gateway/ (discordgo appends the
// slash); GET /gateway returns "ws://HOST/gateway". READY's
// resume_gateway_url names /gateway-resume, which works the same but is
// observed separately and can refuse connections
// (GatewayFaultRefuseResume), so tests see whether a client resumes where
// it is told to and falls back when that fails. Reach it over TCP
// ([Server.GatewayURL] after Start) or in memory: [Server.DialGateway]
// (and [Server.NetDial], the same with the signature of
// ws.Dialer.NetDial) returns the client end of a net.Pipe served like a
// TCP connection, so a websocket dialer works inside a testing/synctest
// bubble and heartbeat, identify-spacing and session-TTL timing can be
// tested with fake time. Everything uses package time only.
//
// The query: v=9 or 10 (absent means 10; others close 4012 before HELLO);
// encoding=json (absent means json; etf is refused with HTTP 400, as the
// mock speaks JSON only; other values close 4002); compress=zlib-stream
// (one zlib context per connection, each payload Write + Flush so it
// ends with 00 00 FF FF, sent as one binary message unless a split fault
// says otherwise); compress=zstd-stream (as Discord: one zstd frame per
// connection, never ended, declaring a 256 KiB window, no checksum; each
// payload Write + Flush, so that it ends with a complete block, sent as
// one binary message; a split fault sends that message in fragments,
// since with zstd-stream a websocket message is exactly one payload);
// other values close 4002. Either transport compression turns payload
// compression off.
//
// A connection gets HELLO {heartbeat_interval} (Options.HeartbeatInterval,
// 41250 ms), then must heartbeat: op 1 with the last seq or null, answered
// by op 11. Without one for HeartbeatInterval × (1 + HeartbeatTolerance)
// from HELLO or the last heartbeat, the mock closes with
// MissedHeartbeatCode (4009) and keeps the session resumable. IDENTIFY is
// accepted any time after HELLO and answered with READY {v, user, guilds
// (unavailable), session_id, resume_gateway_url, shard (when sent),
// application {id, flags}}, then one GUILD_CREATE per guild of the shard
// (with the GUILDS intent): guild G belongs to shard (G >> 22) %
// num_shards, and the mock's guild IDs spread guild i over shard i % N
// ([ShardOf]). Sequence numbers start at 1 per session.
//
// # Gateway strictness
//
// The mock closes the connection, with Discord's close code and reason,
// for:
//
//	4001  an unknown op (or a server-only one), or an invalid d for a known op:
//	      IDENTIFY without properties or intents, large_threshold outside
//	      50-250, a malformed presence update, voice state or member request
//	4002  a payload that is not a JSON object with an integer op, or one
//	      over 4096 bytes; an unknown encoding or compress value
//	4003  op 3, 4, 8, 31 or 43 before IDENTIFY or RESUME
//	4004  a wrong token (the "Bot " prefix is accepted)
//	4005  a second IDENTIFY, or IDENTIFY or RESUME after either
//	4007  a RESUME seq ahead of the session, or older than its replay buffer
//	4008  more than Options.SendLimit (120) payloads in 60 s
//	4009  a missed heartbeat (Options.MissedHeartbeatCode)
//	4010  a shard that is not [id, count] with 0 <= id < count
//	4011  a shard covering more than Options.MaxGuildsPerShard (2500) guilds
//	4012  a v other than 9 or 10
//	4013  intent bits Discord does not define
//	4014  privileged intents not in Options.AllowedPrivilegedIntents
//	1002  a websocket protocol error (unmasked frame, reserved bits, ...)
//
// Identify concurrency: each bucket (shard_id % Options.MaxConcurrency)
// admits one IDENTIFY per Options.IdentifyInterval (5 s); a faster one, or
// one past the session start limit ([Server.ConsumeSessionStart], which
// every accepted IDENTIFY uses), gets op 9 d=false, as Discord does, and
// is a violation. The connection stays open and may IDENTIFY again
// (unless Options.InvalidSessionCloseCode is set).
//
// # Sessions and RESUME
//
// A session survives every disconnect except a client close with 1000 or
// 1001 (and server closes 4003, 4004, 4007, 4009-4014, op 9 d=false) for
// Options.SessionTTL (3 minutes), keeping its last Options.ReplayBuffer
// (10,000) dispatches; events for it that happen while it is disconnected
// are kept too. RESUME {token, session_id, seq} on any gateway path
// replays every kept dispatch after seq, in order with its original s,
// then sends RESUMED: nothing is lost and nothing repeated. An unknown,
// invalidated or expired session gets op 9 d=false. A RESUME for a session
// another connection still serves takes it over and drops that connection.
// [Server.Sessions] lists the live sessions.
//
// # Gateway events
//
// World changes become dispatches for every live session whose shard owns
// the guild and whose intents cover the event ([EventIntent]):
// MESSAGE_CREATE (with guild_id, member, author; content, embeds,
// attachments and components blank without MESSAGE_CONTENT unless the bot
// wrote or is mentioned in the message), MESSAGE_UPDATE, MESSAGE_DELETE,
// MESSAGE_REACTION_ADD/REMOVE and TYPING_START. [Server.Dispatch],
// [Server.DispatchToShard] and [Server.Stream] send any event. Op 8
// (request guild members) is answered with GUILD_MEMBERS_CHUNKs of the
// guild's fake members ([Server.Members]; Options.MembersPerGuild,
// Options.MemberChunkSize), with chunk_index, chunk_count, not_found and
// the nonce; the whole list needs GUILD_MEMBERS and may be asked once per
// Options.RequestMembersInterval (30 s) per guild, else RATE_LIMITED. Op 3
// (presence) and op 4 (voice state) are validated and recorded; op 31 and
// op 43 get empty SOUNDBOARD_SOUNDS and CHANNEL_INFO. An IDENTIFY with
// "compress": true (and no transport compression) gets dispatches
// zlib-compressed one by one, in binary frames.
//
// # Gateway faults and observations
//
// [Server.InjectGateway] drops connections, stops ACKs, sends op 7, op 9
// or op 1, closes with any code, sends malformed JSON, a truncated frame
// or a reserved opcode, splits a payload over several frames, or refuses
// the resume path; each targets a shard (or AllShards), now, after N more
// dispatches, on the next session, or before the next HELLO.
// [Server.GatewayObservations] records every connection, payload
// received, IDENTIFY (shard, bucket, intents, compress, accepted or why
// not), RESUME, heartbeat (seq, acked), close (who, code), fault and
// violation; [Server.GatewayViolations] lists what a well-behaved client
// never causes.
package mockdiscord
