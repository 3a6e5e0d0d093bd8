package mockdiscord

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// closeTexts are the reasons Discord sends with its close codes.
var closeTexts = map[int]string{
	4000: "Unknown error.",
	4001: "Unknown opcode.",
	4002: "Error while decoding payload.",
	4003: "Not authenticated.",
	4004: "Authentication failed.",
	4005: "Already authenticated.",
	4007: "Invalid seq.",
	4008: "Rate limited.",
	4009: "Session timed out.",
	4010: "Invalid shard.",
	4011: "Sharding required.",
	4012: "Invalid API version.",
	4013: "Invalid intent(s).",
	4014: "Disallowed intent(s).",
}

// closeReason is the close frame's reason for code: Discord's text and
// the mock's detail, at most 123 bytes.
func closeReason(code int, detail string) string {
	r := closeTexts[code]
	switch {
	case r == "":
		r = detail
	case detail != "":
		r += " " + detail
	}
	if len(r) > 123 {
		r = r[:123]
	}
	return r
}

// presenceWindow and presenceLimit are Discord's presence update limit:
// 5 per 20 seconds.
const (
	presenceWindow = 20 * time.Second
	presenceLimit  = 5
)

// handle processes one complete client message.
func (c *gwConn) handle(msg []byte) {
	now := time.Now()
	var env struct {
		Op *int            `json:"op"`
		D  json.RawMessage `json:"d"`
	}
	decoded := json.Unmarshal(msg, &env) == nil && env.Op != nil
	op := -1
	if decoded {
		op = *env.Op
	}
	gw := c.gw
	cfg := &c.s.cfg
	gw.mu.Lock()
	if c.closing {
		gw.mu.Unlock()
		return
	}
	gw.recordLocked(GatewayObservation{Time: now, Kind: ObserveReceive, Conn: c.id, Shard: c.shardLocked(), Op: op, Size: len(msg)})
	if cfg.SendLimit > 0 && (op != 1 || !cfg.SendLimitExemptsHeartbeats) {
		i := 0
		for i < len(c.sends) && now.Sub(c.sends[i]) >= SendLimitWindow {
			i++
		}
		c.sends = c.sends[i:]
		if len(c.sends) >= cfg.SendLimit {
			c.violateLocked(4008, fmt.Sprintf("more than %d payloads in %v", cfg.SendLimit, SendLimitWindow))
			gw.mu.Unlock()
			return
		}
		c.sends = append(c.sends, now)
	}
	authed := c.authed
	gw.mu.Unlock()

	if !decoded {
		c.fail(4002, "not a JSON object with an integer op")
		return
	}
	switch op {
	case 1:
		c.heartbeat(env.D, now)
	case 2:
		c.identify(env.D, now)
	case 6:
		c.resume(env.D, now)
	case 3, 4, 8, 31, 43:
		if !authed {
			c.fail(4003, fmt.Sprintf("op %d before IDENTIFY", op))
			return
		}
		switch op {
		case 3:
			c.presence(env.D, now)
		case 4:
			c.voiceState(env.D, now)
		case 8:
			c.requestMembers(env.D, now)
		case 31:
			c.requestSoundboard(env.D)
		case 43:
			c.requestChannelInfo(env.D)
		}
	default:
		c.fail(4001, fmt.Sprintf("op %d", op))
	}
}

// fail records a violation and closes with code (taking the lock).
func (c *gwConn) fail(code int, detail string) {
	c.gw.mu.Lock()
	defer c.gw.mu.Unlock()
	c.violateLocked(code, detail)
}

// jsonObject is a decoded JSON object with raw values.
type jsonObject map[string]json.RawMessage

// parseObject decodes raw as a JSON object (not null).
func parseObject(raw json.RawMessage) (jsonObject, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, false
	}
	var o jsonObject
	if json.Unmarshal(raw, &o) != nil {
		return nil, false
	}
	return o, true
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// has reports whether key is present and not null.
func (o jsonObject) has(key string) bool {
	raw, ok := o[key]
	return ok && !isNull(raw)
}

// str returns a string field; ok is false when it is absent or not a
// string.
func (o jsonObject) str(key string) (string, bool) {
	raw, ok := o[key]
	if !ok {
		return "", false
	}
	return rawString(raw)
}

func rawString(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// integer returns an integer field written as a JSON integer literal.
func (o jsonObject) integer(key string) (int64, bool) {
	raw, ok := o[key]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64)
	return n, err == nil
}

// boolean returns a boolean field.
func (o jsonObject) boolean(key string) (bool, bool) {
	raw, ok := o[key]
	if !ok {
		return false, false
	}
	switch string(bytes.TrimSpace(raw)) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// array returns an array field's elements.
func (o jsonObject) array(key string) ([]json.RawMessage, bool) {
	raw, ok := o[key]
	if !ok {
		return nil, false
	}
	return jsonArray(raw)
}

func jsonArray(raw json.RawMessage) ([]json.RawMessage, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		return nil, false
	}
	var a []json.RawMessage
	if json.Unmarshal(raw, &a) != nil {
		return nil, false
	}
	return a, true
}

// isSnowflake reports whether s is a decimal uint64.
func isSnowflake(s string) bool {
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}

// heartbeat answers op 1.
func (c *gwConn) heartbeat(d json.RawMessage, now time.Time) {
	seq := int64(-1)
	if len(d) > 0 && !isNull(d) {
		n, err := strconv.ParseInt(string(bytes.TrimSpace(d)), 10, 64)
		if err != nil {
			c.fail(4001, "heartbeat d must be an integer or null")
			return
		}
		seq = n
	}
	gw := c.gw
	gw.mu.Lock()
	defer gw.mu.Unlock()
	if c.closing {
		return
	}
	c.lastBeat = now
	ack := true
	switch {
	case c.stopAck < 0:
		ack = false
	case c.stopAck > 0:
		c.stopAck--
		ack = false
	}
	o := GatewayObservation{Time: now, Kind: ObserveHeartbeat, Conn: c.id, Shard: c.shardLocked(), Seq: seq, Acked: ack}
	if c.sess != nil {
		o.Session = c.sess.id
	}
	gw.recordLocked(o)
	if ack {
		c.sendLocked(11, "")
	}
}

// identifyRequest is a validated IDENTIFY.
type identifyRequest struct {
	intents        uint64
	shard, count   int
	sentShard      bool
	compress       bool
	largeThreshold int
}

// parseIdentify validates IDENTIFY's d. On failure it returns the close
// code and why.
func (c *gwConn) parseIdentify(d json.RawMessage) (identifyRequest, int, string) {
	cfg := &c.s.cfg
	req := identifyRequest{count: 1, largeThreshold: 50}
	o, ok := parseObject(d)
	if !ok {
		return req, 4001, "IDENTIFY d must be an object"
	}
	token, ok := o.str("token")
	switch {
	case !ok:
		return req, 4004, "IDENTIFY has no token string"
	case strings.TrimPrefix(token, "Bot ") != cfg.Token:
		return req, 4004, "wrong token"
	}
	props, ok := o["properties"]
	if !ok {
		return req, 4001, "IDENTIFY has no properties"
	}
	po, ok := parseObject(props)
	if !ok {
		return req, 4001, "properties must be an object"
	}
	for _, k := range []string{"os", "browser", "device", "$os", "$browser", "$device"} {
		if raw, ok := po[k]; ok {
			if _, ok := rawString(raw); !ok {
				return req, 4001, "properties." + k + " must be a string"
			}
		}
	}
	raw, ok := o["intents"]
	if !ok {
		return req, 4001, "IDENTIFY has no intents (required since v8)"
	}
	intents, err := strconv.ParseUint(string(bytes.TrimSpace(raw)), 10, 64)
	if err != nil {
		return req, 4001, "intents must be a non-negative integer"
	}
	req.intents = intents
	if o.has("shard") {
		a, ok := o.array("shard")
		if !ok || len(a) != 2 {
			return req, 4010, "shard must be [shard_id, num_shards]"
		}
		id, err1 := strconv.Atoi(string(bytes.TrimSpace(a[0])))
		n, err2 := strconv.Atoi(string(bytes.TrimSpace(a[1])))
		if err1 != nil || err2 != nil {
			return req, 4010, "shard must be [shard_id, num_shards]"
		}
		req.shard, req.count, req.sentShard = id, n, true
	}
	if _, present := o["compress"]; present {
		b, ok := o.boolean("compress")
		if !ok {
			return req, 4001, "compress must be a boolean"
		}
		req.compress = b
	}
	if _, present := o["large_threshold"]; present {
		n, ok := o.integer("large_threshold")
		if !ok || n < 50 || n > 250 {
			return req, 4001, "large_threshold must be an integer from 50 to 250"
		}
		req.largeThreshold = int(n)
	}
	// IDENTIFY's presence is only checked to be an object: widely used
	// libraries (discordgo) send a legacy shape ({"since":0,"game":{...},
	// "status":"","afk":false}) that Discord accepts.
	if o.has("presence") {
		if _, ok := parseObject(o["presence"]); !ok {
			return req, 4001, "presence must be an object"
		}
	}
	if bad := intents &^ AllIntents; bad != 0 {
		return req, 4013, fmt.Sprintf("undefined intent bits %#x", bad)
	}
	if bad := intents & PrivilegedIntents &^ cfg.AllowedPrivilegedIntents; bad != 0 {
		return req, 4014, fmt.Sprintf("privileged intents %#x are not enabled", bad)
	}
	if req.count < 1 || req.shard < 0 || req.shard >= req.count {
		return req, 4010, fmt.Sprintf("shard [%d, %d]", req.shard, req.count)
	}
	if limit := cfg.MaxGuildsPerShard; limit > 0 {
		n := 0
		for _, g := range c.s.world.guilds {
			if ShardOf(g.ID, req.count) == req.shard {
				n++
			}
		}
		if n > limit {
			return req, 4011, fmt.Sprintf("shard [%d, %d] would have %d guilds, more than %d", req.shard, req.count, n, limit)
		}
	}
	return req, 0, ""
}

// identify answers op 2.
func (c *gwConn) identify(d json.RawMessage, now time.Time) {
	s := c.s
	cfg := &s.cfg
	gw := c.gw
	obs := GatewayObservation{Time: now, Kind: ObserveIdentify, Conn: c.id, Shard: -1}
	gw.mu.Lock()
	authed := c.authed
	gw.mu.Unlock()
	if authed {
		gw.mu.Lock()
		defer gw.mu.Unlock()
		obs.Reason = "already authenticated"
		gw.recordLocked(obs)
		c.violateLocked(4005, "second IDENTIFY on one connection")
		return
	}
	req, code, detail := c.parseIdentify(d)
	obs.Intents, obs.Compress = req.intents, req.compress
	if req.count >= 1 && req.shard >= 0 && req.shard < req.count {
		obs.Shard, obs.ShardCount, obs.Bucket = req.shard, req.count, req.shard%cfg.MaxConcurrency
	}
	if code != 0 {
		gw.mu.Lock()
		defer gw.mu.Unlock()
		obs.Reason = detail
		gw.recordLocked(obs)
		c.violateLocked(code, detail)
		return
	}
	bucket := obs.Bucket
	reject := func(detail string) {
		obs.Reason = detail
		gw.recordLocked(obs)
		gw.recordLocked(GatewayObservation{Time: now, Kind: ObserveViolation, Conn: c.id, Shard: req.shard, ShardCount: req.count, Bucket: bucket, Reason: detail})
		c.invalidSessionLocked(false)
	}
	gw.mu.Lock()
	if c.closing {
		gw.mu.Unlock()
		return
	}
	last, hadLast := gw.identAt[bucket]
	if cfg.IdentifyInterval > 0 && hadLast && now.Sub(last) < cfg.IdentifyInterval {
		reject(fmt.Sprintf("identify too fast: bucket %d (shard %d %% max_concurrency %d) identified %v ago; one per %v allowed",
			bucket, req.shard, cfg.MaxConcurrency, now.Sub(last), cfg.IdentifyInterval))
		gw.mu.Unlock()
		return
	}
	gw.identAt[bucket] = now
	gw.mu.Unlock()

	if !s.ConsumeSessionStart() {
		gw.mu.Lock()
		defer gw.mu.Unlock()
		if gw.identAt[bucket].Equal(now) {
			if hadLast {
				gw.identAt[bucket] = last
			} else {
				delete(gw.identAt, bucket)
			}
		}
		reject("session start limit exhausted (session_start_limit.remaining is 0)")
		return
	}

	// The world's part of READY and GUILD_CREATE, read under s.mu.
	s.mu.Lock()
	var guildIDs []string
	var creates [][]byte
	for _, g := range s.world.guilds {
		if ShardOf(g.ID, req.count) != req.shard {
			continue
		}
		guildIDs = append(guildIDs, g.ID)
		if req.intents&IntentGuilds != 0 {
			b, err := json.Marshal(s.guildCreateJSON(g, req.largeThreshold))
			if err == nil {
				creates = append(creates, b)
			}
		}
	}
	bot := s.world.botUserJSON()
	s.mu.Unlock()

	gw.mu.Lock()
	defer gw.mu.Unlock()
	if c.closing {
		return
	}
	gw.nextSess++
	sess := &session{
		id: sessionID(gw.nextSess), shard: req.shard, count: req.count, intents: req.intents,
		compress: req.compress, conn: c, ring: newReplayRing(cfg.ReplayBuffer),
	}
	gw.sessions = append(gw.sessions, sess)
	c.sess, c.authed = sess, true
	c.payloadCompress = req.compress && !c.transportCompressed()
	obs.Accepted, obs.Session = true, sess.id
	gw.recordLocked(obs)

	unavailable := make([]any, 0, len(guildIDs))
	for _, id := range guildIDs {
		unavailable = append(unavailable, map[string]any{"id": id, "unavailable": true})
	}
	flags := 0
	if cfg.AllowedPrivilegedIntents&IntentGuildPresences != 0 {
		flags |= flagGatewayPresenceLimited
	}
	if cfg.AllowedPrivilegedIntents&IntentGuildMembers != 0 {
		flags |= flagGatewayGuildMembersLimited
	}
	if cfg.AllowedPrivilegedIntents&IntentMessageContent != 0 {
		flags |= flagGatewayMessageContentLimited
	}
	ready := map[string]any{
		"v": c.version, "user": bot, "guilds": unavailable,
		"session_id": sess.id, "session_type": "normal", "resume_gateway_url": c.resumeURL(),
		"application":      map[string]any{"id": s.world.botID, "flags": flags},
		"private_channels": []any{}, "relationships": []any{}, "presences": []any{},
		"_trace": []string{`["mockdiscord-gateway",{"micros":0}]`},
	}
	if req.sentShard {
		ready["shard"] = []int{req.shard, req.count}
	}
	b, err := json.Marshal(ready)
	if err != nil {
		return
	}
	gw.dispatchLocked(sess, "READY", b)
	for _, gc := range creates {
		gw.dispatchLocked(sess, "GUILD_CREATE", gc)
	}
	gw.armNextLocked(c)
}

// resumeURL is READY's resume_gateway_url for this connection.
func (c *gwConn) resumeURL() string {
	if u := c.s.cfg.ResumeGatewayURL; u != "" {
		return u
	}
	return "ws://" + c.host + gatewayResumePath
}

// resume answers op 6.
func (c *gwConn) resume(d json.RawMessage, now time.Time) {
	gw := c.gw
	cfg := &c.s.cfg
	obs := GatewayObservation{Time: now, Kind: ObserveResume, Conn: c.id, Shard: -1, Seq: -1}
	gw.mu.Lock()
	defer gw.mu.Unlock()
	if c.closing {
		return
	}
	reject := func(code int, detail string) {
		obs.Reason = detail
		gw.recordLocked(obs)
		c.violateLocked(code, detail)
	}
	if c.authed {
		reject(4005, "RESUME on an authenticated connection")
		return
	}
	o, ok := parseObject(d)
	if !ok {
		reject(4001, "RESUME d must be an object")
		return
	}
	token, ok := o.str("token")
	if !ok || strings.TrimPrefix(token, "Bot ") != cfg.Token {
		reject(4004, "wrong or missing token")
		return
	}
	id, ok := o.str("session_id")
	if !ok {
		reject(4001, "RESUME has no session_id string")
		return
	}
	obs.Session = id
	raw, ok := o["seq"]
	if !ok {
		reject(4001, "RESUME has no seq")
		return
	}
	seq := int64(0)
	if !isNull(raw) {
		n, ok := o.integer("seq")
		if !ok {
			reject(4001, "seq must be an integer or null")
			return
		}
		seq, obs.Seq = n, n
	}
	sess, why := gw.sessionLocked(id, now)
	if sess == nil {
		obs.Reason = why
		gw.recordLocked(obs)
		c.invalidSessionLocked(false)
		return
	}
	obs.Shard, obs.ShardCount = sess.shard, sess.count
	switch {
	case seq > sess.seq:
		sess.invalid = true
		reject(4007, fmt.Sprintf("seq %d is ahead of the session's last seq %d", seq, sess.seq))
		return
	case seq < sess.ring.evicted:
		sess.invalid = true
		obs.Reason = fmt.Sprintf("seq %d is older than the replay buffer (dispatches up to %d are gone)", seq, sess.ring.evicted)
		gw.recordLocked(obs)
		c.closeLocked(4007, closeReason(4007, "too old to replay"), false)
		return
	}
	if old := sess.conn; old != nil && old != c && !old.closing {
		old.closing, old.closeRecorded = true, true
		old.detachLocked(now)
		gw.recordLocked(GatewayObservation{Time: now, Kind: ObserveClose, Conn: old.id, Shard: sess.shard, By: "server",
			Reason: fmt.Sprintf("dropped: session resumed on connection %d", c.id)})
		old.finish()
	}
	sess.conn = c
	c.sess, c.authed = sess, true
	c.payloadCompress = sess.compress && !c.transportCompressed()
	frames := sess.ring.after(seq)
	obs.Accepted, obs.Replayed = true, len(frames)
	gw.recordLocked(obs)
	for _, f := range frames {
		c.sendDispatchLocked(f.payload)
	}
	sess.seq++
	c.sendDispatchLocked(envelope(0, []byte("{}"), sess.seq, "RESUMED"))
	gw.armNextLocked(c)
}

// errInvalid builds validation errors for presence and voice payloads.
func errInvalid(format string, args ...any) error { return fmt.Errorf(format, args...) }

// validatePresence checks an op 3 d: since (null or an integer),
// activities (an array, or null as some libraries send for none; each
// with a string name and a type from 0 to 5), status and afk are
// required.
func validatePresence(raw json.RawMessage) error {
	o, ok := parseObject(raw)
	if !ok {
		return errors.New("must be an object")
	}
	if s, ok := o["since"]; !ok {
		return errors.New("since is required (null or a Unix time in ms)")
	} else if !isNull(s) {
		if _, ok := o.integer("since"); !ok {
			return errors.New("since must be null or an integer")
		}
	}
	acts, ok := o.array("activities")
	if !ok && !(o["activities"] != nil && isNull(o["activities"])) {
		return errors.New("activities must be an array (or null)")
	}
	for i, a := range acts {
		ao, ok := parseObject(a)
		if !ok {
			return errInvalid("activities[%d] must be an object", i)
		}
		if _, ok := ao.str("name"); !ok {
			return errInvalid("activities[%d].name must be a string", i)
		}
		t, ok := ao.integer("type")
		if !ok || t < 0 || t > 5 {
			return errInvalid("activities[%d].type must be an integer from 0 to 5", i)
		}
		for _, k := range []string{"url", "state"} {
			if ao.has(k) {
				if _, ok := ao.str(k); !ok {
					return errInvalid("activities[%d].%s must be a string or null", i, k)
				}
			}
		}
	}
	switch st, _ := o.str("status"); st {
	case "online", "dnd", "idle", "invisible", "offline":
	default:
		return errInvalid("status %q is not online, dnd, idle, invisible or offline", st)
	}
	if _, ok := o.boolean("afk"); !ok {
		return errors.New("afk must be a boolean")
	}
	return nil
}

// presence handles op 3.
func (c *gwConn) presence(d json.RawMessage, now time.Time) {
	if err := validatePresence(d); err != nil {
		c.fail(4001, "presence update: "+err.Error())
		return
	}
	gw := c.gw
	gw.mu.Lock()
	defer gw.mu.Unlock()
	if c.closing {
		return
	}
	i := 0
	for i < len(c.presences) && now.Sub(c.presences[i]) >= presenceWindow {
		i++
	}
	c.presences = append(c.presences[i:], now)
	gw.recordLocked(GatewayObservation{Time: now, Kind: ObservePresence, Conn: c.id, Shard: c.shardLocked(), Accepted: true, Data: bytes.Clone(d)})
	if len(c.presences) > presenceLimit {
		gw.recordLocked(GatewayObservation{Time: now, Kind: ObserveViolation, Conn: c.id, Shard: c.shardLocked(),
			Reason: fmt.Sprintf("presence updates: more than %d in %v", presenceLimit, presenceWindow)})
	}
}

// voiceState handles op 4. The fake world has no voice channels, so the
// mock only validates and records it.
func (c *gwConn) voiceState(d json.RawMessage, now time.Time) {
	o, ok := parseObject(d)
	detail := ""
	switch {
	case !ok:
		detail = "d must be an object"
	case !isSnowflakeField(o, "guild_id"):
		detail = "guild_id must be a snowflake string"
	default:
		if raw, ok := o["channel_id"]; !ok {
			detail = "channel_id is required (null to leave)"
		} else if !isNull(raw) && !isSnowflakeField(o, "channel_id") {
			detail = "channel_id must be a snowflake string or null"
		}
		for _, k := range []string{"self_mute", "self_deaf"} {
			if _, ok := o.boolean(k); !ok && detail == "" {
				detail = k + " must be a boolean"
			}
		}
	}
	if detail != "" {
		c.fail(4001, "voice state update: "+detail)
		return
	}
	gw := c.gw
	gw.mu.Lock()
	defer gw.mu.Unlock()
	gw.recordLocked(GatewayObservation{Time: now, Kind: ObserveVoiceState, Conn: c.id, Shard: c.shardLocked(), Accepted: true, Data: bytes.Clone(d)})
}

func isSnowflakeField(o jsonObject, key string) bool {
	s, ok := o.str(key)
	return ok && isSnowflake(s)
}

// requestMembers handles op 8.
func (c *gwConn) requestMembers(d json.RawMessage, now time.Time) {
	o, ok := parseObject(d)
	if !ok {
		c.fail(4001, "request guild members: d must be an object")
		return
	}
	gid, ok := o.str("guild_id")
	if !ok || !isSnowflake(gid) {
		c.fail(4001, "request guild members: guild_id must be one snowflake string")
		return
	}
	hasQ, hasU := o.has("query"), o.has("user_ids")
	if hasQ == hasU {
		c.fail(4001, "request guild members: exactly one of query and user_ids is required")
		return
	}
	var query string
	var limit int64
	if hasQ {
		if query, ok = o.str("query"); !ok {
			c.fail(4001, "request guild members: query must be a string")
			return
		}
		if limit, ok = o.integer("limit"); !ok || limit < 0 {
			c.fail(4001, "request guild members: limit (a non-negative integer) is required with query")
			return
		}
	}
	var ids []json.RawMessage
	if hasU {
		raw := o["user_ids"]
		if a, ok := jsonArray(raw); ok {
			ids = a
		} else {
			ids = []json.RawMessage{raw}
		}
		for _, id := range ids {
			s, isStr := rawString(id)
			_, numErr := strconv.ParseUint(string(bytes.TrimSpace(id)), 10, 64)
			if (isStr && !isSnowflake(s)) || (!isStr && numErr != nil) {
				c.fail(4001, "request guild members: user_ids must be snowflakes")
				return
			}
		}
		if len(ids) > 100 {
			ids = ids[:100]
		}
	}
	presences := false
	if _, present := o["presences"]; present {
		if presences, ok = o.boolean("presences"); !ok {
			c.fail(4001, "request guild members: presences must be a boolean")
			return
		}
	}
	nonce, hasNonce := o.str("nonce")
	if len(nonce) > 32 {
		hasNonce = false // an invalid nonce is ignored
	}

	gw := c.gw
	cfg := &c.s.cfg
	gw.mu.Lock()
	defer gw.mu.Unlock()
	if c.closing {
		return
	}
	sess := c.sess
	allMembers := hasQ && query == "" && limit == 0
	if allMembers && sess.intents&IntentGuildMembers == 0 {
		c.violateLocked(4001, "request guild members: the whole member list needs the GUILD_MEMBERS intent")
		return
	}
	if sess.intents&IntentGuildPresences == 0 {
		presences = false
	}
	obs := GatewayObservation{Time: now, Kind: ObserveRequestMembers, Conn: c.id, Shard: sess.shard, ShardCount: sess.count, Session: sess.id, Data: bytes.Clone(d)}
	if c.s.world.guildIdx[gid] == nil || ShardOf(gid, sess.count) != sess.shard {
		obs.Reason = "unknown guild, or not on this shard: nothing sent"
		gw.recordLocked(obs)
		return
	}
	if allMembers && cfg.RequestMembersInterval > 0 {
		if last, ok := gw.membersAt[gid]; ok && now.Sub(last) < cfg.RequestMembersInterval {
			wait := cfg.RequestMembersInterval - now.Sub(last)
			meta := map[string]any{"guild_id": gid}
			if hasNonce {
				meta["nonce"] = nonce
			}
			b, _ := json.Marshal(map[string]any{"opcode": 8, "retry_after": wait.Seconds(), "meta": meta})
			obs.Reason = "rate limited: RATE_LIMITED sent"
			gw.recordLocked(obs)
			gw.dispatchLocked(sess, "RATE_LIMITED", b)
			return
		}
		gw.membersAt[gid] = now
	}
	var found []Member
	var notFound []json.RawMessage
	if hasQ {
		maxN := int(limit)
		if query != "" && (maxN == 0 || maxN > 100) {
			maxN = 100
		}
		for _, m := range gw.members {
			if strings.HasPrefix(strings.ToLower(m.Username), strings.ToLower(query)) {
				found = append(found, m)
				if maxN > 0 && len(found) == maxN {
					break
				}
			}
		}
	} else {
		for _, raw := range ids {
			id, isStr := rawString(raw)
			if !isStr {
				id = string(bytes.TrimSpace(raw))
			}
			m, ok := gw.findMember(id)
			if ok {
				found = append(found, m)
			} else {
				notFound = append(notFound, raw)
			}
		}
	}
	size := cfg.MemberChunkSize
	count := max((len(found)+size-1)/size, 1)
	for i := 0; i < count; i++ {
		part := found[min(i*size, len(found)):min((i+1)*size, len(found))]
		list := make([]any, 0, len(part))
		for _, m := range part {
			list = append(list, memberJSON(gid, m, true))
		}
		chunk := map[string]any{"guild_id": gid, "members": list, "chunk_index": i, "chunk_count": count}
		if hasU && i == 0 {
			if notFound == nil {
				notFound = []json.RawMessage{}
			}
			chunk["not_found"] = notFound
		}
		if presences {
			ps := make([]any, 0, len(part))
			for _, m := range part {
				ps = append(ps, map[string]any{"user": map[string]any{"id": m.ID}, "status": "online", "activities": []any{}, "client_status": map[string]any{"desktop": "online"}})
			}
			chunk["presences"] = ps
		}
		if hasNonce {
			chunk["nonce"] = nonce
		}
		b, err := json.Marshal(chunk)
		if err != nil {
			continue
		}
		gw.dispatchLocked(sess, "GUILD_MEMBERS_CHUNK", b)
	}
	obs.Accepted = true
	obs.Replayed = count
	gw.recordLocked(obs)
}

// findMember finds a member by user ID.
func (gw *gateway) findMember(id string) (Member, bool) {
	for _, m := range gw.members {
		if m.ID == id {
			return m, true
		}
	}
	return Member{}, false
}

// requestSoundboard handles op 31: one empty SOUNDBOARD_SOUNDS per known
// guild of the shard.
func (c *gwConn) requestSoundboard(d json.RawMessage) {
	o, ok := parseObject(d)
	var ids []json.RawMessage
	if ok {
		ids, ok = o.array("guild_ids")
	}
	if !ok {
		c.fail(4001, "request soundboard sounds: guild_ids must be an array")
		return
	}
	gw := c.gw
	gw.mu.Lock()
	defer gw.mu.Unlock()
	if c.closing {
		return
	}
	for _, raw := range ids {
		id, _ := rawString(raw)
		if c.s.world.guildIdx[id] == nil || ShardOf(id, c.sess.count) != c.sess.shard {
			continue
		}
		b, _ := json.Marshal(map[string]any{"guild_id": id, "soundboard_sounds": []any{}})
		gw.dispatchLocked(c.sess, "SOUNDBOARD_SOUNDS", b)
	}
}

// requestChannelInfo handles op 43: an empty CHANNEL_INFO (no voice
// channels in the fake world).
func (c *gwConn) requestChannelInfo(d json.RawMessage) {
	o, ok := parseObject(d)
	detail := ""
	switch {
	case !ok:
		detail = "d must be an object"
	case !isSnowflakeField(o, "guild_id"):
		detail = "guild_id must be a snowflake string"
	default:
		fields, ok := o.array("fields")
		if !ok {
			detail = "fields must be an array"
		}
		for _, f := range fields {
			if s, _ := rawString(f); s != "status" && s != "voice_start_time" {
				detail = "fields may hold only status and voice_start_time"
			}
		}
	}
	if detail != "" {
		c.fail(4001, "request channel info: "+detail)
		return
	}
	id, _ := o.str("guild_id")
	gw := c.gw
	gw.mu.Lock()
	defer gw.mu.Unlock()
	if c.closing || c.s.world.guildIdx[id] == nil {
		return
	}
	b, _ := json.Marshal(map[string]any{"guild_id": id, "channels": []any{}})
	gw.dispatchLocked(c.sess, "CHANNEL_INFO", b)
}
