package mockdiscord

import (
	"fmt"
	"math"
	"net/url"
	"time"
)

// Defaults applied by [New] to zero gateway fields of [Options].
const (
	// DefaultHeartbeatInterval is the heartbeat_interval of HELLO, 41.25 s,
	// the value Discord sends today.
	DefaultHeartbeatInterval = 41250 * time.Millisecond
	// DefaultHeartbeatTolerance is the fraction of an interval the mock
	// waits past it for a heartbeat.
	DefaultHeartbeatTolerance = 0.5
	// DefaultMissedHeartbeatCode closes a connection that stopped
	// heartbeating: 4009 "Session timed out" (UNVERIFIED).
	DefaultMissedHeartbeatCode = 4009
	// DefaultIdentifyInterval is Discord's documented identify rate: one
	// per bucket per 5 seconds.
	DefaultIdentifyInterval = 5 * time.Second
	// DefaultMaxGuildsPerShard is Discord's documented 2500 guilds per
	// shard.
	DefaultMaxGuildsPerShard = 2500
	// DefaultReplayBuffer is how many dispatches a session keeps for
	// RESUME.
	DefaultReplayBuffer = 10000
	// DefaultSessionTTL is how long a disconnected session stays
	// resumable.
	DefaultSessionTTL = 3 * time.Minute
	// DefaultSendLimit is Discord's documented 120 payloads per connection
	// per 60 seconds.
	DefaultSendLimit = 120
	// DefaultMembersPerGuild is the number of fake members per guild.
	DefaultMembersPerGuild = 10
	// DefaultMemberChunkSize is Discord's 1000 members per
	// GUILD_MEMBERS_CHUNK.
	DefaultMemberChunkSize = 1000
	// DefaultRequestMembersInterval is Discord's limit on requesting a
	// guild's whole member list: once per 30 seconds.
	DefaultRequestMembersInterval = 30 * time.Second
)

// Fixed gateway limits, from Discord's documentation.
const (
	// SendLimitWindow is the sliding window of Options.SendLimit.
	SendLimitWindow = 60 * time.Second
	// MaxPayloadSize is the largest payload a client may send, in bytes;
	// a larger one is closed with 4002.
	MaxPayloadSize = 4096
)

// Gateway intents, the bits of IDENTIFY's "intents".
const (
	IntentGuilds                      uint64 = 1 << 0
	IntentGuildMembers                uint64 = 1 << 1 // privileged
	IntentGuildModeration             uint64 = 1 << 2
	IntentGuildExpressions            uint64 = 1 << 3
	IntentGuildIntegrations           uint64 = 1 << 4
	IntentGuildWebhooks               uint64 = 1 << 5
	IntentGuildInvites                uint64 = 1 << 6
	IntentGuildVoiceStates            uint64 = 1 << 7
	IntentGuildPresences              uint64 = 1 << 8 // privileged
	IntentGuildMessages               uint64 = 1 << 9
	IntentGuildMessageReactions       uint64 = 1 << 10
	IntentGuildMessageTyping          uint64 = 1 << 11
	IntentDirectMessages              uint64 = 1 << 12
	IntentDirectMessageReactions      uint64 = 1 << 13
	IntentDirectMessageTyping         uint64 = 1 << 14
	IntentMessageContent              uint64 = 1 << 15 // privileged
	IntentGuildScheduledEvents        uint64 = 1 << 16
	IntentAutoModerationConfiguration uint64 = 1 << 20
	IntentAutoModerationExecution     uint64 = 1 << 21
	IntentGuildMessagePolls           uint64 = 1 << 24
	IntentDirectMessagePolls          uint64 = 1 << 25

	// AllIntents is every defined intent; an IDENTIFY with any other bit
	// is closed with 4013.
	AllIntents = IntentGuilds | IntentGuildMembers | IntentGuildModeration | IntentGuildExpressions |
		IntentGuildIntegrations | IntentGuildWebhooks | IntentGuildInvites | IntentGuildVoiceStates |
		IntentGuildPresences | IntentGuildMessages | IntentGuildMessageReactions | IntentGuildMessageTyping |
		IntentDirectMessages | IntentDirectMessageReactions | IntentDirectMessageTyping | IntentMessageContent |
		IntentGuildScheduledEvents | IntentAutoModerationConfiguration | IntentAutoModerationExecution |
		IntentGuildMessagePolls | IntentDirectMessagePolls
	// PrivilegedIntents are the intents an application must be allowed
	// (Options.AllowedPrivilegedIntents); others get close 4014.
	PrivilegedIntents = IntentGuildMembers | IntentGuildPresences | IntentMessageContent
	// NoPrivilegedIntents, as Options.AllowedPrivilegedIntents, allows no
	// privileged intent (the zero value allows all three). It is a bit no
	// intent uses.
	NoPrivilegedIntents uint64 = 1 << 63
)

// Application flags READY reports for the allowed privileged intents (the
// "LIMITED" flags of apps in fewer than 100 servers).
const (
	flagGatewayPresenceLimited       = 1 << 13
	flagGatewayGuildMembersLimited   = 1 << 15
	flagGatewayMessageContentLimited = 1 << 19
)

// sendableCloseCode reports whether code may appear in a close frame.
func sendableCloseCode(code int) bool {
	switch {
	case code < 1000 || code > 4999:
		return false
	case code >= 1004 && code <= 1006, code == 1015:
		return false
	}
	return true
}

// validateGateway returns the gateway options' problems; o is not nil.
func (o *Options) validateGateway() []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, args...)...))
	}
	if o.HeartbeatInterval < 0 {
		bad("HeartbeatInterval %v is negative", o.HeartbeatInterval)
	}
	if math.IsNaN(o.HeartbeatTolerance) || math.IsInf(o.HeartbeatTolerance, 0) {
		bad("HeartbeatTolerance %v is not finite", o.HeartbeatTolerance)
	}
	if o.MissedHeartbeatCode > 0 && !sendableCloseCode(o.MissedHeartbeatCode) {
		bad("MissedHeartbeatCode %d is not a close code", o.MissedHeartbeatCode)
	}
	if o.InvalidSessionCloseCode != 0 && !sendableCloseCode(o.InvalidSessionCloseCode) {
		bad("InvalidSessionCloseCode %d is not a close code", o.InvalidSessionCloseCode)
	}
	if extra := o.AllowedPrivilegedIntents &^ (PrivilegedIntents | NoPrivilegedIntents); extra != 0 {
		bad("AllowedPrivilegedIntents has bits %#x that are not privileged intents", extra)
	}
	if o.MemberChunkSize < 0 {
		bad("MemberChunkSize %d is negative", o.MemberChunkSize)
	}
	if o.ResumeGatewayURL != "" {
		u, err := url.Parse(o.ResumeGatewayURL)
		if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			bad("ResumeGatewayURL %q is not a ws:// or wss:// URL", o.ResumeGatewayURL)
		}
	}
	return errs
}

// gatewayDefaults fills in the gateway fields of c.
func (c *config) gatewayDefaults() {
	switch {
	case c.HeartbeatInterval <= 0:
		c.HeartbeatInterval = DefaultHeartbeatInterval
	case c.HeartbeatInterval < time.Millisecond:
		c.HeartbeatInterval = time.Millisecond
	}
	switch t := c.HeartbeatTolerance; {
	case t == 0 || math.IsNaN(t) || math.IsInf(t, 0):
		c.HeartbeatTolerance = DefaultHeartbeatTolerance
	case t < 0:
		c.HeartbeatTolerance = 0
	}
	if c.MissedHeartbeatCode == 0 || (c.MissedHeartbeatCode > 0 && !sendableCloseCode(c.MissedHeartbeatCode)) {
		c.MissedHeartbeatCode = DefaultMissedHeartbeatCode
	}
	if c.InvalidSessionCloseCode != 0 && !sendableCloseCode(c.InvalidSessionCloseCode) {
		c.InvalidSessionCloseCode = 0
	}
	if c.IdentifyInterval == 0 {
		c.IdentifyInterval = DefaultIdentifyInterval
	}
	if c.MaxGuildsPerShard == 0 {
		c.MaxGuildsPerShard = DefaultMaxGuildsPerShard
	}
	switch {
	case c.AllowedPrivilegedIntents == 0:
		c.AllowedPrivilegedIntents = PrivilegedIntents
	default:
		c.AllowedPrivilegedIntents &= PrivilegedIntents
	}
	switch {
	case c.ReplayBuffer == 0:
		c.ReplayBuffer = DefaultReplayBuffer
	case c.ReplayBuffer < 0:
		c.ReplayBuffer = 0
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = DefaultSessionTTL
	}
	if c.SendLimit == 0 {
		c.SendLimit = DefaultSendLimit
	}
	switch {
	case c.MembersPerGuild == 0:
		c.MembersPerGuild = DefaultMembersPerGuild
	case c.MembersPerGuild < 0:
		c.MembersPerGuild = 0
	}
	if c.MemberChunkSize <= 0 {
		c.MemberChunkSize = DefaultMemberChunkSize
	}
	if c.RequestMembersInterval == 0 {
		c.RequestMembersInterval = DefaultRequestMembersInterval
	}
	if c.PayloadCompressThreshold < 0 {
		c.PayloadCompressThreshold = 0
	}
}
