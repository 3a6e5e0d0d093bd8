package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// The gateway scenario's event mix: generated once per process by a
// seeded generator, so every library and every run gets the same bytes.
// Shapes follow what Discord sends for API v10 (field names, nullable
// fields sent as null, snowflakes as strings, ISO 8601 timestamps with
// microseconds, activity timestamps in Unix milliseconds), with sizes
// drawn from plausible distributions: most messages short, some long, some
// replies (which carry the whole referenced message), some embeds and
// attachments; presences with game, custom-status and Spotify activities.

// gwEvent is one dispatch: its name and the JSON of d.
type gwEvent struct {
	name string
	data []byte
}

// Event names of the mix.
const (
	evMessageCreate     = "MESSAGE_CREATE"
	evGuildCreate       = "GUILD_CREATE"
	evPresenceUpdate    = "PRESENCE_UPDATE"
	evTypingStart       = "TYPING_START"
	evGuildMemberUpdate = "GUILD_MEMBER_UPDATE"
)

// gwMixPerMille is the share of each event per 1,000 dispatches, roughly
// what a bot in mid-size guilds with the presence and member intents sees:
// presences dominate, then messages, typing and member updates, and a
// large GUILD_CREATE now and then (a join, or an outage ending). Every mix
// of at least 1 event has at least one GUILD_CREATE.
var gwMixPerMille = []struct {
	name string
	n    int
}{
	{evPresenceUpdate, 449},
	{evMessageCreate, 250},
	{evTypingStart, 150},
	{evGuildMemberUpdate, 150},
	{evGuildCreate, 1},
}

// gwSeed seeds the generator.
const gwSeed = 20261123

// Sizes of a large guild's GUILD_CREATE: a guild of tens of thousands of
// members above large_threshold, so members and presences hold the online
// part Discord sends, with the usual channels, roles and emojis.
const (
	gcMembers   = 250
	gcPresences = 250
	gcChannels  = 120
	gcRoles     = 80
	gcEmojis    = 60
	gcStickers  = 10
	gcThreads   = 25
	gcVoice     = 12
)

// genEvents returns n events of the mix, in a deterministic shuffled order.
func genEvents(n int) []gwEvent {
	g := newGen(gwSeed)
	names := make([]string, 0, n)
	for _, m := range gwMixPerMille {
		k := n * m.n / 1000
		if m.name == evGuildCreate {
			k = max(k, 1)
		}
		for range k {
			names = append(names, m.name)
		}
	}
	for len(names) < n {
		names = append(names, evPresenceUpdate)
	}
	names = names[:n]
	if !containsName(names, evGuildCreate) && n > 0 {
		names[0] = evGuildCreate
	}
	g.r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	out := make([]gwEvent, n)
	for i, name := range names {
		var d any
		switch name {
		case evMessageCreate:
			d = g.messageCreate()
		case evGuildCreate:
			d = g.guildCreate()
		case evPresenceUpdate:
			d = g.presenceUpdate(g.guild())
		case evTypingStart:
			d = g.typingStart()
		case evGuildMemberUpdate:
			d = g.memberUpdate()
		}
		b, err := json.Marshal(d)
		if err != nil {
			panic(fmt.Sprintf("bench: generating %s: %v", name, err))
		}
		out[i] = gwEvent{name: name, data: b}
	}
	return out
}

func containsName(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

type obj = map[string]any

// gen is the seeded generator and its small fake world: guilds with
// channels and roles, and a pool of users.
type gen struct {
	r      *rand.Rand
	snow   uint64 // next snowflake
	now    time.Time
	guilds []genGuild
	users  []genUser
}

type genGuild struct {
	id       string
	channels []string
	roles    []string
}

type genUser struct {
	id, name, global string
	avatar           string
	bot              bool
}

func newGen(seed uint64) *gen {
	g := &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	g.snow = uint64(g.now.Add(-2*365*24*time.Hour).UnixMilli()-1420070400000) << 22
	for range 40 {
		gg := genGuild{id: g.id()}
		for range 20 + g.r.IntN(40) {
			gg.channels = append(gg.channels, g.id())
		}
		for range 10 + g.r.IntN(40) {
			gg.roles = append(gg.roles, g.id())
		}
		g.guilds = append(g.guilds, gg)
	}
	for range 5000 {
		name := g.word(4, 14)
		u := genUser{id: g.id(), name: strings.ToLower(name), global: name, bot: g.r.IntN(50) == 0}
		if g.r.IntN(5) > 0 {
			u.avatar = g.hash()
		}
		if g.r.IntN(3) == 0 {
			u.global = name + " " + g.word(3, 8)
		}
		g.users = append(g.users, u)
	}
	return g
}

// id returns a new snowflake, a few milliseconds after the last one.
func (g *gen) id() string {
	g.snow += uint64(1+g.r.IntN(5000)) << 22
	g.snow += uint64(g.r.IntN(1 << 12))
	return strconv.FormatUint(g.snow, 10)
}

func (g *gen) hash() string {
	const hex = "0123456789abcdef"
	var b [32]byte
	for i := range b {
		b[i] = hex[g.r.IntN(16)]
	}
	if g.r.IntN(10) == 0 {
		return "a_" + string(b[:])
	}
	return string(b[:])
}

const letters = "abcdefghijklmnopqrstuvwxyz"

func (g *gen) word(lo, hi int) string {
	n := lo + g.r.IntN(hi-lo+1)
	b := make([]byte, n)
	for i := range b {
		b[i] = letters[g.r.IntN(len(letters))]
	}
	b[0] -= 'a' - 'A'
	return string(b)
}

var sampleWords = strings.Fields(`the a to and of is it you that in i for this on with be have just was not
are so but what like my do can if at get me your all no we it's they don't know one yeah lol think about how
out good time now would there up more when really people then here game server bot channel role update fix
patch tonight tomorrow gg anyone voice stream build deploy 🎉 😂 👍 ❤️ version ping check docs link please thanks`)

// text returns a message-like string of about n bytes.
func (g *gen) text(n int) string {
	var b strings.Builder
	for b.Len() < n {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(sampleWords[g.r.IntN(len(sampleWords))])
	}
	return b.String()
}

// contentLen draws a message length: mostly short, a tail up to 2,000.
func (g *gen) contentLen() int {
	switch p := g.r.IntN(100); {
	case p < 55:
		return 5 + g.r.IntN(40)
	case p < 85:
		return 40 + g.r.IntN(160)
	case p < 97:
		return 200 + g.r.IntN(600)
	default:
		return 800 + g.r.IntN(1200)
	}
}

func (g *gen) ts(back time.Duration) string {
	t := g.now.Add(-time.Duration(g.r.Int64N(int64(back) + 1)))
	return t.Format("2006-01-02T15:04:05.000000+00:00")
}

func (g *gen) guild() *genGuild { return &g.guilds[g.r.IntN(len(g.guilds))] }
func (g *gen) user() *genUser   { return &g.users[g.r.IntN(len(g.users))] }

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (g *gen) userJSON(u *genUser) obj {
	o := obj{
		"id": u.id, "username": u.name, "global_name": u.global, "discriminator": "0",
		"avatar": nullable(u.avatar), "public_flags": []int{0, 0, 0, 64, 128, 256, 4194304}[g.r.IntN(7)],
		"avatar_decoration_data": nil, "collectibles": nil, "display_name_styles": nil, "primary_guild": nil, "clan": nil,
	}
	if u.bot {
		o["bot"] = true
		o["global_name"] = nil
	}
	if g.r.IntN(8) == 0 {
		o["avatar_decoration_data"] = obj{"asset": "a_" + g.hash()[2:], "sku_id": g.id(), "expires_at": nil}
	}
	if g.r.IntN(6) == 0 {
		tag := strings.ToUpper(g.word(3, 4))
		o["primary_guild"] = obj{"identity_guild_id": g.guild().id, "identity_enabled": true, "tag": tag, "badge": g.hash()}
		o["clan"] = o["primary_guild"]
	}
	return o
}

// memberJSON is a guild member; withUser embeds the user object.
func (g *gen) memberJSON(gg *genGuild, u *genUser, withUser bool) obj {
	roles := []string{}
	for range g.r.IntN(6) {
		roles = append(roles, gg.roles[g.r.IntN(len(gg.roles))])
	}
	o := obj{
		"roles": roles, "premium_since": nil, "pending": false, "nick": nil, "mute": false, "deaf": false,
		"joined_at": g.ts(3 * 365 * 24 * time.Hour), "flags": 0, "communication_disabled_until": nil,
		"avatar": nil, "banner": nil,
	}
	if g.r.IntN(4) == 0 {
		o["nick"] = g.word(3, 16)
	}
	if g.r.IntN(12) == 0 {
		o["premium_since"] = g.ts(365 * 24 * time.Hour)
	}
	if g.r.IntN(20) == 0 {
		o["avatar"] = g.hash()
	}
	if withUser {
		o["user"] = g.userJSON(u)
	}
	return o
}

func (g *gen) embed() obj {
	host := strings.ToLower(g.word(4, 10)) + ".com"
	url := "https://" + host + "/" + strings.ToLower(g.word(5, 20)) + "/" + strconv.Itoa(g.r.IntN(1e6))
	w, h := 400+g.r.IntN(880), 200+g.r.IntN(520)
	img := obj{"url": url + ".png", "proxy_url": "https://images-ext-1.discordapp.net/external/" + g.hash() + "/" + url[8:] + ".png",
		"width": w, "height": h, "content_type": "image/png", "placeholder": "3PcJDQJ4h4iIeHiId3eHd4eAeAAAAAA=", "placeholder_version": 1, "flags": 0}
	e := obj{"type": "article", "url": url, "title": g.text(20 + g.r.IntN(60)), "description": g.text(60 + g.r.IntN(240)),
		"color": g.r.IntN(1 << 24), "provider": obj{"name": g.word(4, 10)}, "thumbnail": img, "content_scan_version": 2}
	if g.r.IntN(3) == 0 {
		e["type"] = "rich"
		e["footer"] = obj{"text": g.text(20), "icon_url": url + "/icon.png", "proxy_icon_url": img["proxy_url"]}
		e["author"] = obj{"name": g.word(4, 12), "url": "https://" + host}
		e["timestamp"] = g.ts(24 * time.Hour)
		var fields []obj
		for range 1 + g.r.IntN(5) {
			fields = append(fields, obj{"name": g.text(10), "value": g.text(30 + g.r.IntN(80)), "inline": g.r.IntN(2) == 0})
		}
		e["fields"] = fields
	}
	return e
}

func (g *gen) attachment() obj {
	id := g.id()
	ext, ctype := ".png", "image/png"
	if g.r.IntN(3) == 0 {
		ext, ctype = ".jpg", "image/jpeg"
	}
	name := strings.ToLower(g.word(4, 16)) + ext
	url := "https://cdn.discordapp.com/attachments/" + g.guild().channels[0] + "/" + id + "/" + name + "?ex=67f1a2b3&is=67f05133&hm=" + g.hash() + g.hash()
	return obj{"id": id, "filename": name, "size": 10000 + g.r.IntN(4000000), "url": url,
		"proxy_url": strings.Replace(url, "cdn.discordapp.com", "media.discordapp.net", 1),
		"width":     200 + g.r.IntN(3000), "height": 200 + g.r.IntN(3000), "content_type": ctype,
		"content_scan_version": 2, "placeholder": "YRgKDQKnd3hneIeIeHdneHeICAAAAAA=", "placeholder_version": 1}
}

// message returns a guild message; depth > 0 may make it a reply.
func (g *gen) message(gg *genGuild, ch string, depth int) obj {
	u := g.user()
	m := obj{
		"type": 0, "tts": false, "timestamp": g.ts(time.Minute), "pinned": false, "mention_everyone": false,
		"mentions": []obj{}, "mention_roles": []string{}, "id": g.id(), "flags": 0, "embeds": []obj{},
		"edited_timestamp": nil, "content": g.text(g.contentLen()), "components": []obj{}, "channel_id": ch,
		"author": g.userJSON(u), "attachments": []obj{},
	}
	if g.r.IntN(2) == 0 {
		m["nonce"] = g.id()
	}
	if g.r.IntN(10) == 0 {
		var ms []obj
		for range 1 + g.r.IntN(3) {
			mu := g.user()
			uj := g.userJSON(mu)
			uj["member"] = g.memberJSON(gg, mu, false)
			ms = append(ms, uj)
		}
		m["mentions"] = ms
	}
	if g.r.IntN(10) == 0 {
		var es []obj
		for range 1 + g.r.IntN(2) {
			es = append(es, g.embed())
		}
		m["embeds"] = es
	}
	if g.r.IntN(12) == 0 {
		var as []obj
		for range 1 + g.r.IntN(3) {
			as = append(as, g.attachment())
		}
		m["attachments"] = as
	}
	if g.r.IntN(25) == 0 {
		m["edited_timestamp"] = g.ts(time.Minute)
	}
	if depth > 0 && g.r.IntN(7) == 0 {
		ref := g.message(gg, ch, 0)
		ref["timestamp"] = g.ts(time.Hour)
		m["type"] = 19
		m["message_reference"] = obj{"type": 0, "channel_id": ch, "message_id": ref["id"], "guild_id": gg.id}
		m["referenced_message"] = ref
	}
	return m
}

func (g *gen) messageCreate() obj {
	gg := g.guild()
	ch := gg.channels[g.r.IntN(len(gg.channels))]
	m := g.message(gg, ch, 1)
	m["guild_id"] = gg.id
	m["channel_type"] = 0
	u := &genUser{id: m["author"].(obj)["id"].(string)}
	m["member"] = g.memberJSON(gg, u, false)
	return m
}

func (g *gen) typingStart() obj {
	gg := g.guild()
	u := g.user()
	return obj{"user_id": u.id, "timestamp": g.now.Unix() - int64(g.r.IntN(60)), "member": g.memberJSON(gg, u, true),
		"channel_id": gg.channels[g.r.IntN(len(gg.channels))], "guild_id": gg.id}
}

func (g *gen) memberUpdate() obj {
	gg := g.guild()
	m := g.memberJSON(gg, g.user(), true)
	m["guild_id"] = gg.id
	return m
}

var gameNames = []string{"Minecraft", "Counter-Strike 2", "League of Legends", "Visual Studio Code", "Fortnite", "Valorant", "Rocket League", "Factorio", "Elden Ring", "Stardew Valley"}

func (g *gen) activity() obj {
	start := g.now.Add(-time.Duration(g.r.Int64N(int64(3 * time.Hour)))).UnixMilli()
	switch g.r.IntN(4) {
	case 0: // custom status
		a := obj{"type": 4, "state": g.text(10 + g.r.IntN(40)), "name": "Custom Status", "id": "custom", "created_at": start}
		if g.r.IntN(2) == 0 {
			a["emoji"] = obj{"name": "🔥"}
		}
		return a
	case 1: // Spotify
		return obj{"type": 2, "name": "Spotify", "id": "spotify:1", "flags": 48, "created_at": start,
			"timestamps": obj{"start": start, "end": start + 180000 + g.r.Int64N(120000)},
			"sync_id":    g.word(22, 22), "session_id": g.hash(), "party": obj{"id": "spotify:" + g.user().id},
			"details": g.text(10 + g.r.IntN(30)), "state": g.text(5 + g.r.IntN(20)),
			"assets": obj{"large_image": "spotify:" + g.hash()[:24], "large_text": g.text(10 + g.r.IntN(30))}}
	default: // a game
		a := obj{"type": 0, "name": gameNames[g.r.IntN(len(gameNames))], "id": g.hash()[:16], "created_at": start,
			"timestamps": obj{"start": start}, "application_id": g.id()}
		if g.r.IntN(2) == 0 {
			a["details"], a["state"] = g.text(10+g.r.IntN(20)), g.text(5+g.r.IntN(20))
			a["assets"] = obj{"large_image": g.id(), "large_text": g.text(12), "small_image": g.id(), "small_text": g.text(8)}
		}
		return a
	}
}

func (g *gen) presence(u *genUser) obj {
	statuses := []string{"online", "online", "online", "idle", "dnd"}
	st := statuses[g.r.IntN(len(statuses))]
	cs := obj{}
	switch g.r.IntN(4) {
	case 0:
		cs["mobile"] = st
	case 1:
		cs["desktop"], cs["mobile"] = st, "idle"
	default:
		cs["desktop"] = st
	}
	acts := []obj{}
	for range g.r.IntN(3) {
		acts = append(acts, g.activity())
	}
	return obj{"user": obj{"id": u.id}, "status": st, "client_status": cs, "activities": acts}
}

func (g *gen) presenceUpdate(gg *genGuild) obj {
	p := g.presence(g.user())
	p["guild_id"] = gg.id
	return p
}

var guildFeatures = []string{"COMMUNITY", "NEWS", "ANIMATED_ICON", "BANNER", "INVITE_SPLASH", "VANITY_URL", "ROLE_ICONS",
	"MEMBER_VERIFICATION_GATE_ENABLED", "PREVIEW_ENABLED", "WELCOME_SCREEN_ENABLED", "THREADS_ENABLED", "AUTO_MODERATION",
	"DISCOVERABLE", "SOUNDBOARD", "GUILD_ONBOARDING", "ANIMATED_BANNER", "ENABLED_DISCOVERABLE_BEFORE"}

func (g *gen) overwrites(gg *genGuild) []obj {
	out := []obj{{"id": gg.id, "type": 0, "allow": "0", "deny": "1024"}}
	for range g.r.IntN(4) {
		out = append(out, obj{"id": gg.roles[g.r.IntN(len(gg.roles))], "type": 0,
			"allow": strconv.Itoa(g.r.IntN(1 << 20)), "deny": strconv.Itoa(g.r.IntN(1 << 16))})
	}
	return out
}

// guildCreate returns the GUILD_CREATE of a new large guild.
func (g *gen) guildCreate() obj {
	gg := genGuild{id: g.id()}
	for range gcRoles {
		gg.roles = append(gg.roles, g.id())
	}
	var roles []obj
	for i, id := range gg.roles {
		r := obj{"id": id, "name": g.word(3, 16), "color": g.r.IntN(1 << 24), "colors": obj{"primary_color": 0, "secondary_color": nil, "tertiary_color": nil},
			"hoist": g.r.IntN(4) == 0, "icon": nil, "unicode_emoji": nil, "position": i + 1,
			"permissions": strconv.FormatUint(g.r.Uint64()>>14, 10), "managed": false, "mentionable": g.r.IntN(3) == 0, "flags": 0}
		if g.r.IntN(10) == 0 {
			r["managed"] = true
			r["tags"] = obj{"bot_id": g.id()}
		}
		roles = append(roles, r)
	}
	roles[0]["id"], roles[0]["name"], roles[0]["position"] = gg.id, "@everyone", 0
	var channels []obj
	var cats []string
	for i := range gcChannels {
		id := g.id()
		gg.channels = append(gg.channels, id)
		c := obj{"id": id, "type": 0, "position": i, "permission_overwrites": g.overwrites(&gg), "name": strings.ToLower(g.word(3, 20)),
			"flags": 0, "version": g.now.UnixMilli() - g.r.Int64N(1e10)}
		switch {
		case i%12 == 0:
			c["type"] = 4
			cats = append(cats, id)
		case i%12 == 11:
			c["type"], c["bitrate"], c["user_limit"], c["rtc_region"] = 2, 64000, 0, nil
			c["parent_id"] = cats[len(cats)-1]
			c["last_message_id"], c["rate_limit_per_user"], c["nsfw"] = nil, 0, false
		default:
			c["parent_id"] = cats[len(cats)-1]
			c["topic"] = nil
			if g.r.IntN(2) == 0 {
				c["topic"] = g.text(20 + g.r.IntN(200))
			}
			c["last_message_id"], c["rate_limit_per_user"], c["nsfw"] = g.id(), 0, false
			c["icon_emoji"] = obj{"id": nil, "name": "💬"}
			c["theme_color"] = nil
			if g.r.IntN(3) == 0 {
				c["last_pin_timestamp"] = g.ts(300 * 24 * time.Hour)
			}
		}
		channels = append(channels, c)
	}
	var threads []obj
	for range gcThreads {
		threads = append(threads, obj{"id": g.id(), "type": 11, "guild_id": gg.id, "parent_id": gg.channels[1+g.r.IntN(10)],
			"owner_id": g.user().id, "name": g.text(10 + g.r.IntN(40)), "last_message_id": g.id(), "rate_limit_per_user": 0,
			"flags": 0, "message_count": g.r.IntN(500), "member_count": 1 + g.r.IntN(40), "total_message_sent": g.r.IntN(600),
			"thread_metadata": obj{"archived": false, "archive_timestamp": g.ts(24 * time.Hour), "auto_archive_duration": 4320, "locked": false, "create_timestamp": g.ts(30 * 24 * time.Hour)}})
	}
	var emojis []obj
	for range gcEmojis {
		emojis = append(emojis, obj{"id": g.id(), "name": g.word(3, 16), "roles": []string{}, "require_colons": true,
			"managed": false, "animated": g.r.IntN(4) == 0, "available": true})
	}
	var stickers []obj
	for range gcStickers {
		stickers = append(stickers, obj{"id": g.id(), "name": g.word(3, 16), "tags": "smile", "type": 2, "format_type": 1,
			"description": g.text(20), "asset": "", "available": true, "guild_id": gg.id})
	}
	var members, presences []obj
	for i := range gcMembers {
		u := &g.users[(i*37)%len(g.users)]
		members = append(members, g.memberJSON(&gg, u, true))
	}
	for i := range gcPresences {
		presences = append(presences, g.presence(&g.users[(i*37)%len(g.users)]))
	}
	var voice []obj
	for i := range gcVoice {
		u := &g.users[(i*37)%len(g.users)]
		voice = append(voice, obj{"user_id": u.id, "channel_id": gg.channels[11], "session_id": g.hash(), "deaf": false, "mute": false,
			"self_deaf": g.r.IntN(4) == 0, "self_mute": g.r.IntN(2) == 0, "self_video": false, "suppress": false, "request_to_speak_timestamp": nil})
	}
	feats := append([]string(nil), guildFeatures[:5+g.r.IntN(len(guildFeatures)-5)]...)
	return obj{
		"id": gg.id, "name": g.text(10 + g.r.IntN(20)), "icon": g.hash(), "description": g.text(60), "home_header": nil,
		"splash": nil, "discovery_splash": nil, "banner": g.hash(), "owner_id": g.user().id, "application_id": nil,
		"afk_channel_id": nil, "afk_timeout": 300, "system_channel_id": gg.channels[1], "system_channel_flags": 0,
		"widget_enabled": false, "verification_level": 2, "default_message_notifications": 1, "explicit_content_filter": 2,
		"mfa_level": 1, "premium_tier": 3, "premium_subscription_count": 30 + g.r.IntN(200), "preferred_locale": "en-US",
		"rules_channel_id": gg.channels[2], "public_updates_channel_id": gg.channels[3], "safety_alerts_channel_id": nil,
		"max_members": 500000, "max_video_channel_users": 25, "max_stage_video_channel_users": 300, "vanity_url_code": strings.ToLower(g.word(4, 12)),
		"nsfw_level": 0, "nsfw": false, "premium_progress_bar_enabled": true, "latest_onboarding_question_id": nil,
		"incidents_data": nil, "inventory_settings": nil, "hub_type": nil, "region": "deprecated", "version": g.now.UnixMilli(),
		"features": feats, "roles": roles, "emojis": emojis, "stickers": stickers, "channels": channels, "threads": threads,
		"members": members, "presences": presences, "voice_states": voice, "stage_instances": []obj{},
		"guild_scheduled_events": []obj{}, "soundboard_sounds": []obj{}, "embedded_activities": []obj{}, "activity_instances": []obj{},
		"application_command_counts": obj{}, "joined_at": g.ts(time.Second), "large": true, "unavailable": false,
		"member_count": 20000 + g.r.IntN(80000), "lazy": true,
	}
}
