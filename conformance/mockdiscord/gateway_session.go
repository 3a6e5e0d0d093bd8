package mockdiscord

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"
)

// session is a gateway session: it outlives its connections until it is
// invalidated or stays disconnected longer than SessionTTL. Guarded by
// gateway.mu.
type session struct {
	id             string
	shard, count   int
	intents        uint64
	compress       bool
	seq            int64 // last sequence number used
	ring           *replayRing
	conn           *gwConn // nil while disconnected
	disconnectedAt time.Time
	invalid        bool
}

// sessionID returns a Discord-looking session ID (32 hex digits),
// deterministic per mock.
func sessionID(n int) string {
	sum := md5.Sum([]byte("cordkit-mockdiscord-session/" + strconv.Itoa(n)))
	return hex.EncodeToString(sum[:])
}

// replayFrame is one dispatch kept for RESUME.
type replayFrame struct {
	seq     int64
	payload []byte // the whole envelope, with its s
}

// replayRing keeps a session's last dispatches.
type replayRing struct {
	frames  []replayFrame
	start   int // index of the oldest frame once full
	size    int
	evicted int64 // highest sequence number no longer kept
}

func newReplayRing(size int) *replayRing { return &replayRing{size: size} }

func (r *replayRing) push(f replayFrame) {
	switch {
	case r.size == 0:
		r.evicted = f.seq
	case len(r.frames) < r.size:
		r.frames = append(r.frames, f)
	default:
		r.evicted = r.frames[r.start].seq
		r.frames[r.start] = f
		r.start = (r.start + 1) % r.size
	}
}

// after returns the kept frames with a sequence number above seq, oldest
// first.
func (r *replayRing) after(seq int64) []replayFrame {
	var out []replayFrame
	for i := range r.frames {
		f := r.frames[(r.start+i)%len(r.frames)]
		if f.seq > seq {
			out = append(out, f)
		}
	}
	return out
}

// dispatchLocked numbers a dispatch, keeps it for replay and sends it to
// the session's connection, if any.
func (gw *gateway) dispatchLocked(sess *session, name string, d []byte) {
	sess.seq++
	p := envelope(0, d, sess.seq, name)
	sess.ring.push(replayFrame{seq: sess.seq, payload: p})
	if c := sess.conn; c != nil {
		c.sendDispatchLocked(p)
	}
}

// aliveLocked reports whether sess may still receive events and be
// resumed.
func (gw *gateway) aliveLocked(sess *session, now time.Time) bool {
	if sess.invalid {
		return false
	}
	ttl := gw.s.cfg.SessionTTL
	return sess.conn != nil || ttl < 0 || now.Sub(sess.disconnectedAt) < ttl
}

// liveSessionsLocked drops dead sessions and returns the others, oldest
// first.
func (gw *gateway) liveSessionsLocked(now time.Time) []*session {
	kept := gw.sessions[:0]
	for _, sess := range gw.sessions {
		if gw.aliveLocked(sess, now) {
			kept = append(kept, sess)
		}
	}
	for i := len(kept); i < len(gw.sessions); i++ {
		gw.sessions[i] = nil
	}
	gw.sessions = kept
	return kept
}

// sessionLocked finds a resumable session, or says why there is none.
func (gw *gateway) sessionLocked(id string, now time.Time) (*session, string) {
	for _, sess := range gw.sessions {
		if sess.id != id {
			continue
		}
		switch {
		case sess.invalid:
			return nil, "session invalidated"
		case !gw.aliveLocked(sess, now):
			return nil, "session expired (disconnected longer than SessionTTL)"
		}
		return sess, ""
	}
	return nil, "unknown session (never existed, invalidated or expired)"
}

// ErrInvalidDispatch is wrapped by the errors [Server.Dispatch],
// [Server.DispatchToShard] and [Server.Stream] return for bad arguments.
var ErrInvalidDispatch = errors.New("mockdiscord: invalid dispatch")

// eventIntents maps guild events to the intent they need; dmIntents the
// direct-message forms. Events not listed need none.
var eventIntents, dmIntents = func() (map[string]uint64, map[string]uint64) {
	g := map[string]uint64{}
	add := func(intent uint64, names ...string) {
		for _, n := range names {
			g[n] = intent
		}
	}
	add(IntentGuilds, "GUILD_CREATE", "GUILD_UPDATE", "GUILD_DELETE", "GUILD_ROLE_CREATE", "GUILD_ROLE_UPDATE",
		"GUILD_ROLE_DELETE", "CHANNEL_CREATE", "CHANNEL_UPDATE", "CHANNEL_DELETE", "CHANNEL_PINS_UPDATE",
		"THREAD_CREATE", "THREAD_UPDATE", "THREAD_DELETE", "THREAD_LIST_SYNC", "THREAD_MEMBER_UPDATE",
		"STAGE_INSTANCE_CREATE", "STAGE_INSTANCE_UPDATE", "STAGE_INSTANCE_DELETE",
		"VOICE_CHANNEL_STATUS_UPDATE", "VOICE_CHANNEL_START_TIME_UPDATE")
	add(IntentGuildMembers, "GUILD_MEMBER_ADD", "GUILD_MEMBER_UPDATE", "GUILD_MEMBER_REMOVE")
	add(IntentGuildModeration, "GUILD_AUDIT_LOG_ENTRY_CREATE", "GUILD_BAN_ADD", "GUILD_BAN_REMOVE")
	add(IntentGuildExpressions, "GUILD_EMOJIS_UPDATE", "GUILD_STICKERS_UPDATE", "GUILD_SOUNDBOARD_SOUND_CREATE",
		"GUILD_SOUNDBOARD_SOUND_UPDATE", "GUILD_SOUNDBOARD_SOUND_DELETE", "GUILD_SOUNDBOARD_SOUNDS_UPDATE")
	add(IntentGuildIntegrations, "GUILD_INTEGRATIONS_UPDATE", "INTEGRATION_CREATE", "INTEGRATION_UPDATE", "INTEGRATION_DELETE")
	add(IntentGuildWebhooks, "WEBHOOKS_UPDATE")
	add(IntentGuildInvites, "INVITE_CREATE", "INVITE_DELETE")
	add(IntentGuildVoiceStates, "VOICE_CHANNEL_EFFECT_SEND", "VOICE_STATE_UPDATE")
	add(IntentGuildPresences, "PRESENCE_UPDATE")
	add(IntentGuildMessages, "MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE", "MESSAGE_DELETE_BULK")
	add(IntentGuildMessageReactions, "MESSAGE_REACTION_ADD", "MESSAGE_REACTION_REMOVE",
		"MESSAGE_REACTION_REMOVE_ALL", "MESSAGE_REACTION_REMOVE_EMOJI")
	add(IntentGuildMessageTyping, "TYPING_START")
	add(IntentGuildScheduledEvents, "GUILD_SCHEDULED_EVENT_CREATE", "GUILD_SCHEDULED_EVENT_UPDATE",
		"GUILD_SCHEDULED_EVENT_DELETE", "GUILD_SCHEDULED_EVENT_USER_ADD", "GUILD_SCHEDULED_EVENT_USER_REMOVE")
	add(IntentAutoModerationConfiguration, "AUTO_MODERATION_RULE_CREATE", "AUTO_MODERATION_RULE_UPDATE", "AUTO_MODERATION_RULE_DELETE")
	add(IntentAutoModerationExecution, "AUTO_MODERATION_ACTION_EXECUTION")
	add(IntentGuildMessagePolls, "MESSAGE_POLL_VOTE_ADD", "MESSAGE_POLL_VOTE_REMOVE")
	dm := map[string]uint64{}
	for n, i := range g {
		switch i {
		case IntentGuildMessages:
			if n != "MESSAGE_DELETE_BULK" {
				dm[n] = IntentDirectMessages
			}
		case IntentGuildMessageReactions:
			dm[n] = IntentDirectMessageReactions
		case IntentGuildMessageTyping:
			dm[n] = IntentDirectMessageTyping
		case IntentGuildMessagePolls:
			dm[n] = IntentDirectMessagePolls
		}
	}
	dm["CHANNEL_PINS_UPDATE"] = IntentDirectMessages
	return g, dm
}()

// EventIntent returns the intent a session needs to receive the dispatch
// name: for a guild event, or for a direct-message one (MESSAGE_*,
// MESSAGE_REACTION_*, TYPING_START, CHANNEL_PINS_UPDATE and poll votes
// have DM forms). It returns 0 for events that need no intent (READY,
// INTERACTION_CREATE, GUILD_MEMBERS_CHUNK, unknown names, ...).
func EventIntent(name string, directMessage bool) uint64 {
	if directMessage {
		return dmIntents[name]
	}
	return eventIntents[name]
}

// marshalDispatch validates a dispatch name and encodes its data.
func marshalDispatch(name string, data any) ([]byte, error) {
	if name == "" || strings.TrimSpace(name) != name {
		return nil, fmt.Errorf("%w: event name %q", ErrInvalidDispatch, name)
	}
	if raw, ok := data.(json.RawMessage); ok {
		if !json.Valid(raw) {
			return nil, fmt.Errorf("%w: data is not valid JSON", ErrInvalidDispatch)
		}
		return raw, nil
	}
	b, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidDispatch, err)
	}
	return b, nil
}

// Dispatch sends the event name with data (encoded with encoding/json; a
// json.RawMessage is sent as is) to every live session whose shard
// receives the guild: (guild_id >> 22) % num_shards == shard_id. guildID
// "" means an event without a guild (a DM, an interaction, ...), which
// only shard 0 receives. A session that lacks the intent the event needs
// ([EventIntent]) does not get it. Disconnected sessions that can still
// resume keep the event for replay. Dispatch returns how many sessions got
// it; the error wraps ErrInvalidDispatch for an empty name, a guildID that
// is not a snowflake, or data that does not encode. The data is sent as
// given: unlike world events, MESSAGE_CREATE content is not blanked for
// sessions without MESSAGE_CONTENT.
func (s *Server) Dispatch(guildID, name string, data any) (int, error) {
	if guildID != "" && !isSnowflake(guildID) {
		return 0, fmt.Errorf("%w: guild ID %q is not a snowflake", ErrInvalidDispatch, guildID)
	}
	b, err := marshalDispatch(name, data)
	if err != nil {
		return 0, err
	}
	intent := EventIntent(name, guildID == "")
	gw := s.gw
	gw.mu.Lock()
	defer gw.mu.Unlock()
	n := 0
	for _, sess := range gw.liveSessionsLocked(time.Now()) {
		if ShardOf(guildID, sess.count) != sess.shard || (intent != 0 && sess.intents&intent == 0) {
			continue
		}
		gw.dispatchLocked(sess, name, b)
		n++
	}
	return n, nil
}

// DispatchToShard is [Server.Dispatch] for every live session with the
// given shard ID, whatever its shard count; intents are checked as for a
// guild event. The error wraps ErrInvalidDispatch for a negative shard,
// an empty name or data that does not encode.
func (s *Server) DispatchToShard(shard int, name string, data any) (int, error) {
	if shard < 0 {
		return 0, fmt.Errorf("%w: shard %d", ErrInvalidDispatch, shard)
	}
	b, err := marshalDispatch(name, data)
	if err != nil {
		return 0, err
	}
	return s.toShard(shard, name, 1, func(int) []byte { return b }), nil
}

// Stream sends n events name, with data {"n": 1} to {"n": n} in order, to
// every live session with the given shard ID, all at once (no other
// dispatch can come between them). It is meant for exactly-once tests:
// drop the connection in the middle (InjectGateway with AfterDispatches),
// resume, and check that every n arrives once, in order. It returns how
// many sessions got the events; the error wraps ErrInvalidDispatch for a
// negative shard or n, or an empty name.
func (s *Server) Stream(shard, n int, name string) (int, error) {
	if shard < 0 || n < 0 {
		return 0, fmt.Errorf("%w: shard %d, n %d", ErrInvalidDispatch, shard, n)
	}
	if _, err := marshalDispatch(name, nil); err != nil {
		return 0, err
	}
	return s.toShard(shard, name, n, func(i int) []byte { return []byte(`{"n":` + strconv.Itoa(i) + `}`) }), nil
}

// toShard dispatches n events made by data(1..n) to the shard's sessions.
func (s *Server) toShard(shard int, name string, n int, data func(i int) []byte) int {
	intent := EventIntent(name, false)
	gw := s.gw
	gw.mu.Lock()
	defer gw.mu.Unlock()
	count := 0
	for _, sess := range gw.liveSessionsLocked(time.Now()) {
		if sess.shard != shard || (intent != 0 && sess.intents&intent == 0) {
			continue
		}
		for i := 1; i <= n; i++ {
			gw.dispatchLocked(sess, name, data(i))
		}
		count++
	}
	return count
}

// onEvent turns world events into dispatches. Sessions without
// MESSAGE_CONTENT get blank content, embeds, attachments and components,
// except in the bot's own messages and messages that mention it.
func (gw *gateway) onEvent(ev Event) {
	if !gw.anyRecipient(ev) {
		return // spare the encoding: REST benchmarks create many messages
	}
	w := gw.s.world
	botID := w.botID
	var full, redacted []byte
	marshal := func(v any) []byte {
		b, _ := json.Marshal(v)
		return b
	}
	switch ev.Type {
	case "MESSAGE_CREATE", "MESSAGE_UPDATE":
		m := ev.Message
		js := w.messageJSON(&m)
		if ev.GuildID != "" && m.WebhookID == "" {
			js["member"] = memberJSON(ev.GuildID, gw.memberByID(m.AuthorID, m.AuthorName), false)
		}
		mentioned := mentionsBot(m.Content, botID)
		if mentioned {
			u := userJSON(botID, BotUsername, true)
			if ev.GuildID != "" {
				u["member"] = memberJSON(ev.GuildID, Member{ID: botID, Username: BotUsername, Bot: true}, false)
			}
			js["mentions"] = []any{u}
		}
		full = marshal(js)
		if m.AuthorID != botID && !mentioned {
			r := maps.Clone(js)
			r["content"] = ""
			r["embeds"], r["attachments"], r["components"] = []any{}, []any{}, []any{}
			redacted = marshal(r)
		}
	case "MESSAGE_DELETE":
		d := map[string]any{"id": ev.Message.ID, "channel_id": ev.ChannelID}
		if ev.GuildID != "" {
			d["guild_id"] = ev.GuildID
		}
		full = marshal(d)
	case "MESSAGE_REACTION_ADD", "MESSAGE_REACTION_REMOVE":
		d := map[string]any{
			"user_id": ev.UserID, "channel_id": ev.ChannelID, "message_id": ev.Message.ID,
			"emoji": emojiJSON(ev.Emoji), "burst": false, "type": 0,
		}
		if ev.GuildID != "" {
			d["guild_id"] = ev.GuildID
		}
		if ev.Type == "MESSAGE_REACTION_ADD" {
			d["message_author_id"] = ev.Message.AuthorID
			d["burst_colors"] = []any{}
			if ev.GuildID != "" {
				d["member"] = memberJSON(ev.GuildID, gw.memberByID(ev.UserID, "mock-user"), true)
			}
		}
		full = marshal(d)
	case "TYPING_START":
		d := map[string]any{"channel_id": ev.ChannelID, "user_id": ev.UserID, "timestamp": unixSeconds(ev.Time)}
		if ev.GuildID != "" {
			d["guild_id"] = ev.GuildID
			d["member"] = memberJSON(ev.GuildID, gw.memberByID(ev.UserID, "mock-user"), true)
		}
		full = marshal(d)
	default:
		return
	}
	intent := EventIntent(ev.Type, ev.GuildID == "")
	gw.mu.Lock()
	defer gw.mu.Unlock()
	for _, sess := range gw.liveSessionsLocked(time.Now()) {
		if ShardOf(ev.GuildID, sess.count) != sess.shard || (intent != 0 && sess.intents&intent == 0) {
			continue
		}
		d := full
		if redacted != nil && sess.intents&IntentMessageContent == 0 {
			d = redacted
		}
		gw.dispatchLocked(sess, ev.Type, d)
	}
}

// anyRecipient reports whether a live session would receive ev now.
func (gw *gateway) anyRecipient(ev Event) bool {
	intent := EventIntent(ev.Type, ev.GuildID == "")
	gw.mu.Lock()
	defer gw.mu.Unlock()
	for _, sess := range gw.liveSessionsLocked(time.Now()) {
		if ShardOf(ev.GuildID, sess.count) == sess.shard && (intent == 0 || sess.intents&intent != 0) {
			return true
		}
	}
	return false
}

// GatewaySession is a snapshot of a live gateway session.
type GatewaySession struct {
	// ID is the session_id READY carried.
	ID string `json:"id"`
	// Shard is the session's shard_id.
	Shard int `json:"shard"`
	// ShardCount is the session's num_shards.
	ShardCount int `json:"shard_count"`
	// Seq is the last sequence number the session used.
	Seq int64 `json:"seq"`
	// Connected reports that a connection serves the session now.
	Connected bool `json:"connected"`
	// Conn is that connection's number (see GatewayObservation.Conn), 0
	// when disconnected.
	Conn int `json:"conn,omitempty"`
	// Intents is the IDENTIFY's intents.
	Intents uint64 `json:"intents"`
	// Compress reports that IDENTIFY asked for payload compression.
	Compress bool `json:"compress,omitempty"`
	// Buffered is how many dispatches are kept for replay.
	Buffered int `json:"buffered"`
	// DisconnectedAt is when the last connection ended (zero if never).
	DisconnectedAt time.Time `json:"disconnected_at"`
}

// Sessions returns the live gateway sessions (connected, or disconnected
// but still resumable), oldest first. Sessions invalidated (client close
// 1000/1001, op 9 d=false, closes that end sessions) or expired
// (disconnected longer than Options.SessionTTL) are gone.
func (s *Server) Sessions() []GatewaySession {
	gw := s.gw
	gw.mu.Lock()
	defer gw.mu.Unlock()
	var out []GatewaySession
	for _, sess := range gw.liveSessionsLocked(time.Now()) {
		g := GatewaySession{
			ID: sess.id, Shard: sess.shard, ShardCount: sess.count, Seq: sess.seq,
			Connected: sess.conn != nil, Intents: sess.intents, Compress: sess.compress,
			Buffered: len(sess.ring.frames), DisconnectedAt: sess.disconnectedAt,
		}
		if sess.conn != nil {
			g.Conn = sess.conn.id
		}
		out = append(out, g)
	}
	return out
}
