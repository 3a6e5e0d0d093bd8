package mockdiscord_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
)

const (
	guildsAndMessages = mockdiscord.IntentGuilds | mockdiscord.IntentGuildMessages
	allowAll          = mockdiscord.IntentGuilds | mockdiscord.IntentGuildMessages | mockdiscord.IntentMessageContent |
		mockdiscord.IntentGuildMessageReactions | mockdiscord.IntentGuildMessageTyping
)

// marker dispatches a MARKER to shard and checks it is the next thing c
// gets: whatever was meant not to reach c did not.
func marker(t *testing.T, e *env, c *gwc, shard int) {
	t.Helper()
	if _, err := e.s.DispatchToShard(shard, "MARKER", nil); err != nil {
		t.Fatal(err)
	}
	c.dispatch("MARKER")
}

func TestGatewayMessageEvents(t *testing.T) {
	bubble(t, &mockdiscord.Options{Guilds: 2, IdentifyInterval: -1, HeartbeatInterval: hour}, func(t *testing.T, e *env) {
		g0, g1 := e.s.Guilds()[0], e.s.Guilds()[1]
		ch0, ch1 := e.s.World()[0].ChannelIDs[0], e.s.World()[1].ChannelIDs[0]
		noContent := dialGateway(t, e.s, "/gateway?v=10")
		noContent.identify(e.s, 0, 2, guildsAndMessages)
		noContent.skipGuildCreates(1)
		content := dialGateway(t, e.s, "/gateway?v=10")
		content.identify(e.s, 1, 2, allowAll)
		content.skipGuildCreates(1)
		noMessages := dialGateway(t, e.s, "/gateway?v=10")
		noMessages.identify(e.s, 0, 2, mockdiscord.IntentGuilds)
		noMessages.skipGuildCreates(1)

		// A simulated user speaks in guild 0 (shard 0).
		if _, err := e.s.SimulateMessage(ch0, "member-3", "", "hello"); err != nil {
			t.Fatal(err)
		}
		m := noContent.dispatch("MESSAGE_CREATE").obj(t)
		wantEqual(t, "content without MESSAGE_CONTENT", m["content"], any(""))
		wantEqual(t, "guild_id", m["guild_id"], any(g0))
		wantEqual(t, "channel_id", m["channel_id"], any(ch0))
		wantEqual(t, "author", m["author"].(map[string]any)["username"], any("member-3"))
		wantEqual(t, "author id is the member's", m["author"].(map[string]any)["id"], any(e.s.Members(g0)[3].ID))
		member := m["member"].(map[string]any)
		if _, ok := member["user"]; ok {
			t.Errorf("MESSAGE_CREATE member has a user key")
		}
		if _, ok := member["joined_at"]; !ok {
			t.Errorf("member without joined_at")
		}
		marker(t, e, noMessages, 0) // no GUILD_MESSAGES: nothing
		noContent.dispatch("MARKER")
		marker(t, e, content, 1) // other shard: nothing

		// A mention of the bot shows the content.
		mention := fmt.Sprintf("hi <@%s>!", e.s.UserID())
		ctl := e.do("POST", e.s.URL()+"/_mock/messages", fmt.Sprintf(`{"channel_id":%q,"content":%q,"author":"alice"}`, ch0, mention), noAuth)
		wantStatus(t, ctl, 200)
		m = noContent.dispatch("MESSAGE_CREATE").obj(t)
		wantEqual(t, "content with a mention", m["content"], any(mention))
		wantEqual(t, "mentions", len(m["mentions"].([]any)), 1)

		// The bot's own messages show the content.
		id := e.post(ch0, "from the bot")
		m = noContent.dispatch("MESSAGE_CREATE").obj(t)
		wantEqual(t, "bot content", m["content"], any("from the bot"))
		wantEqual(t, "bot author", m["author"].(map[string]any)["bot"], any(true))
		wantStatus(t, e.do("PATCH", "/channels/"+ch0+"/messages/"+id, `{"content":"edited"}`), 200)
		m = noContent.dispatch("MESSAGE_UPDATE").obj(t)
		wantEqual(t, "edited", m["content"], any("edited"))
		wantStatus(t, e.do("DELETE", "/channels/"+ch0+"/messages/"+id, nil), 204)
		m = noContent.dispatch("MESSAGE_DELETE").obj(t)
		wantEqual(t, "deleted", m, map[string]any{"id": id, "channel_id": ch0, "guild_id": g0})

		// Guild 1 is on shard 1, whose session has MESSAGE_CONTENT,
		// reactions and typing.
		if _, err := e.s.SimulateMessage(ch1, "bob", "", "secret"); err != nil {
			t.Fatal(err)
		}
		m = content.dispatch("MESSAGE_CREATE").obj(t)
		wantEqual(t, "content with MESSAGE_CONTENT", m["content"], any("secret"))
		mid := m["id"].(string)
		wantStatus(t, e.do("PUT", "/channels/"+ch1+"/messages/"+mid+"/reactions/%F0%9F%91%8D/@me", nil), 204)
		r := content.dispatch("MESSAGE_REACTION_ADD").obj(t)
		wantEqual(t, "reaction user", r["user_id"], any(e.s.UserID()))
		wantEqual(t, "reaction emoji", r["emoji"].(map[string]any)["name"], any("👍"))
		wantStatus(t, e.do("POST", "/channels/"+ch1+"/typing", nil), 204)
		ty := content.dispatch("TYPING_START").obj(t)
		wantEqual(t, "typing guild", ty["guild_id"], any(g1))
		marker(t, e, noContent, 0)
	})
}

func TestGatewayDispatchAPI(t *testing.T) {
	bubble(t, &mockdiscord.Options{Guilds: 2, IdentifyInterval: -1, HeartbeatInterval: hour}, func(t *testing.T, e *env) {
		g1 := e.s.Guilds()[1]
		s0 := dialGateway(t, e.s, "/gateway?v=10")
		s0.identify(e.s, 0, 2, mockdiscord.IntentGuilds)
		s0.skipGuildCreates(1)
		s1 := dialGateway(t, e.s, "/gateway?v=10")
		s1.identify(e.s, 1, 2, mockdiscord.IntentGuildMessages) // no GUILDS: no GUILD_CREATE either

		n, err := e.s.Dispatch(g1, "GUILD_UPDATE", map[string]any{"id": g1, "name": "renamed"})
		wantEqual(t, "GUILD_UPDATE to shard 1 without GUILDS", n, 0)
		if err != nil {
			t.Fatal(err)
		}
		n, _ = e.s.Dispatch(g1, "MESSAGE_DELETE", map[string]any{"id": "1", "channel_id": "2", "guild_id": g1})
		wantEqual(t, "MESSAGE_DELETE sessions", n, 1)
		s1.dispatch("MESSAGE_DELETE")
		n, _ = e.s.Dispatch("", "INTERACTION_CREATE", json.RawMessage(`{"id":"5","type":2}`))
		wantEqual(t, "no guild: shard 0 only", n, 1)
		p := s0.dispatch("INTERACTION_CREATE")
		wantEqual(t, "raw data", string(p.D), `{"id":"5","type":2}`)
		n, _ = e.s.Dispatch("", "MESSAGE_CREATE", map[string]any{})
		wantEqual(t, "DM without DIRECT_MESSAGES", n, 0)
		marker(t, e, s1, 1)

		for _, err := range []error{
			func() error { _, err := e.s.Dispatch("x", "A", nil); return err }(),
			func() error { _, err := e.s.Dispatch("", "", nil); return err }(),
			func() error { _, err := e.s.Dispatch("", "A", make(chan int)); return err }(),
			func() error { _, err := e.s.Dispatch("", "A", json.RawMessage(`{`)); return err }(),
			func() error { _, err := e.s.DispatchToShard(-1, "A", nil); return err }(),
			func() error { _, err := e.s.Stream(0, -1, "A"); return err }(),
			func() error { _, err := e.s.Stream(0, 1, ""); return err }(),
		} {
			if !errors.Is(err, mockdiscord.ErrInvalidDispatch) {
				t.Errorf("got %v, want ErrInvalidDispatch", err)
			}
		}
		wantEqual(t, "EventIntent", mockdiscord.EventIntent("MESSAGE_CREATE", true), mockdiscord.IntentDirectMessages)
		wantEqual(t, "EventIntent none", mockdiscord.EventIntent("READY", false), uint64(0))
	})
}

func TestGatewayRequestMembers(t *testing.T) {
	opts := &mockdiscord.Options{Guilds: 1, MembersPerGuild: 5, MemberChunkSize: 2, IdentifyInterval: -1, HeartbeatInterval: hour}
	bubble(t, opts, func(t *testing.T, e *env) {
		g := e.s.Guilds()[0]
		members := e.s.Members(g)
		wantEqual(t, "members", len(members), 6)
		wantEqual(t, "bot first", members[0].ID, e.s.UserID())
		c := dialGateway(t, e.s, "/gateway?v=10")
		c.identify(e.s, 0, 1, mockdiscord.IntentGuilds|mockdiscord.IntentGuildMembers)
		gc := c.dispatch("GUILD_CREATE").obj(t)
		wantEqual(t, "GUILD_CREATE members", len(gc["members"].([]any)), 6)

		type chunk struct {
			GuildID    string            `json:"guild_id"`
			Members    []json.RawMessage `json:"members"`
			ChunkIndex int               `json:"chunk_index"`
			ChunkCount int               `json:"chunk_count"`
			NotFound   []json.RawMessage `json:"not_found"`
			Nonce      *string           `json:"nonce"`
			Presences  []json.RawMessage `json:"presences"`
		}
		read := func() chunk {
			var ch chunk
			c.dispatch("GUILD_MEMBERS_CHUNK").decodeInto(t, &ch)
			return ch
		}
		c.send(op(8, map[string]any{"guild_id": g, "query": "", "limit": 0, "nonce": "all-1", "presences": true}))
		total := 0
		for i := range 3 {
			ch := read()
			wantEqual(t, "chunk_index", ch.ChunkIndex, i)
			wantEqual(t, "chunk_count", ch.ChunkCount, 3)
			wantEqual(t, "nonce", *ch.Nonce, "all-1")
			wantEqual(t, "no presences without the intent", len(ch.Presences), 0)
			total += len(ch.Members)
		}
		wantEqual(t, "all members", total, 6)
		// Again within 30 s: RATE_LIMITED.
		c.send(op(8, map[string]any{"guild_id": g, "query": "", "limit": 0, "nonce": "all-2"}))
		rl := c.dispatch("RATE_LIMITED").obj(t)
		wantEqual(t, "opcode", rl["opcode"], any(float64(8)))
		wantEqual(t, "meta", rl["meta"], any(map[string]any{"guild_id": g, "nonce": "all-2"}))
		// By user IDs, with one unknown and a nonce too long to echo.
		c.send(op(8, map[string]any{"guild_id": g, "user_ids": []string{members[2].ID, "123"}, "nonce": strings.Repeat("n", 33)}))
		ch := read()
		wantEqual(t, "found", len(ch.Members), 1)
		wantEqual(t, "not_found", string(ch.NotFound[0]), `"123"`)
		if ch.Nonce != nil {
			t.Errorf("nonce %q echoed", *ch.Nonce)
		}
		// By prefix.
		c.send(op(8, map[string]any{"guild_id": g, "query": "MEMBER-", "limit": 3}))
		wantEqual(t, "prefix", len(read().Members), 2) // chunk size 2
		wantEqual(t, "prefix rest", len(read().Members), 1)
		// 30 s later the whole list may be asked again.
		time.Sleep(30 * time.Second)
		c.send(op(8, map[string]any{"guild_id": g, "query": "", "limit": 0}))
		read()
		rm := obsOf(e.s, mockdiscord.ObserveRequestMembers)
		wantEqual(t, "requests", len(rm), 5)
		wantEqual(t, "rate limited", rm[1].Accepted, false)

		// Without GUILD_MEMBERS the whole list is refused; so is a
		// request with both query and user_ids.
		for _, d := range []map[string]any{
			{"guild_id": g, "query": "", "limit": 0},
			{"guild_id": g, "query": "a", "limit": 1, "user_ids": []string{"1"}},
			{"guild_id": g},
			{"guild_id": g, "query": "a"},
			{"guild_id": []string{g}, "query": "a", "limit": 1},
		} {
			o := dialGateway(t, e.s, "/gateway?v=10")
			o.identify(e.s, 0, 1, mockdiscord.IntentGuilds)
			o.skipGuildCreates(1)
			o.send(op(8, d))
			o.expectClose(4001)
		}
	})
}

func TestGatewayPresenceVoiceAndOthers(t *testing.T) {
	bubble(t, &mockdiscord.Options{Guilds: 1, HeartbeatInterval: hour}, func(t *testing.T, e *env) {
		g := e.s.Guilds()[0]
		c := dialGateway(t, e.s, "/gateway?v=10")
		c.identify(e.s, 0, 1, mockdiscord.IntentGuilds)
		c.skipGuildCreates(1)
		presence := map[string]any{"since": nil, "activities": []any{map[string]any{"name": "tests", "type": 3}}, "status": "dnd", "afk": false}
		for range 6 {
			c.send(op(3, presence))
		}
		c.send(op(4, map[string]any{"guild_id": g, "channel_id": nil, "self_mute": true, "self_deaf": false}))
		c.send(op(31, map[string]any{"guild_ids": []string{g}}))
		wantEqual(t, "soundboard", c.dispatch("SOUNDBOARD_SOUNDS").obj(t)["guild_id"], any(g))
		c.send(op(43, map[string]any{"guild_id": g, "fields": []string{"status"}}))
		wantEqual(t, "channel info", c.dispatch("CHANNEL_INFO").obj(t)["guild_id"], any(g))
		ps := obsOf(e.s, mockdiscord.ObservePresence)
		wantEqual(t, "presences", len(ps), 6)
		var d map[string]any
		if err := json.Unmarshal(ps[0].Data, &d); err != nil {
			t.Fatal(err)
		}
		wantEqual(t, "status", d["status"], any("dnd"))
		vs := obsOf(e.s, mockdiscord.ObserveVoiceState)
		wantEqual(t, "voice states", len(vs), 1)
		v := e.s.GatewayViolations()
		if len(v) != 1 || !strings.Contains(v[0], "presence updates") {
			t.Errorf("violations %q", v)
		}
	})
}
