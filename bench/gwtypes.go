package main

import "time"

// The typed cordkit rows decode d into these types, through the
// TypeSheet's codec. They cover the fields discordgo's and disgo's own
// structs decode for these events (users with avatar decoration and
// primary guild, members, embeds with their images, attachments, the
// replied-to message, roles, channels with overwrites, threads, emojis,
// stickers, voice states, presences with activities), with snowflakes as
// strings (as discordgo and cordkit's own models have them) and
// timestamps as time.Time.

type bUser struct {
	ID                   string             `json:"id"`
	Username             string             `json:"username"`
	Discriminator        string             `json:"discriminator"`
	GlobalName           *string            `json:"global_name"`
	Avatar               *string            `json:"avatar"`
	Bot                  bool               `json:"bot"`
	System               bool               `json:"system"`
	PublicFlags          int                `json:"public_flags"`
	Banner               *string            `json:"banner"`
	AccentColor          *int               `json:"accent_color"`
	AvatarDecorationData *bAvatarDecoration `json:"avatar_decoration_data"`
	PrimaryGuild         *bPrimaryGuild     `json:"primary_guild"`
	Member               *bMember           `json:"member"` // in mentions
}

type bAvatarDecoration struct {
	Asset     string     `json:"asset"`
	SKUID     string     `json:"sku_id"`
	ExpiresAt *time.Time `json:"expires_at"`
}

type bPrimaryGuild struct {
	IdentityGuildID *string `json:"identity_guild_id"`
	IdentityEnabled *bool   `json:"identity_enabled"`
	Tag             *string `json:"tag"`
	Badge           *string `json:"badge"`
}

type bMember struct {
	GuildID                    string     `json:"guild_id"`
	User                       *bUser     `json:"user"`
	Nick                       *string    `json:"nick"`
	Avatar                     *string    `json:"avatar"`
	Banner                     *string    `json:"banner"`
	Roles                      []string   `json:"roles"`
	JoinedAt                   time.Time  `json:"joined_at"`
	PremiumSince               *time.Time `json:"premium_since"`
	Deaf                       bool       `json:"deaf"`
	Mute                       bool       `json:"mute"`
	Flags                      int        `json:"flags"`
	Pending                    bool       `json:"pending"`
	Permissions                *string    `json:"permissions"`
	CommunicationDisabledUntil *time.Time `json:"communication_disabled_until"`
}

type bImage struct {
	URL      string `json:"url"`
	ProxyURL string `json:"proxy_url"`
	Width    int    `json:"width"`
	Height   int    `json:"height"`
	Flags    int    `json:"flags"`
}

type bEmbedField struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline"`
}

type bEmbed struct {
	Type        string        `json:"type"`
	Title       string        `json:"title"`
	Description string        `json:"description"`
	URL         string        `json:"url"`
	Timestamp   *time.Time    `json:"timestamp"`
	Color       int           `json:"color"`
	Footer      *bEmbedFooter `json:"footer"`
	Image       *bImage       `json:"image"`
	Thumbnail   *bImage       `json:"thumbnail"`
	Video       *bImage       `json:"video"`
	Provider    *bNamedURL    `json:"provider"`
	Author      *bNamedURL    `json:"author"`
	Fields      []bEmbedField `json:"fields"`
}

type bEmbedFooter struct {
	Text         string `json:"text"`
	IconURL      string `json:"icon_url"`
	ProxyIconURL string `json:"proxy_icon_url"`
}

type bNamedURL struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

type bAttachment struct {
	ID          string `json:"id"`
	Filename    string `json:"filename"`
	Size        int    `json:"size"`
	URL         string `json:"url"`
	ProxyURL    string `json:"proxy_url"`
	Width       *int   `json:"width"`
	Height      *int   `json:"height"`
	ContentType string `json:"content_type"`
	Ephemeral   bool   `json:"ephemeral"`
	Flags       int    `json:"flags"`
}

type bMessageReference struct {
	Type      int    `json:"type"`
	MessageID string `json:"message_id"`
	ChannelID string `json:"channel_id"`
	GuildID   string `json:"guild_id"`
}

type bReaction struct {
	Count int    `json:"count"`
	Me    bool   `json:"me"`
	Emoji bEmoji `json:"emoji"`
}

type bMessage struct {
	ID                string             `json:"id"`
	ChannelID         string             `json:"channel_id"`
	GuildID           string             `json:"guild_id"`
	Author            *bUser             `json:"author"`
	Member            *bMember           `json:"member"`
	Content           string             `json:"content"`
	Timestamp         time.Time          `json:"timestamp"`
	EditedTimestamp   *time.Time         `json:"edited_timestamp"`
	TTS               bool               `json:"tts"`
	MentionEveryone   bool               `json:"mention_everyone"`
	Mentions          []*bUser           `json:"mentions"`
	MentionRoles      []string           `json:"mention_roles"`
	Attachments       []*bAttachment     `json:"attachments"`
	Embeds            []*bEmbed          `json:"embeds"`
	Reactions         []*bReaction       `json:"reactions"`
	Nonce             string             `json:"nonce"`
	Pinned            bool               `json:"pinned"`
	WebhookID         string             `json:"webhook_id"`
	Type              int                `json:"type"`
	Flags             int                `json:"flags"`
	ChannelType       int                `json:"channel_type"`
	MessageReference  *bMessageReference `json:"message_reference"`
	ReferencedMessage *bMessage          `json:"referenced_message"`
	Components        []map[string]any   `json:"components"`
}

type bOverwrite struct {
	ID    string `json:"id"`
	Type  int    `json:"type"`
	Allow string `json:"allow"`
	Deny  string `json:"deny"`
}

type bThreadMetadata struct {
	Archived            bool       `json:"archived"`
	AutoArchiveDuration int        `json:"auto_archive_duration"`
	ArchiveTimestamp    time.Time  `json:"archive_timestamp"`
	Locked              bool       `json:"locked"`
	Invitable           bool       `json:"invitable"`
	CreateTimestamp     *time.Time `json:"create_timestamp"`
}

type bChannel struct {
	ID                   string           `json:"id"`
	Type                 int              `json:"type"`
	GuildID              string           `json:"guild_id"`
	Position             int              `json:"position"`
	PermissionOverwrites []bOverwrite     `json:"permission_overwrites"`
	Name                 string           `json:"name"`
	Topic                *string          `json:"topic"`
	NSFW                 bool             `json:"nsfw"`
	LastMessageID        *string          `json:"last_message_id"`
	Bitrate              int              `json:"bitrate"`
	UserLimit            int              `json:"user_limit"`
	RateLimitPerUser     int              `json:"rate_limit_per_user"`
	ParentID             *string          `json:"parent_id"`
	OwnerID              string           `json:"owner_id"`
	LastPinTimestamp     *time.Time       `json:"last_pin_timestamp"`
	RTCRegion            *string          `json:"rtc_region"`
	MessageCount         int              `json:"message_count"`
	MemberCount          int              `json:"member_count"`
	ThreadMetadata       *bThreadMetadata `json:"thread_metadata"`
	Flags                int              `json:"flags"`
}

type bRoleTags struct {
	BotID         *string `json:"bot_id"`
	IntegrationID *string `json:"integration_id"`
}

type bRole struct {
	ID           string     `json:"id"`
	Name         string     `json:"name"`
	Color        int        `json:"color"`
	Hoist        bool       `json:"hoist"`
	Icon         *string    `json:"icon"`
	UnicodeEmoji *string    `json:"unicode_emoji"`
	Position     int        `json:"position"`
	Permissions  string     `json:"permissions"`
	Managed      bool       `json:"managed"`
	Mentionable  bool       `json:"mentionable"`
	Flags        int        `json:"flags"`
	Tags         *bRoleTags `json:"tags"`
}

type bEmoji struct {
	ID            *string  `json:"id"`
	Name          string   `json:"name"`
	Roles         []string `json:"roles"`
	RequireColons bool     `json:"require_colons"`
	Managed       bool     `json:"managed"`
	Animated      bool     `json:"animated"`
	Available     bool     `json:"available"`
}

type bSticker struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Tags        string `json:"tags"`
	Type        int    `json:"type"`
	FormatType  int    `json:"format_type"`
	Available   bool   `json:"available"`
	GuildID     string `json:"guild_id"`
}

type bVoiceState struct {
	GuildID                 string     `json:"guild_id"`
	ChannelID               *string    `json:"channel_id"`
	UserID                  string     `json:"user_id"`
	SessionID               string     `json:"session_id"`
	Deaf                    bool       `json:"deaf"`
	Mute                    bool       `json:"mute"`
	SelfDeaf                bool       `json:"self_deaf"`
	SelfMute                bool       `json:"self_mute"`
	SelfStream              bool       `json:"self_stream"`
	SelfVideo               bool       `json:"self_video"`
	Suppress                bool       `json:"suppress"`
	RequestToSpeakTimestamp *time.Time `json:"request_to_speak_timestamp"`
}

type bTimestamps struct {
	Start int64 `json:"start"`
	End   int64 `json:"end"`
}

type bAssets struct {
	LargeImage string `json:"large_image"`
	LargeText  string `json:"large_text"`
	SmallImage string `json:"small_image"`
	SmallText  string `json:"small_text"`
}

type bParty struct {
	ID   string `json:"id"`
	Size []int  `json:"size"`
}

type bActivity struct {
	Name          string       `json:"name"`
	Type          int          `json:"type"`
	URL           *string      `json:"url"`
	CreatedAt     int64        `json:"created_at"`
	Timestamps    *bTimestamps `json:"timestamps"`
	ApplicationID string       `json:"application_id"`
	Details       *string      `json:"details"`
	State         *string      `json:"state"`
	Emoji         *bEmoji      `json:"emoji"`
	Party         *bParty      `json:"party"`
	Assets        *bAssets     `json:"assets"`
	SyncID        string       `json:"sync_id"`
	SessionID     string       `json:"session_id"`
	Flags         int          `json:"flags"`
	ID            string       `json:"id"`
}

type bClientStatus struct {
	Desktop string `json:"desktop"`
	Mobile  string `json:"mobile"`
	Web     string `json:"web"`
}

type bPresenceUpdate struct {
	User         struct{ ID string } `json:"user"`
	GuildID      string              `json:"guild_id"`
	Status       string              `json:"status"`
	Activities   []*bActivity        `json:"activities"`
	ClientStatus bClientStatus       `json:"client_status"`
}

type bTypingStart struct {
	ChannelID string   `json:"channel_id"`
	GuildID   string   `json:"guild_id"`
	UserID    string   `json:"user_id"`
	Timestamp int64    `json:"timestamp"`
	Member    *bMember `json:"member"`
}

type bGuild struct {
	ID                          string             `json:"id"`
	Name                        string             `json:"name"`
	Icon                        *string            `json:"icon"`
	Description                 *string            `json:"description"`
	Splash                      *string            `json:"splash"`
	DiscoverySplash             *string            `json:"discovery_splash"`
	Banner                      *string            `json:"banner"`
	OwnerID                     string             `json:"owner_id"`
	ApplicationID               *string            `json:"application_id"`
	AFKChannelID                *string            `json:"afk_channel_id"`
	AFKTimeout                  int                `json:"afk_timeout"`
	SystemChannelID             *string            `json:"system_channel_id"`
	SystemChannelFlags          int                `json:"system_channel_flags"`
	WidgetEnabled               bool               `json:"widget_enabled"`
	VerificationLevel           int                `json:"verification_level"`
	DefaultMessageNotifications int                `json:"default_message_notifications"`
	ExplicitContentFilter       int                `json:"explicit_content_filter"`
	MFALevel                    int                `json:"mfa_level"`
	PremiumTier                 int                `json:"premium_tier"`
	PremiumSubscriptionCount    int                `json:"premium_subscription_count"`
	PreferredLocale             string             `json:"preferred_locale"`
	RulesChannelID              *string            `json:"rules_channel_id"`
	PublicUpdatesChannelID      *string            `json:"public_updates_channel_id"`
	SafetyAlertsChannelID       *string            `json:"safety_alerts_channel_id"`
	MaxMembers                  int                `json:"max_members"`
	MaxVideoChannelUsers        int                `json:"max_video_channel_users"`
	VanityURLCode               *string            `json:"vanity_url_code"`
	NSFWLevel                   int                `json:"nsfw_level"`
	PremiumProgressBarEnabled   bool               `json:"premium_progress_bar_enabled"`
	Features                    []string           `json:"features"`
	Roles                       []*bRole           `json:"roles"`
	Emojis                      []*bEmoji          `json:"emojis"`
	Stickers                    []*bSticker        `json:"stickers"`
	Channels                    []*bChannel        `json:"channels"`
	Threads                     []*bChannel        `json:"threads"`
	Members                     []*bMember         `json:"members"`
	Presences                   []*bPresenceUpdate `json:"presences"`
	VoiceStates                 []*bVoiceState     `json:"voice_states"`
	JoinedAt                    time.Time          `json:"joined_at"`
	Large                       bool               `json:"large"`
	Unavailable                 bool               `json:"unavailable"`
	MemberCount                 int                `json:"member_count"`
}
