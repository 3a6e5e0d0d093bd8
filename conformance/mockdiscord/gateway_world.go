package mockdiscord

import (
	"strconv"
	"strings"
	"time"
)

// guildShardLCM is the least common multiple of 1..20. Guild IDs encode
// consecutive milliseconds starting at a multiple of it, so with N shards
// (N <= 20) guild i (from 0) lands on shard i % N: (guild_id >> 22) % N.
const guildShardLCM = 232792560

// guildBaseMS is the snowflake timestamp (ms since the Discord epoch) of
// the first guild: a multiple of guildShardLCM a little before idBase, so
// guild IDs are smaller than every other ID of the world.
var guildBaseMS = (uint64(idBase.UnixMilli()-discordEpoch) - 24*3600*1000) / guildShardLCM * guildShardLCM

// guildSnowflake returns the ID of guild i (from 0).
func guildSnowflake(i int) string {
	return strconv.FormatUint((guildBaseMS+uint64(i))<<22|1<<17, 10)
}

// ShardOf returns the shard that receives a guild's events with
// shardCount shards: (guild_id >> 22) % shardCount, or 0 when guildID is
// not a snowflake or shardCount < 1. Events without a guild go to shard 0.
// With the mock's guild IDs, guild i of [Server.Guilds] (from 0) lands on
// shard i % shardCount for every shardCount up to 20.
func ShardOf(guildID string, shardCount int) int {
	id, err := strconv.ParseUint(guildID, 10, 64)
	if err != nil || shardCount < 1 {
		return 0
	}
	return int((id >> 22) % uint64(shardCount))
}

// Member is a member of a fake guild (every guild has the same members).
type Member struct {
	// ID is the user's snowflake.
	ID string
	// Username is "member-N", N counting from 1, or BotUsername for the
	// bot.
	Username string
	// Bot reports that the member is the bot user.
	Bot bool
}

// Members returns the members of a guild of the fake world: the bot,
// then Options.MembersPerGuild users "member-1", "member-2", ... whose IDs
// are those [Server.SimulateMessage] derives from those usernames. It
// returns nil for an unknown guild.
func (s *Server) Members(guildID string) []Member {
	if s.world.guildIdx[guildID] == nil {
		return nil
	}
	return append([]Member(nil), s.gw.members...)
}

// newMembers lists the members every guild has.
func newMembers(c *config, botID string) []Member {
	out := []Member{{ID: botID, Username: BotUsername, Bot: true}}
	for i := 1; i <= c.MembersPerGuild; i++ {
		name := "member-" + strconv.Itoa(i)
		out = append(out, Member{ID: simulatedUserID(name), Username: name})
	}
	return out
}

// joinedAt is when every member joined every guild.
func joinedAt(guildID string) string {
	t := SnowflakeTime(guildID)
	if t.IsZero() {
		t = idBase
	}
	return timestamp(t)
}

// memberJSON renders a guild member; withUser adds the "user" key (absent
// from MESSAGE_CREATE's member).
func memberJSON(guildID string, m Member, withUser bool) map[string]any {
	out := map[string]any{
		"nick": nil, "avatar": nil, "roles": []any{}, "joined_at": joinedAt(guildID),
		"premium_since": nil, "deaf": false, "mute": false, "flags": 0, "pending": false,
	}
	if withUser {
		out["user"] = userJSON(m.ID, m.Username, m.Bot)
	}
	return out
}

// memberByID finds a member by user ID; unknown users (simulated authors
// that are not members) get a member with the given name.
func (gw *gateway) memberByID(id, name string) Member {
	if m, ok := gw.findMember(id); ok {
		return m
	}
	return Member{ID: id, Username: name}
}

// guildCreateJSON renders the GUILD_CREATE of g for a session with the
// given large_threshold. The caller holds s.mu (channels read messages).
func (s *Server) guildCreateJSON(g *Guild, largeThreshold int) map[string]any {
	out := s.world.guildJSON(g, false)
	members := s.gw.members
	large := len(members) > largeThreshold
	list := []any{}
	for _, m := range members {
		if large && !m.Bot {
			continue // above large_threshold only the bot (no one is online)
		}
		list = append(list, memberJSON(g.ID, m, true))
	}
	chans := []any{}
	for _, id := range g.ChannelIDs {
		ch := s.world.channelJSON(s.world.chanIdx[id])
		delete(ch, "guild_id") // Discord omits it inside GUILD_CREATE (UNVERIFIED)
		chans = append(chans, ch)
	}
	out["joined_at"] = joinedAt(g.ID)
	out["large"] = large
	out["unavailable"] = false
	out["member_count"] = len(members)
	out["voice_states"] = []any{}
	out["members"] = list
	out["channels"] = chans
	out["threads"] = []any{}
	out["presences"] = []any{}
	out["stage_instances"] = []any{}
	out["guild_scheduled_events"] = []any{}
	out["soundboard_sounds"] = []any{}
	return out
}

// mentionsBot reports whether content mentions the bot.
func mentionsBot(content, botID string) bool {
	return strings.Contains(content, "<@"+botID+">") || strings.Contains(content, "<@!"+botID+">")
}

// unixSeconds renders t as TYPING_START's timestamp.
func unixSeconds(t time.Time) int64 { return t.Unix() }
