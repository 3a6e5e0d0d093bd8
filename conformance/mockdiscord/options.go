package mockdiscord

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// DefaultToken is the bot token a [Server] accepts when [Options.Token] is
// empty. Its first part is the base64 of the bot's user ID,
// 111111111111111111, as in a real token, so libraries that derive the
// application ID from the token (disgo) accept it.
const DefaultToken = "MTExMTExMTExMTExMTExMTEx.R3ZhYg.mock-token_for-tests"

// Defaults applied by [New] to zero fields of [Options].
const (
	// DefaultGlobalLimit is Discord's documented global limit: 50 requests
	// per second per bot.
	DefaultGlobalLimit = 50
	// DefaultInvalidRequestLimit is Discord's documented invalid-request
	// limit: 10,000 per 10 minutes.
	DefaultInvalidRequestLimit = 10000
	// DefaultInvalidRequestWindow is the window of DefaultInvalidRequestLimit.
	DefaultInvalidRequestWindow = 10 * time.Minute
	// DefaultBanDuration is how long a ban lasts. UNVERIFIED: reports say
	// about an hour.
	DefaultBanDuration = time.Hour
	// DefaultMaxFileSize is Discord's default per-file upload limit, 10 MiB.
	DefaultMaxFileSize = 10 << 20
)

// BanStyle selects the body of the response a banned client gets. Discord
// does not document it (UNVERIFIED); issue reports show both shapes.
type BanStyle string

const (
	// BanJSON answers 429 with Retry-After and the JSON body {"code":0,
	// "message":"You are being blocked from accessing our API temporarily
	// ..."}. It is the default.
	BanJSON BanStyle = "json"
	// BanCloudflare answers 429 with Retry-After and the text/html body
	// "error code: 1015", without the Via header, as Cloudflare does.
	BanCloudflare BanStyle = "cloudflare"
)

// Options configures a [Server]. The zero value, and a nil *Options, give a
// strict Discord: bot token [DefaultToken], 50 requests per second globally,
// [DefaultBuckets], a DiscordBot User-Agent required, three guilds of two
// text channels each. Every field documents its zero value.
type Options struct {
	// Token is the accepted bot token, without "Bot ". Requests must send
	// "Authorization: Bot <Token>". Defaults to DefaultToken.
	Token string

	// GlobalLimit is how many authenticated requests to non-exempt routes
	// the bot may make in any sliding one-second window, across routes.
	// Zero means DefaultGlobalLimit (50); a negative value disables the
	// global limit. Interaction routes are exempt, and unauthenticated
	// requests are not counted (Discord limits those per IP).
	GlobalLimit int

	// GlobalCountsRejected makes requests answered with a per-route 429
	// still take a slot of the global window. By default (false) a request
	// answered with any 429 takes neither per-route nor global quota; a
	// request answered with another error (400, 404, ...) takes both.
	// Whether Discord counts rejected requests is UNVERIFIED.
	GlobalCountsRejected bool

	// DisableRateLimits turns off per-route and global limits. Limited
	// routes still send their X-RateLimit-* headers, with a limit of one
	// million and a Remaining that never reaches zero. The invalid-request
	// limit stays on (set InvalidRequestLimit to -1 to turn it off).
	DisableRateLimits bool

	// Buckets are the per-route limits. nil means DefaultBuckets(); an
	// empty non-nil slice means no route has a per-route limit. Routes
	// without a BucketSpec send no X-RateLimit-* headers. See BucketSpec
	// and Options.Validate for how malformed specs are treated.
	Buckets []BucketSpec

	// InvalidRequestLimit is how many invalid responses (401, 403, and 429
	// other than shared scope) may be served in any InvalidRequestWindow.
	// The response that goes past it starts a ban: for BanDuration every
	// API request gets the ban response. Zero means
	// DefaultInvalidRequestLimit (10,000); a negative value disables bans.
	InvalidRequestLimit int
	// InvalidRequestWindow is the sliding window of InvalidRequestLimit.
	// Zero means DefaultInvalidRequestWindow (10 minutes).
	InvalidRequestWindow time.Duration
	// BanDuration is how long a ban lasts. Zero means DefaultBanDuration
	// (one hour; UNVERIFIED).
	BanDuration time.Duration
	// BanStyle is the shape of the ban response. "" means BanJSON.
	BanStyle BanStyle

	// Guilds is the number of guilds in the fake world. Zero means 3; a
	// negative value means none.
	Guilds int
	// ChannelsPerGuild is the number of text channels in each guild. Zero
	// means 2; a negative value means none.
	ChannelsPerGuild int

	// Latency is added before every API request is processed, as transit
	// time: rate-limit windows start when the request is processed, so a
	// client that counts Reset-After from the response's arrival stays
	// exactly in step. Zero means none. The wait ends early, without a
	// response, when the request's context ends or the server closes.
	Latency time.Duration

	// AllowAnyUserAgent turns off the User-Agent check. By default (false)
	// a request whose User-Agent does not start with "DiscordBot" gets 403
	// with JSON code 40333, as Cloudflare blocks it on Discord.
	AllowAnyUserAgent bool

	// Shards is the recommended shard count GET /gateway/bot reports.
	// Zero means 1.
	Shards int
	// MaxConcurrency is session_start_limit.max_concurrency in GET
	// /gateway/bot. Zero means 1.
	MaxConcurrency int
	// SessionStartTotal is session_start_limit.total in GET /gateway/bot.
	// Zero means 1000.
	SessionStartTotal int

	// GatewayURL is the URL GET /gateway and GET /gateway/bot return. ""
	// means "ws://" + the request's Host + "/gateway".
	GatewayURL string

	// FractionalRetryAfter sends the Retry-After header with three decimals
	// (e.g. "2.001") instead of rounding it up to whole seconds. Discord's
	// documented examples show whole seconds; the rounding is UNVERIFIED.
	// Some clients (disgo) fail on a fractional value.
	FractionalRetryAfter bool

	// SharedRateLimitCode, when not zero, is sent as "code" in the body of
	// shared-scope 429s (Discord's 40062 "Service resource is being rate
	// limited" is the likely value). By default no code is sent; the
	// docs mark it optional (UNVERIFIED).
	SharedRateLimitCode int

	// UnauthorizedCode is the JSON code of 401 bodies. Zero sends the
	// widely reported {"message": "401: Unauthorized", "code": 0}; 50014
	// sends the documented {"message": "Invalid authentication token",
	// "code": 50014} (which one Discord sends is UNVERIFIED).
	UnauthorizedCode int

	// MaxFileSize is the largest accepted attachment, in bytes; a larger
	// one gets 413 with code 40005. Zero means DefaultMaxFileSize (10 MiB).
	MaxFileSize int64

	// The gateway half: the websocket at /gateway, /gateway/ and
	// /gateway-resume. See the package doc's "Gateway" section.

	// HeartbeatInterval is the heartbeat_interval HELLO announces. Zero
	// means DefaultHeartbeatInterval (41.25 s); values below a millisecond
	// are treated as one millisecond (HELLO carries milliseconds).
	HeartbeatInterval time.Duration
	// HeartbeatTolerance is the grace the mock allows past an interval:
	// a connection that sends no heartbeat (op 1) for HeartbeatInterval ×
	// (1 + HeartbeatTolerance), counted from HELLO or the last heartbeat,
	// is closed with MissedHeartbeatCode. Zero means
	// DefaultHeartbeatTolerance (0.5); a negative value means none (exactly
	// one interval). Discord's own tolerance is not documented.
	HeartbeatTolerance float64
	// MissedHeartbeatCode is the close code for a missed heartbeat. Zero
	// means DefaultMissedHeartbeatCode (4009, "Session timed out"); a
	// negative value drops the connection without a close frame. Discord's
	// code is UNVERIFIED. Whatever the code, the session stays resumable,
	// as the docs say it does ("the client must resume").
	MissedHeartbeatCode int
	// IdentifyInterval is how often each identify bucket (shard_id %
	// MaxConcurrency) admits an IDENTIFY. A faster one is answered with op
	// 9 INVALID_SESSION d=false, as Discord does, and recorded as a
	// violation. Zero means DefaultIdentifyInterval (5 s); a negative value
	// means no limit.
	IdentifyInterval time.Duration
	// MaxGuildsPerShard is how many guilds one session may cover; an
	// IDENTIFY whose shard would cover more is closed with 4011 "Sharding
	// required". Zero means DefaultMaxGuildsPerShard (2500); a negative
	// value means no limit.
	MaxGuildsPerShard int
	// AllowedPrivilegedIntents are the privileged intents (IntentGuildMembers,
	// IntentGuildPresences, IntentMessageContent) the application may
	// request; asking for another is closed with 4014. Zero means all three
	// (so that bots work out of the box); NoPrivilegedIntents means none.
	// READY's application.flags carry the matching *_LIMITED flags. Bits
	// that are not privileged intents are ignored.
	AllowedPrivilegedIntents uint64
	// ReplayBuffer is how many dispatches each session keeps for RESUME. A
	// RESUME whose seq is older than the oldest kept dispatch is closed with
	// 4007. Zero means DefaultReplayBuffer (10,000); a negative value keeps
	// none (only a RESUME that missed nothing succeeds).
	ReplayBuffer int
	// SessionTTL is how long a disconnected session stays resumable. Zero
	// means DefaultSessionTTL (3 minutes; Discord says "a few minutes",
	// UNVERIFIED); a negative value means forever.
	SessionTTL time.Duration
	// SendLimit is how many payloads a connection may send in any sliding
	// 60 seconds; the one past it is closed with 4008. Zero means
	// DefaultSendLimit (120); a negative value means no limit.
	SendLimit int
	// SendLimitExemptsHeartbeats stops heartbeats counting toward
	// SendLimit. By default (false) every payload counts, heartbeats
	// included, as a 2017 maintainer reply says (UNVERIFIED).
	SendLimitExemptsHeartbeats bool
	// MembersPerGuild is how many members (besides the bot) each guild has:
	// users "member-1", "member-2", ... whose IDs are the ones
	// SimulateMessage derives from those usernames. Zero means
	// DefaultMembersPerGuild (10); a negative value means only the bot.
	MembersPerGuild int
	// MemberChunkSize is how many members one GUILD_MEMBERS_CHUNK carries.
	// Zero means DefaultMemberChunkSize (1000, Discord's documented size).
	MemberChunkSize int
	// RequestMembersInterval is how often a guild's whole member list (op 8
	// with query "" and limit 0) may be requested; a faster request gets a
	// RATE_LIMITED dispatch. Zero means DefaultRequestMembersInterval (30
	// s); a negative value means no limit.
	RequestMembersInterval time.Duration
	// PayloadCompressThreshold applies to sessions that IDENTIFY with
	// "compress": true (and no transport compression): dispatches whose
	// JSON is at least this many bytes are sent zlib-compressed (RFC 1950,
	// one stream per payload) in binary frames; other payloads stay text
	// frames. Which payloads Discord compresses is not documented. Zero
	// means every dispatch; other opcodes (HELLO, ACK, op 7, op 9) are
	// never compressed.
	PayloadCompressThreshold int
	// InvalidSessionCloseCode, when not zero, makes the mock close the
	// connection with this code right after every op 9 INVALID_SESSION it
	// sends. By default (zero) the connection stays open and may IDENTIFY
	// again; whether Discord closes is UNVERIFIED.
	InvalidSessionCloseCode int
	// ResumeGatewayURL is READY's resume_gateway_url. "" means "ws://" +
	// the connection's Host + "/gateway-resume", a path of the mock that
	// works like /gateway but is observed separately.
	ResumeGatewayURL string
}

// BucketSpec is one per-route rate limit.
type BucketSpec struct {
	// Endpoint is the HTTP method and the route template, as Discord's
	// docs write it: "POST /channels/{channel_id}/messages". Placeholder
	// names are not compared, so "{id}" matches "{channel_id}"; see
	// Endpoints for the routes the mock serves.
	Endpoint string
	// Hash is the X-RateLimit-Bucket value the route advertises. Several
	// specs may advertise one hash. An empty Hash is replaced by a hash of
	// Endpoint.
	Hash string
	// Limit is how many requests a window admits. Values below 1 are
	// treated as 1.
	Limit int
	// Window is the length of a fixed window. A window starts at the first
	// request after the previous window ended, and admits Limit requests;
	// the next request is admitted at exactly start+Window. Fractions are
	// allowed (1500 * time.Millisecond). Zero or negative means one second.
	Window time.Duration
	// Group names the counter. Specs with the same Group (and, when
	// PerResource, the same top-level resource) share one counter; Limit
	// and Window come from each route's own spec. "" means Hash, so routes
	// that advertise one hash share one counter unless their Groups differ:
	// two routes may advertise one hash yet be limited independently, as
	// Discord does (discord-api-docs issue 8073).
	Group string
	// PerResource keys the counter by the request's top-level resource too
	// (channels/ID, guilds/ID, webhooks/ID/TOKEN, interactions/ID/TOKEN),
	// as Discord does for most routes. The zero value, false, means one
	// counter for every resource: the route is limited per bot only.
	// DefaultBuckets sets it on every route that has a top-level resource.
	PerResource bool
}

// counterGroup returns the spec's effective group.
func (b BucketSpec) counterGroup() string {
	if b.Group != "" {
		return b.Group
	}
	return b.Hash
}

// hashOf returns a Discord-looking 32-hex-digit bucket hash for name.
func hashOf(name string) string {
	sum := md5.Sum([]byte("cordkit-mockdiscord/" + name))
	return hex.EncodeToString(sum[:])
}

// DefaultBuckets returns the per-route limits a Server uses when
// Options.Buckets is nil. They are Discord-like, not Discord's (Discord's
// real limits are not published):
//
//	POST   /channels/{channel_id}/messages                         5 per 5s, per channel
//	GET    /channels/{channel_id}/messages                         5 per 1s, per channel
//	GET    /channels/{channel_id}                                  5 per 1s, per channel
//	GET    /channels/{channel_id}/messages/{message_id}            5 per 1s, per channel
//	PATCH  /channels/{channel_id}/messages/{message_id}            5 per 5s, per channel
//	DELETE /channels/{channel_id}/messages/{message_id}            5 per 1s, per channel
//	POST   /channels/{channel_id}/typing                           5 per 5s, per channel
//	GET    /users/@me                                              5 per 1s
//	GET    /gateway/bot                                            5 per 5s
//	POST   /webhooks/{webhook_id}/{webhook_token}                  5 per 2s, per webhook and token
//	reactions (4 routes, ONE hash, ONE counter per channel)         1 per 250ms
//	  PUT    /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me
//	  DELETE /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me
//	  DELETE /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/{user_id}
//	  GET    /channels/{channel_id}/messages/{message_id}/reactions/{emoji}
//	guild reads (2 routes, ONE hash, independent counters per guild) 5 per 1s each
//	  GET    /guilds/{guild_id}
//	  GET    /guilds/{guild_id}/channels
//
// GET /gateway and the interaction callback have no per-route limit. Each
// call returns a new slice.
func DefaultBuckets() []BucketSpec {
	reactions := hashOf("reactions")
	guildRead := hashOf("guild-read")
	spec := func(endpoint, name string, limit int, window time.Duration, perResource bool) BucketSpec {
		return BucketSpec{Endpoint: endpoint, Hash: hashOf(name), Limit: limit, Window: window, PerResource: perResource}
	}
	return []BucketSpec{
		spec("POST /channels/{channel_id}/messages", "create-message", 5, 5*time.Second, true),
		spec("GET /channels/{channel_id}/messages", "get-messages", 5, time.Second, true),
		spec("GET /channels/{channel_id}", "get-channel", 5, time.Second, true),
		spec("GET /channels/{channel_id}/messages/{message_id}", "get-message", 5, time.Second, true),
		spec("PATCH /channels/{channel_id}/messages/{message_id}", "edit-message", 5, 5*time.Second, true),
		spec("DELETE /channels/{channel_id}/messages/{message_id}", "delete-message", 5, time.Second, true),
		spec("POST /channels/{channel_id}/typing", "typing", 5, 5*time.Second, true),
		spec("GET /users/@me", "get-current-user", 5, time.Second, false),
		spec("GET /gateway/bot", "gateway-bot", 5, 5*time.Second, false),
		spec("POST /webhooks/{webhook_id}/{webhook_token}", "execute-webhook", 5, 2*time.Second, true),
		{Endpoint: "PUT /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", Hash: reactions, Limit: 1, Window: 250 * time.Millisecond, PerResource: true},
		{Endpoint: "DELETE /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", Hash: reactions, Limit: 1, Window: 250 * time.Millisecond, PerResource: true},
		{Endpoint: "DELETE /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/{user_id}", Hash: reactions, Limit: 1, Window: 250 * time.Millisecond, PerResource: true},
		{Endpoint: "GET /channels/{channel_id}/messages/{message_id}/reactions/{emoji}", Hash: reactions, Limit: 1, Window: 250 * time.Millisecond, PerResource: true},
		{Endpoint: "GET /guilds/{guild_id}", Hash: guildRead, Group: "get-guild", Limit: 5, Window: time.Second, PerResource: true},
		{Endpoint: "GET /guilds/{guild_id}/channels", Hash: guildRead, Group: "get-guild-channels", Limit: 5, Window: time.Second, PerResource: true},
	}
}

// ErrInvalidOptions is wrapped by the errors [Options.Validate] reports.
var ErrInvalidOptions = errors.New("mockdiscord: invalid options")

// Validate reports what [New] would silently fix or drop in o: a
// BucketSpec whose Endpoint is not a route the mock serves (dropped), one
// whose Endpoint repeats an earlier spec's (dropped), a Limit below 1
// (treated as 1), a Window of zero or less (treated as one second), an
// unknown BanStyle (treated as BanJSON), a Token containing
// whitespace (never accepted), and the gateway options' problems: a
// negative HeartbeatInterval or MemberChunkSize (treated as the default),
// a HeartbeatTolerance that is NaN or infinite (treated as the default), a
// MissedHeartbeatCode or InvalidSessionCloseCode that is not a sendable
// close code (1000-4999 but not 1004-1006 or 1015; treated as the
// default), AllowedPrivilegedIntents bits that are not privileged intents
// (ignored), and a ResumeGatewayURL that is not a ws:// or wss:// URL
// (used anyway). A nil receiver is valid. Each problem is an
// error wrapping ErrInvalidOptions; they are joined with errors.Join.
func (o *Options) Validate() error {
	if o == nil {
		return nil
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, args...)...))
	}
	if strings.ContainsAny(o.Token, " \t\r\n") {
		bad("Token contains whitespace")
	}
	switch o.BanStyle {
	case "", BanJSON, BanCloudflare:
	default:
		bad("unknown BanStyle %q", o.BanStyle)
	}
	seen := map[string]bool{}
	for i, b := range o.Buckets {
		rt := lookupEndpoint(b.Endpoint)
		if rt == nil {
			bad("Buckets[%d]: endpoint %q is not a route the mock serves", i, b.Endpoint)
			continue
		}
		if seen[rt.endpoint()] {
			bad("Buckets[%d]: endpoint %q repeats an earlier spec", i, b.Endpoint)
		}
		seen[rt.endpoint()] = true
		if b.Limit < 1 {
			bad("Buckets[%d]: Limit %d is below 1", i, b.Limit)
		}
		if b.Window <= 0 {
			bad("Buckets[%d]: Window %v is not positive", i, b.Window)
		}
	}
	errs = append(errs, o.validateGateway()...)
	return errors.Join(errs...)
}

// config is Options with every default filled in.
type config struct {
	Options
	specs map[*route]BucketSpec
}

func newConfig(o *Options) config {
	var c config
	if o != nil {
		c.Options = *o
	}
	if c.Token == "" {
		c.Token = DefaultToken
	}
	if c.GlobalLimit == 0 {
		c.GlobalLimit = DefaultGlobalLimit
	}
	if c.Buckets == nil {
		c.Buckets = DefaultBuckets()
	}
	c.Buckets = append([]BucketSpec(nil), c.Buckets...)
	if c.InvalidRequestLimit == 0 {
		c.InvalidRequestLimit = DefaultInvalidRequestLimit
	}
	if c.InvalidRequestWindow <= 0 {
		c.InvalidRequestWindow = DefaultInvalidRequestWindow
	}
	if c.BanDuration <= 0 {
		c.BanDuration = DefaultBanDuration
	}
	if c.BanStyle != BanCloudflare {
		c.BanStyle = BanJSON
	}
	switch {
	case c.Guilds == 0:
		c.Guilds = 3
	case c.Guilds < 0:
		c.Guilds = 0
	}
	switch {
	case c.ChannelsPerGuild == 0:
		c.ChannelsPerGuild = 2
	case c.ChannelsPerGuild < 0:
		c.ChannelsPerGuild = 0
	}
	if c.Latency < 0 {
		c.Latency = 0
	}
	if c.Shards <= 0 {
		c.Shards = 1
	}
	if c.MaxConcurrency <= 0 {
		c.MaxConcurrency = 1
	}
	if c.SessionStartTotal <= 0 {
		c.SessionStartTotal = 1000
	}
	if c.MaxFileSize <= 0 {
		c.MaxFileSize = DefaultMaxFileSize
	}
	c.gatewayDefaults()
	c.specs = map[*route]BucketSpec{}
	for _, b := range c.Buckets {
		rt := lookupEndpoint(b.Endpoint)
		if rt == nil {
			continue
		}
		if _, dup := c.specs[rt]; dup {
			continue
		}
		if b.Limit < 1 {
			b.Limit = 1
		}
		if b.Window <= 0 {
			b.Window = time.Second
		}
		if b.Hash == "" {
			b.Hash = hashOf(rt.endpoint())
		}
		b.Endpoint = rt.endpoint()
		c.specs[rt] = b
	}
	return c
}
