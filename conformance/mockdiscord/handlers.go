package mockdiscord

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

func init() {
	const (
		req, opt      = authRequired, authOptional
		msg           = "/channels/{channel_id}/messages/{message_id}"
		reactions     = msg + "/reactions/{emoji}"
		noBody, body  = false, true
		counted, free = false, true
	)
	addRoute("GET", "/gateway", opt, counted, noBody, (*call).getGateway)
	addRoute("GET", "/gateway/bot", req, counted, noBody, (*call).getGatewayBot)
	addRoute("GET", "/users/@me", req, counted, noBody, (*call).getCurrentUser)
	addRoute("GET", "/channels/{channel_id}", req, counted, noBody, (*call).getChannel)
	addRoute("GET", "/channels/{channel_id}/messages", req, counted, noBody, (*call).getMessages)
	addRoute("POST", "/channels/{channel_id}/messages", req, counted, body, (*call).createMessage)
	addRoute("GET", msg, req, counted, noBody, (*call).getMessage)
	addRoute("PATCH", msg, req, counted, body, (*call).editMessage)
	addRoute("DELETE", msg, req, counted, noBody, (*call).deleteMessage)
	addRoute("POST", "/channels/{channel_id}/typing", req, counted, noBody, (*call).typing)
	addRoute("PUT", reactions+"/@me", req, counted, noBody, (*call).addReaction)
	addRoute("DELETE", reactions+"/@me", req, counted, noBody, (*call).removeReaction)
	addRoute("DELETE", reactions+"/{user_id}", req, counted, noBody, (*call).removeReaction)
	addRoute("GET", reactions, req, counted, noBody, (*call).getReactions)
	addRoute("GET", "/guilds/{guild_id}", req, counted, noBody, (*call).getGuild)
	addRoute("GET", "/guilds/{guild_id}/channels", req, counted, noBody, (*call).getGuildChannels)
	addRoute("POST", "/interactions/{interaction_id}/{interaction_token}/callback", opt, free, body, (*call).interactionCallback)
	addRoute("POST", "/webhooks/{webhook_id}/{webhook_token}", opt, counted, body, (*call).executeWebhook)
}

// gatewayURL is the URL GET /gateway(/bot) returns.
func (c *call) gatewayURL() string {
	if c.s.cfg.GatewayURL != "" {
		return c.s.cfg.GatewayURL
	}
	return "ws://" + c.r.Host + "/gateway"
}

func (c *call) getGateway() {
	c.json(http.StatusOK, map[string]string{"url": c.gatewayURL()})
}

func (c *call) getGatewayBot() {
	s := c.s
	s.mu.Lock()
	total, remaining, resetAfter := s.sessionStartLimit(time.Now())
	s.mu.Unlock()
	c.json(http.StatusOK, map[string]any{
		"url":    c.gatewayURL(),
		"shards": s.cfg.Shards,
		"session_start_limit": map[string]any{
			"total": total, "remaining": remaining,
			"reset_after":     ceilMillis(resetAfter),
			"max_concurrency": s.cfg.MaxConcurrency,
		},
	})
}

func (c *call) getCurrentUser() {
	c.json(http.StatusOK, c.s.world.botUserJSON())
}

// channel returns the path's channel, or answers 404 10003.
func (c *call) channel() *Channel {
	ch := c.s.world.chanIdx[c.p["channel_id"]]
	if ch == nil {
		c.fail(http.StatusNotFound, codeUnknownChannel, "Unknown Channel")
	}
	return ch
}

func (c *call) getChannel() {
	ch := c.channel()
	if ch == nil {
		return
	}
	c.s.mu.Lock()
	js := c.s.world.channelJSON(ch)
	c.s.mu.Unlock()
	c.json(http.StatusOK, js)
}

// snowflakeQuery parses an ID query parameter; ok is false (with an error
// recorded) when it is present but not a snowflake.
func snowflakeQuery(q map[string][]string, name string, errs formErrors) (uint64, bool, bool) {
	v, present := q[name]
	if !present || len(v) == 0 {
		return 0, false, true
	}
	n, err := strconv.ParseUint(v[0], 10, 64)
	if err != nil {
		errs.add("NUMBER_TYPE_COERCE", "Value \""+v[0]+"\" is not snowflake.", name)
		return 0, true, false
	}
	return n, true, true
}

// limitQuery parses ?limit=, between 1 and maxLimit, default def.
func limitQuery(q map[string][]string, def, maxLimit int, errs formErrors) int {
	v, ok := q["limit"]
	if !ok || len(v) == 0 {
		return def
	}
	n, err := strconv.Atoi(v[0])
	switch {
	case err != nil:
		errs.add("NUMBER_TYPE_COERCE", "Value \""+v[0]+"\" is not int.", "limit")
	case n < 1:
		errs.add("NUMBER_TYPE_MIN", "int value should be greater than or equal to 1.", "limit")
	case n > maxLimit:
		errs.add("NUMBER_TYPE_MAX", "int value should be less than or equal to "+strconv.Itoa(maxLimit)+".", "limit")
	}
	return n
}

func idNum(id string) uint64 {
	n, _ := strconv.ParseUint(id, 10, 64)
	return n
}

// getMessages lists messages newest first, like Discord: the newest
// `limit` (default 50, 1-100), or those before, after or around an ID
// (around wins over before, before over after).
func (c *call) getMessages() {
	ch := c.channel()
	if ch == nil {
		return
	}
	q := c.r.URL.Query()
	errs := formErrors{}
	limit := limitQuery(q, 50, 100, errs)
	around, hasAround, _ := snowflakeQuery(q, "around", errs)
	before, hasBefore, _ := snowflakeQuery(q, "before", errs)
	after, hasAfter, _ := snowflakeQuery(q, "after", errs)
	if len(errs) > 0 {
		c.failForm(errs)
		return
	}
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	all := s.world.messages[ch.ID] // oldest first, IDs increasing
	first := func(id uint64) int { // index of the first message with ID > id
		i, _ := slices.BinarySearchFunc(all, id+1, func(m *Message, t uint64) int {
			switch n := idNum(m.ID); {
			case n < t:
				return -1
			case n > t:
				return 1
			}
			return 0
		})
		return i
	}
	var sel []*Message
	switch {
	case hasAround:
		mid := first(around) // all[:mid] have ID <= around
		lo := max(mid-(limit+1)/2, 0)
		hi := min(mid+limit/2, len(all))
		sel = all[lo:hi]
	case hasBefore:
		end := first(before - 1) // IDs < before
		if before == 0 {
			end = 0
		}
		sel = all[max(end-limit, 0):end]
	case hasAfter:
		start := first(after)
		sel = all[start:min(start+limit, len(all))]
	default:
		sel = all[max(len(all)-limit, 0):]
	}
	out := make([]any, 0, len(sel))
	for i := len(sel) - 1; i >= 0; i-- {
		out = append(out, s.world.messageJSON(sel[i]))
	}
	c.json(http.StatusOK, out)
}

// store adds m to the world and queues MESSAGE_CREATE; it returns the
// message's JSON. The caller holds mu.
func (s *Server) store(m *Message, now time.Time) map[string]any {
	for i := range m.Attachments {
		m.Attachments[i].ID = s.world.ids.next(now)
	}
	s.world.add(m, now)
	s.emit(Event{Type: "MESSAGE_CREATE", ChannelID: m.ChannelID, GuildID: m.GuildID, Message: m.clone(), UserID: m.AuthorID, Time: now})
	return s.world.messageJSON(m)
}

func (c *call) createMessage() {
	ch := c.channel()
	if ch == nil {
		return
	}
	pl, ok := c.parseBody()
	if !ok {
		return
	}
	m, ok := c.messageInput(pl, false)
	if !ok {
		return
	}
	s := c.s
	m.ChannelID, m.GuildID = ch.ID, ch.GuildID
	m.AuthorID, m.AuthorName, m.AuthorBot = s.world.botID, BotUsername, true
	s.mu.Lock()
	js := s.store(m, time.Now())
	s.mu.Unlock()
	c.json(http.StatusOK, js)
}

// message returns the path's message, or answers 404 10003/10008. The
// caller holds mu.
func (c *call) message() *Message {
	ch := c.channel()
	if ch == nil {
		return nil
	}
	m := c.s.world.message(ch.ID, c.p["message_id"])
	if m == nil {
		c.fail(http.StatusNotFound, codeUnknownMessage, "Unknown Message")
	}
	return m
}

func (c *call) getMessage() {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if m := c.message(); m != nil {
		c.json(http.StatusOK, c.s.world.messageJSON(m))
	}
}

// editMessage edits one of the bot's messages: content, embeds, flags,
// components, attachments (the ones to keep) and new files.
func (c *call) editMessage() {
	s := c.s
	s.mu.Lock()
	m := c.message()
	if m != nil && m.AuthorID != s.world.botID {
		c.fail(http.StatusForbidden, codeEditOthersMessage, "Cannot edit a message authored by another user")
		m = nil
	}
	s.mu.Unlock()
	if m == nil {
		return
	}
	pl, ok := c.parseBody()
	if !ok {
		return
	}
	v := newValidator(pl)
	content, setContent := v.str("content", maxContentRunes), v.present("content")
	embeds, setEmbeds := v.embeds(), v.present("embeds")
	flags, setFlags := v.integer("flags")
	comps, setComps := v.array("components"), v.present("components")
	keep, setKeep := v.array("attachments"), v.present("attachments")
	if len(v.errs) > 0 {
		c.failForm(v.errs)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if m = c.message(); m == nil {
		return
	}
	next := m.clone()
	if setContent {
		next.Content = content
	}
	if setEmbeds {
		next.Embeds = embeds
	}
	if setFlags {
		next.Flags = flags
	}
	if setComps {
		next.Components = comps
	}
	if setKeep {
		ids := map[string]bool{}
		for _, k := range keep {
			var a struct {
				ID json.RawMessage `json:"id"`
			}
			if json.Unmarshal(k, &a) == nil {
				ids[strings.Trim(string(a.ID), `"`)] = true
			}
		}
		next.Attachments = slices.DeleteFunc(next.Attachments, func(a Attachment) bool { return !ids[a.ID] })
	}
	now := time.Now()
	for _, f := range pl.files {
		f.ID = s.world.ids.next(now)
		next.Attachments = append(next.Attachments, f)
	}
	if strings.TrimSpace(next.Content) == "" && len(next.Embeds) == 0 && len(next.Attachments) == 0 && len(next.Components) == 0 {
		c.fail(http.StatusBadRequest, codeEmptyMessage, "Cannot send an empty message")
		return
	}
	next.EditedTimestamp = now
	*m = next
	s.emit(Event{Type: "MESSAGE_UPDATE", ChannelID: m.ChannelID, GuildID: m.GuildID, Message: m.clone(), Time: now})
	c.json(http.StatusOK, s.world.messageJSON(m))
}

func (c *call) deleteMessage() {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	m := c.message()
	if m == nil {
		return
	}
	s.world.remove(m)
	s.emit(Event{Type: "MESSAGE_DELETE", ChannelID: m.ChannelID, GuildID: m.GuildID, Message: m.clone(), Time: time.Now()})
	c.noContent()
}

func (c *call) typing() {
	ch := c.channel()
	if ch == nil {
		return
	}
	s := c.s
	s.mu.Lock()
	s.emit(Event{Type: "TYPING_START", ChannelID: ch.ID, GuildID: ch.GuildID, UserID: s.world.botID, Time: time.Now()})
	s.mu.Unlock()
	c.noContent()
}

// emoji returns the path's emoji, or answers 400 10014 for a custom emoji
// (the fake guilds have none) or a text that cannot be an emoji.
func (c *call) emoji() (string, bool) {
	e := c.p["emoji"]
	ascii := true
	for i := 0; i < len(e); i++ {
		ascii = ascii && e[i] < 0x80
	}
	if e == "" || ascii {
		c.fail(http.StatusBadRequest, codeUnknownEmoji, "Unknown Emoji")
		return "", false
	}
	return e, true
}

// addReaction is PUT .../reactions/{emoji}/@me.
func (c *call) addReaction() {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	m := c.message()
	if m == nil {
		return
	}
	e, ok := c.emoji()
	if !ok {
		return
	}
	user := s.world.botID
	i := slices.IndexFunc(m.Reactions, func(r Reaction) bool { return r.Emoji == e })
	if i < 0 {
		m.Reactions = append(m.Reactions, Reaction{Emoji: e})
		i = len(m.Reactions) - 1
	}
	if !slices.Contains(m.Reactions[i].UserIDs, user) {
		m.Reactions[i].UserIDs = append(m.Reactions[i].UserIDs, user)
		s.emit(Event{Type: "MESSAGE_REACTION_ADD", ChannelID: m.ChannelID, GuildID: m.GuildID, Message: m.clone(), UserID: user, Emoji: e, Time: time.Now()})
	}
	c.noContent()
}

// removeReaction is DELETE .../reactions/{emoji}/@me and
// DELETE .../reactions/{emoji}/{user_id}.
func (c *call) removeReaction() {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	m := c.message()
	if m == nil {
		return
	}
	e, ok := c.emoji()
	if !ok {
		return
	}
	user := c.p["user_id"]
	if user == "" {
		user = s.world.botID
	}
	if i := slices.IndexFunc(m.Reactions, func(r Reaction) bool { return r.Emoji == e }); i >= 0 {
		if j := slices.Index(m.Reactions[i].UserIDs, user); j >= 0 {
			m.Reactions[i].UserIDs = slices.Delete(m.Reactions[i].UserIDs, j, j+1)
			if len(m.Reactions[i].UserIDs) == 0 {
				m.Reactions = slices.Delete(m.Reactions, i, i+1)
			}
			s.emit(Event{Type: "MESSAGE_REACTION_REMOVE", ChannelID: m.ChannelID, GuildID: m.GuildID, Message: m.clone(), UserID: user, Emoji: e, Time: time.Now()})
		}
	}
	c.noContent()
}

// getReactions lists the users who reacted with an emoji (?limit 1-100,
// default 25; ?after a user ID).
func (c *call) getReactions() {
	q := c.r.URL.Query()
	errs := formErrors{}
	limit := limitQuery(q, 25, 100, errs)
	after, hasAfter, _ := snowflakeQuery(q, "after", errs)
	if len(errs) > 0 {
		c.failForm(errs)
		return
	}
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	m := c.message()
	if m == nil {
		return
	}
	e, ok := c.emoji()
	if !ok {
		return
	}
	out := []any{}
	for _, r := range m.Reactions {
		if r.Emoji != e {
			continue
		}
		for _, u := range r.UserIDs {
			if len(out) == limit {
				break
			}
			if hasAfter && idNum(u) <= after {
				continue
			}
			if u == s.world.botID {
				out = append(out, userJSON(u, BotUsername, true))
			} else {
				out = append(out, userJSON(u, s.world.users[u], false))
			}
		}
	}
	c.json(http.StatusOK, out)
}

// guild returns the path's guild, or answers 404 10004.
func (c *call) guild() *Guild {
	g := c.s.world.guildIdx[c.p["guild_id"]]
	if g == nil {
		c.fail(http.StatusNotFound, codeUnknownGuild, "Unknown Guild")
	}
	return g
}

func (c *call) getGuild() {
	g := c.guild()
	if g == nil {
		return
	}
	withCounts, _ := parseBool(c.r.URL.Query().Get("with_counts"))
	c.json(http.StatusOK, c.s.world.guildJSON(g, withCounts))
}

func (c *call) getGuildChannels() {
	g := c.guild()
	if g == nil {
		return
	}
	s := c.s
	s.mu.Lock()
	out := make([]any, 0, len(g.ChannelIDs))
	for _, id := range g.ChannelIDs {
		out = append(out, s.world.channelJSON(s.world.chanIdx[id]))
	}
	s.mu.Unlock()
	c.json(http.StatusOK, out)
}

// interactionCallbackTypes are the valid callback types.
var interactionCallbackTypes = []int{1, 4, 5, 6, 7, 8, 9, 10, 12}

// interactionCallback accepts any interaction ID and token once: a second
// callback for the same interaction gets 400 40060.
func (c *call) interactionCallback() {
	pl, ok := c.parseBody()
	if !ok {
		return
	}
	v := newValidator(pl)
	typ, hasType := v.integer("type")
	switch {
	case !hasType && len(v.errs) == 0:
		v.errs.add("BASE_TYPE_REQUIRED", "This field is required", "type")
	case hasType && !slices.Contains(interactionCallbackTypes, typ):
		v.errs.add("BASE_TYPE_CHOICES", "Value must be one of {1, 4, 5, 6, 7, 8, 9, 10, 12}.", "type")
	}
	data, _ := v.raw("data")
	if data != nil {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
			v.errs.add("MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType", "data")
		} else {
			sub := &validator{pl: &payload{fields: obj}, errs: v.errs}
			sub.str("content", maxContentRunes, "data")
		}
	}
	if len(v.errs) > 0 {
		c.failForm(v.errs)
		return
	}
	s := c.s
	id := c.p["interaction_id"]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.world.acked[id] {
		c.fail(http.StatusBadRequest, codeAlreadyAcked, "Interaction has already been acknowledged.")
		return
	}
	s.world.acked[id] = true
	s.interactions = append(s.interactions, InteractionResponse{
		ID: id, Token: c.p["interaction_token"], Type: typ, Data: append([]byte(nil), data...), Time: time.Now(),
	})
	c.noContent()
}

// executeWebhook posts through a webhook of the fake world, or, when the
// webhook ID is the application's, as an interaction follow-up (any token;
// the message goes to the first channel). ?wait=true returns the message.
func (c *call) executeWebhook() {
	s := c.s
	id, token := c.p["webhook_id"], c.p["webhook_token"]
	followUp := id == s.world.botID
	hook := s.world.hookIdx[id]
	switch {
	case followUp:
	case hook == nil:
		c.fail(http.StatusNotFound, codeUnknownWebhook, "Unknown Webhook")
		return
	case token != hook.Token:
		c.fail(http.StatusUnauthorized, codeInvalidWebhookTok, "Invalid Webhook Token")
		return
	}
	wait := false
	if w, ok := c.r.URL.Query()["wait"]; ok && len(w) > 0 {
		b, ok := parseBool(w[0])
		if !ok {
			errs := formErrors{}
			errs.add("BOOLEAN_TYPE_COERCE", "Value \""+w[0]+"\" is not a valid boolean.", "wait")
			c.failForm(errs)
			return
		}
		wait = b
	}
	pl, ok := c.parseBody()
	if !ok {
		return
	}
	m, ok := c.messageInput(pl, true)
	if !ok {
		return
	}
	m.WebhookID, m.AuthorID, m.AuthorBot = id, id, true
	switch {
	case hook != nil:
		m.ChannelID, m.GuildID = hook.ChannelID, hook.GuildID
		if m.AuthorName == "" {
			m.AuthorName = hook.Name
		}
	case len(s.world.channels) > 0:
		m.ChannelID, m.GuildID = s.world.channels[0].ID, s.world.channels[0].GuildID
	}
	if m.AuthorName == "" {
		m.AuthorName = BotUsername
	}
	s.mu.Lock()
	js := s.store(m, time.Now())
	s.mu.Unlock()
	if wait {
		c.json(http.StatusOK, js)
		return
	}
	c.noContent()
}
