package cordkit

import (
	"encoding/json"
	"time"
)

// The models below cover the small core the typed REST helpers and the
// examples need. Fields follow Discord's names; IDs are snowflake strings.
// Unknown fields are ignored on decode.

// User is a Discord user.
type User struct {
	ID            string  `json:"id"`
	Username      string  `json:"username"`
	Discriminator string  `json:"discriminator,omitempty"`
	GlobalName    *string `json:"global_name,omitempty"`
	Avatar        *string `json:"avatar,omitempty"`
	Bot           bool    `json:"bot,omitempty"`
}

// Channel is a guild or DM channel.
type Channel struct {
	ID       string  `json:"id"`
	Type     int     `json:"type"`
	GuildID  string  `json:"guild_id,omitempty"`
	Name     string  `json:"name,omitempty"`
	Topic    *string `json:"topic,omitempty"`
	Position int     `json:"position,omitempty"`
	ParentID *string `json:"parent_id,omitempty"`
	NSFW     bool    `json:"nsfw,omitempty"`
}

// Attachment is a file attached to a message.
type Attachment struct {
	ID          string `json:"id"`
	Filename    string `json:"filename"`
	Size        int    `json:"size"`
	URL         string `json:"url,omitempty"`
	ContentType string `json:"content_type,omitempty"`
}

// EmbedField is one field of an Embed.
type EmbedField struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline,omitempty"`
}

// Embed is rich message content.
type Embed struct {
	Title       string       `json:"title,omitempty"`
	Description string       `json:"description,omitempty"`
	URL         string       `json:"url,omitempty"`
	Color       int          `json:"color,omitempty"`
	Fields      []EmbedField `json:"fields,omitempty"`
}

// MessageReference points at a message, for replies.
type MessageReference struct {
	MessageID string `json:"message_id,omitempty"`
	ChannelID string `json:"channel_id,omitempty"`
	GuildID   string `json:"guild_id,omitempty"`
}

// Message is a message in a channel.
type Message struct {
	ID               string            `json:"id"`
	ChannelID        string            `json:"channel_id"`
	GuildID          string            `json:"guild_id,omitempty"`
	Author           User              `json:"author"`
	Content          string            `json:"content"`
	Timestamp        time.Time         `json:"timestamp"`
	EditedTimestamp  *time.Time        `json:"edited_timestamp,omitempty"`
	Attachments      []Attachment      `json:"attachments,omitempty"`
	Embeds           []Embed           `json:"embeds,omitempty"`
	Type             int               `json:"type"`
	Nonce            json.RawMessage   `json:"nonce,omitempty"`
	MessageReference *MessageReference `json:"message_reference,omitempty"`
}

// AllowedMentions says whom a message may ping.
type AllowedMentions struct {
	Parse       []string `json:"parse"`
	Users       []string `json:"users,omitempty"`
	Roles       []string `json:"roles,omitempty"`
	RepliedUser bool     `json:"replied_user,omitempty"`
}
