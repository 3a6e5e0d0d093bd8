package mockdiscord

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// discordEpoch is the snowflake epoch, 2015-01-01T00:00:00Z, in Unix ms.
const discordEpoch = 1420070400000

// idBase is the time the snowflake generator starts from: 2024-01-01 UTC.
// IDs encode idBase plus the time elapsed since New, so they are the same
// on every run inside a testing/synctest bubble (whose clock starts in
// 2000, before Discord's epoch) and increase with time outside one.
var idBase = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// snowflakes generates strictly increasing snowflake IDs.
type snowflakes struct {
	start time.Time // time.Now() at New
	last  uint64
	inc   uint64
}

// next returns a new ID for the moment now.
func (g *snowflakes) next(now time.Time) string {
	elapsed := now.Sub(g.start)
	if elapsed < 0 {
		elapsed = 0
	}
	ms := uint64(idBase.Add(elapsed).UnixMilli() - discordEpoch)
	g.inc = (g.inc + 1) & 0xFFF
	id := ms<<22 | 1<<17 | g.inc // worker 1, process 0
	if id <= g.last {
		id = g.last + 1
	}
	g.last = id
	return strconv.FormatUint(id, 10)
}

// SnowflakeTime returns the time encoded in a snowflake ID, or the zero
// Time for a string that is not one. The mock's IDs encode 2024-01-01
// plus the time elapsed since New, not the wall clock; see [Message.Timestamp]
// for the wall-clock creation time.
func SnowflakeTime(id string) time.Time {
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(int64(n>>22) + discordEpoch).UTC()
}

// userIDFromToken decodes the user ID from the first part of a bot token,
// or returns the ID of DefaultToken.
func userIDFromToken(token string) string {
	first, _, _ := strings.Cut(token, ".")
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding, base64.StdEncoding, base64.URLEncoding} {
		b, err := enc.DecodeString(first)
		if err != nil || len(b) == 0 || len(b) > 20 {
			continue
		}
		if _, err := strconv.ParseUint(string(b), 10, 64); err == nil {
			return string(b)
		}
	}
	return "111111111111111111"
}

// BotUsername is the username of the bot user in the fake world.
const BotUsername = "cordkit-mock"

// Guild is a guild of the fake world.
type Guild struct {
	// ID is the guild's snowflake.
	ID string
	// Name is "mock-guild-N", N counting from 1.
	Name string
	// ChannelIDs lists the guild's text channels in order.
	ChannelIDs []string
}

// Channel is a guild text channel of the fake world.
type Channel struct {
	// ID is the channel's snowflake.
	ID string
	// GuildID is the guild the channel belongs to.
	GuildID string
	// Name is "channel-N", N counting from 1 within the guild.
	Name string
	// Position is the channel's index within its guild.
	Position int
}

// Webhook is an incoming webhook of the fake world: every channel has one.
// Execute it with POST /webhooks/{ID}/{Token}.
type Webhook struct {
	// ID is the webhook's snowflake.
	ID string
	// Token is the webhook's secret token.
	Token string
	// ChannelID is the channel it posts to.
	ChannelID string
	// GuildID is that channel's guild.
	GuildID string
	// Name is the webhook's default username.
	Name string
}

// Attachment is a file uploaded with a message (multipart part files[n]).
type Attachment struct {
	// ID is the attachment's snowflake.
	ID string
	// Filename is the part's file name, or the filename given for it in
	// payload_json's attachments array.
	Filename string
	// Description is the description given in payload_json, if any.
	Description string
	// ContentType is the part's Content-Type, default
	// application/octet-stream.
	ContentType string
	// Size is the length of Data.
	Size int
	// Data is the uploaded content.
	Data []byte
}

// Reaction is one emoji on a message and who put it there.
type Reaction struct {
	// Emoji is the emoji as given in the path: a Unicode emoji, or
	// name:id for a custom one.
	Emoji string
	// UserIDs lists the users who reacted, in order.
	UserIDs []string
}

// Message is a message of the fake world, as the mock stores it. The REST
// API renders it as a Discord message object.
type Message struct {
	// ID is the message's snowflake.
	ID string
	// ChannelID and GuildID say where the message is.
	ChannelID, GuildID string
	// Content is the text of the message.
	Content string
	// AuthorID and AuthorName identify the author: the bot, a simulated
	// user (POST /_mock/messages), or a webhook.
	AuthorID, AuthorName string
	// AuthorBot reports that the author is a bot (or a webhook).
	AuthorBot bool
	// WebhookID is set for messages sent through a webhook or an
	// interaction follow-up.
	WebhookID string
	// Timestamp is the wall-clock (time.Now) creation time.
	Timestamp time.Time
	// EditedTimestamp is when the message was last edited, zero if never.
	EditedTimestamp time.Time
	// TTS is the tts flag it was sent with.
	TTS bool
	// Nonce is the nonce it was sent with, as JSON text ("" if none).
	Nonce string
	// Flags is the message flags field.
	Flags int
	// Embeds holds the embeds as sent, one raw JSON object each.
	Embeds []json.RawMessage
	// Components holds the components as sent.
	Components []json.RawMessage
	// Attachments are the uploaded files.
	Attachments []Attachment
	// Reactions lists the reactions in the order they were first added.
	Reactions []Reaction
}

// clone returns a deep copy of m.
func (m *Message) clone() Message {
	c := *m
	c.Embeds = append([]json.RawMessage(nil), m.Embeds...)
	c.Components = append([]json.RawMessage(nil), m.Components...)
	c.Attachments = append([]Attachment(nil), m.Attachments...)
	c.Reactions = make([]Reaction, len(m.Reactions))
	for i, r := range m.Reactions {
		c.Reactions[i] = Reaction{Emoji: r.Emoji, UserIDs: append([]string(nil), r.UserIDs...)}
	}
	if len(m.Reactions) == 0 {
		c.Reactions = nil
	}
	return c
}

// world is the fake Discord: guilds, channels, webhooks and messages.
// Guarded by Server.mu.
type world struct {
	botID    string
	guilds   []*Guild
	guildIdx map[string]*Guild
	channels []*Channel
	chanIdx  map[string]*Channel
	webhooks []*Webhook
	hookIdx  map[string]*Webhook
	messages map[string][]*Message // channel ID -> oldest first
	msgIdx   map[string]*Message
	acked    map[string]bool   // interaction IDs already answered
	users    map[string]string // simulated user ID -> username
	ids      snowflakes
}

func newWorld(c *config, now time.Time) *world {
	w := &world{
		botID:    userIDFromToken(c.Token),
		guildIdx: map[string]*Guild{},
		chanIdx:  map[string]*Channel{},
		hookIdx:  map[string]*Webhook{},
		users:    map[string]string{},
		ids:      snowflakes{start: now},
	}
	for g := 1; g <= c.Guilds; g++ {
		guild := &Guild{ID: guildSnowflake(g - 1), Name: "mock-guild-" + strconv.Itoa(g)}
		w.guilds = append(w.guilds, guild)
		w.guildIdx[guild.ID] = guild
		for n := 1; n <= c.ChannelsPerGuild; n++ {
			ch := &Channel{ID: w.ids.next(now), GuildID: guild.ID, Name: "channel-" + strconv.Itoa(n), Position: n - 1}
			guild.ChannelIDs = append(guild.ChannelIDs, ch.ID)
			w.channels = append(w.channels, ch)
			w.chanIdx[ch.ID] = ch
		}
	}
	for i, ch := range w.channels {
		h := &Webhook{ID: w.ids.next(now), Token: "mock-webhook-token-" + strconv.Itoa(i+1), ChannelID: ch.ID, GuildID: ch.GuildID, Name: "mock-webhook-" + strconv.Itoa(i+1)}
		w.webhooks = append(w.webhooks, h)
		w.hookIdx[h.ID] = h
	}
	w.clearMessages()
	return w
}

func (w *world) clearMessages() {
	w.messages = map[string][]*Message{}
	w.msgIdx = map[string]*Message{}
	w.acked = map[string]bool{}
}

// add stores m, giving it an ID and timestamp.
func (w *world) add(m *Message, now time.Time) {
	m.ID = w.ids.next(now)
	m.Timestamp = now
	w.messages[m.ChannelID] = append(w.messages[m.ChannelID], m)
	w.msgIdx[m.ID] = m
}

// message returns the message with id in channel, or nil.
func (w *world) message(channelID, id string) *Message {
	m := w.msgIdx[id]
	if m == nil || m.ChannelID != channelID {
		return nil
	}
	return m
}

func (w *world) remove(m *Message) {
	delete(w.msgIdx, m.ID)
	list := w.messages[m.ChannelID]
	for i, x := range list {
		if x == m {
			w.messages[m.ChannelID] = append(list[:i:i], list[i+1:]...)
			break
		}
	}
}

// userJSON renders a user object.
func userJSON(id, name string, bot bool) map[string]any {
	u := map[string]any{
		"id": id, "username": name, "discriminator": "0", "global_name": nil,
		"avatar": nil, "public_flags": 0,
	}
	if bot {
		u["bot"] = true
	}
	return u
}

func (w *world) botUserJSON() map[string]any {
	u := userJSON(w.botID, BotUsername, true)
	u["verified"] = true
	u["mfa_enabled"] = false
	u["flags"] = 0
	u["locale"] = "en-US"
	return u
}

// timestamp formats t as Discord does: 2025-07-01T12:00:30.456000+00:00.
func timestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000") + "+00:00"
}

func (w *world) messageJSON(m *Message) map[string]any {
	var edited any
	if !m.EditedTimestamp.IsZero() {
		edited = timestamp(m.EditedTimestamp)
	}
	atts := make([]any, 0, len(m.Attachments))
	for _, a := range m.Attachments {
		url := "https://cdn.discordapp.com/attachments/" + m.ChannelID + "/" + a.ID + "/" + a.Filename
		att := map[string]any{
			"id": a.ID, "filename": a.Filename, "size": a.Size, "url": url,
			"proxy_url":    strings.Replace(url, "cdn.discordapp.com", "media.discordapp.net", 1),
			"content_type": a.ContentType,
		}
		if a.Description != "" {
			att["description"] = a.Description
		}
		atts = append(atts, att)
	}
	embeds := make([]json.RawMessage, 0, len(m.Embeds))
	embeds = append(embeds, m.Embeds...)
	comps := make([]json.RawMessage, 0, len(m.Components))
	comps = append(comps, m.Components...)
	out := map[string]any{
		"id": m.ID, "channel_id": m.ChannelID, "type": 0,
		"author":    userJSON(m.AuthorID, m.AuthorName, m.AuthorBot),
		"content":   m.Content,
		"timestamp": timestamp(m.Timestamp), "edited_timestamp": edited,
		"tts": m.TTS, "mention_everyone": false, "mentions": []any{}, "mention_roles": []any{},
		"attachments": atts, "embeds": embeds, "components": comps,
		"pinned": false, "flags": m.Flags,
	}
	if m.GuildID != "" {
		out["guild_id"] = m.GuildID
	}
	if m.WebhookID != "" {
		out["webhook_id"] = m.WebhookID
	}
	if m.Nonce != "" {
		out["nonce"] = json.RawMessage(m.Nonce)
	}
	if len(m.Reactions) > 0 {
		rs := make([]any, 0, len(m.Reactions))
		for _, r := range m.Reactions {
			me := false
			for _, u := range r.UserIDs {
				me = me || u == w.botID
			}
			rs = append(rs, map[string]any{
				"count": len(r.UserIDs), "count_details": map[string]int{"burst": 0, "normal": len(r.UserIDs)},
				"me": me, "me_burst": false, "burst_colors": []string{}, "emoji": emojiJSON(r.Emoji),
			})
		}
		out["reactions"] = rs
	}
	return out
}

func emojiJSON(e string) map[string]any {
	if name, id, ok := strings.Cut(e, ":"); ok {
		return map[string]any{"id": id, "name": name}
	}
	return map[string]any{"id": nil, "name": e}
}

func (w *world) channelJSON(ch *Channel) map[string]any {
	var last any
	if list := w.messages[ch.ID]; len(list) > 0 {
		last = list[len(list)-1].ID
	}
	return map[string]any{
		"id": ch.ID, "type": 0, "guild_id": ch.GuildID, "name": ch.Name, "position": ch.Position,
		"permission_overwrites": []any{}, "topic": nil, "nsfw": false, "last_message_id": last,
		"rate_limit_per_user": 0, "parent_id": nil, "last_pin_timestamp": nil, "flags": 0,
	}
}

func (w *world) guildJSON(g *Guild, withCounts bool) map[string]any {
	var system any
	if len(g.ChannelIDs) > 0 {
		system = g.ChannelIDs[0]
	}
	out := map[string]any{
		"id": g.ID, "name": g.Name, "icon": nil, "icon_hash": nil, "splash": nil, "discovery_splash": nil,
		"owner_id": w.botID, "afk_channel_id": nil, "afk_timeout": 300,
		"verification_level": 0, "default_message_notifications": 0, "explicit_content_filter": 0,
		"roles": []any{map[string]any{
			"id": g.ID, "name": "@everyone", "color": 0, "hoist": false, "icon": nil, "unicode_emoji": nil,
			"position": 0, "permissions": "2248473465835073", "managed": false, "mentionable": false, "flags": 0,
		}},
		"emojis": []any{}, "stickers": []any{}, "features": []string{}, "mfa_level": 0, "application_id": nil,
		"system_channel_id": system, "system_channel_flags": 0, "rules_channel_id": nil,
		"vanity_url_code": nil, "description": nil, "banner": nil, "premium_tier": 0,
		"preferred_locale": "en-US", "public_updates_channel_id": nil, "nsfw_level": 0,
		"premium_progress_bar_enabled": false, "safety_alerts_channel_id": nil,
	}
	if withCounts {
		out["approximate_member_count"] = 1
		out["approximate_presence_count"] = 1
	}
	return out
}
