package reference

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/cordkit/cordkit/protocols"
)

// Presence is the d of a Presence Update (op 3), and IDENTIFY's presence
// (discord-protocol.md §E.2). Discord allows 5 updates per 20 seconds.
type Presence struct {
	// Since is when the client went idle, in Unix milliseconds; 0 sends
	// null (not idle).
	Since int64
	// Activities are the bot's activities; a bot may set only name,
	// state, type and url.
	Activities []Activity
	// Status is "online", "dnd", "idle", "invisible" or "offline".
	Status string
	// AFK says whether the client is AFK.
	AFK bool
}

// Activity is one activity of a [Presence].
type Activity struct {
	Name  string `json:"name"`
	Type  int    `json:"type"`
	State string `json:"state,omitempty"`
	URL   string `json:"url,omitempty"`
}

// MarshalJSON writes Discord's shape: since is null when zero, activities
// is never null.
func (p Presence) MarshalJSON() ([]byte, error) {
	w := struct {
		Since      *int64     `json:"since"`
		Activities []Activity `json:"activities"`
		Status     string     `json:"status"`
		AFK        bool       `json:"afk"`
	}{Activities: p.Activities, Status: p.Status, AFK: p.AFK}
	if p.Since != 0 {
		w.Since = &p.Since
	}
	if w.Activities == nil {
		w.Activities = []Activity{}
	}
	return json.Marshal(w)
}

// UpdatePresence sends a Presence Update (op 3) through sh.
func UpdatePresence(ctx context.Context, sh protocols.Shard, p Presence) error {
	return sh.Send(ctx, protocols.OpPresenceUpdate, p)
}

// VoiceStateUpdate is the d of a Voice State Update (op 4)
// (discord-protocol.md §E.3).
type VoiceStateUpdate struct {
	// GuildID is the guild.
	GuildID string
	// ChannelID is the voice channel to join; "" sends null: leave.
	ChannelID string
	// SelfMute and SelfDeaf are the bot's own mute and deafen states.
	SelfMute, SelfDeaf bool
}

// MarshalJSON writes Discord's shape, with a null channel_id to leave.
func (v VoiceStateUpdate) MarshalJSON() ([]byte, error) {
	w := struct {
		GuildID   string  `json:"guild_id"`
		ChannelID *string `json:"channel_id"`
		SelfMute  bool    `json:"self_mute"`
		SelfDeaf  bool    `json:"self_deaf"`
	}{GuildID: v.GuildID, SelfMute: v.SelfMute, SelfDeaf: v.SelfDeaf}
	if v.ChannelID != "" {
		w.ChannelID = &v.ChannelID
	}
	return json.Marshal(w)
}

// UpdateVoiceState sends a Voice State Update (op 4) through sh. Discord
// answers a successful one with VOICE_STATE_UPDATE and VOICE_SERVER_UPDATE
// dispatches; wait for both with the event dispatcher's WaitFor.
func UpdateVoiceState(ctx context.Context, sh protocols.Shard, v VoiceStateUpdate) error {
	return sh.Send(ctx, protocols.OpVoiceStateUpdate, v)
}

// GuildMembersRequest is a Request Guild Members (op 8)
// (discord-protocol.md §E.1). Set either Query (with Limit) or UserIDs.
type GuildMembersRequest struct {
	// GuildID is the one guild asked about.
	GuildID string
	// Query is a username prefix; "" with Limit 0 asks for every member
	// (needs the GUILD_MEMBERS intent; once per guild per 30 s).
	Query string
	// Limit is the most members to return; 0 means no limit for an empty
	// Query, and at most 100 are returned for a prefix.
	Limit int
	// UserIDs asks for specific users (at most 100) instead of Query.
	UserIDs []string
	// Presences asks for the members' presences (needs GUILD_PRESENCES).
	Presences bool
}

// GuildMembers is the answer to a [GuildMembersRequest], gathered from
// every GUILD_MEMBERS_CHUNK.
type GuildMembers struct {
	// Members are the guild member objects, raw, in chunk order.
	Members []json.RawMessage
	// Presences are the presence objects, raw, when asked for.
	Presences []json.RawMessage
	// NotFound are the UserIDs Discord did not find. Discord sends small
	// IDs back as numbers; they are given here as strings.
	NotFound []string
}

// MemberRequestRateLimitedError is returned by [RequestGuildMembers] when
// Discord answered with a RATE_LIMITED dispatch instead of chunks.
type MemberRequestRateLimitedError struct {
	// GuildID is the guild asked about.
	GuildID string
	// RetryAfter is how long Discord asked to wait.
	RetryAfter time.Duration
}

// Error describes the failure.
func (e *MemberRequestRateLimitedError) Error() string {
	return fmt.Sprintf("reference: request guild members of %s: rate limited, retry after %v", e.GuildID, e.RetryAfter)
}

// Is reports whether target is [protocols.ErrRateLimited].
func (e *MemberRequestRateLimitedError) Is(target error) bool {
	return target == protocols.ErrRateLimited
}

// memberChunk is the part of GUILD_MEMBERS_CHUNK the gatherer reads.
type memberChunk struct {
	GuildID    string            `json:"guild_id"`
	Members    []json.RawMessage `json:"members"`
	ChunkIndex int               `json:"chunk_index"`
	ChunkCount int               `json:"chunk_count"`
	NotFound   []json.RawMessage `json:"not_found"`
	Presences  []json.RawMessage `json:"presences"`
	Nonce      string            `json:"nonce"`
}

// rateLimited is the d of a RATE_LIMITED dispatch.
type rateLimited struct {
	Opcode     int     `json:"opcode"`
	RetryAfter float64 `json:"retry_after"`
	Meta       struct {
		GuildID string `json:"guild_id"`
		Nonce   string `json:"nonce"`
	} `json:"meta"`
}

// RequestGuildMembers sends a Request Guild Members (op 8) through sh with
// a new nonce, and gathers the GUILD_MEMBERS_CHUNK dispatches carrying it
// from events (the dispatcher sh hands its dispatches to) until
// chunk_count chunks have arrived. It listens before sending, so no chunk
// is missed. A RATE_LIMITED dispatch for the nonce ends it with a
// *[MemberRequestRateLimitedError]; ctx bounds the whole wait (Discord
// sends nothing for a request it ignores, so give ctx a deadline).
//
// The chunks are decoded on the shard's dispatching goroutine; the members
// are kept raw, for the caller to decode into its own types. Do not call
// it from a handler of events: the chunks are delivered by the goroutine
// the handler is holding, so it would wait until ctx ends.
func RequestGuildMembers(ctx context.Context, sh protocols.Shard, events protocols.Dispatcher, req GuildMembersRequest) (GuildMembers, error) {
	if events == nil {
		return GuildMembers{}, errors.New("reference: request guild members: no event dispatcher")
	}
	if req.GuildID == "" {
		return GuildMembers{}, errors.New("reference: request guild members: no guild ID")
	}
	nonce, err := newNonce()
	if err != nil {
		return GuildMembers{}, err
	}
	shardID := sh.Status().ID

	g := &gatherer{nonce: nonce, guildID: req.GuildID, done: make(chan struct{})}
	removeChunks := events.Listen("GUILD_MEMBERS_CHUNK", func(ev protocols.Event) {
		if ev.Shard == shardID {
			g.chunk(ev.Data)
		}
	})
	defer removeChunks()
	removeLimited := events.Listen("RATE_LIMITED", func(ev protocols.Event) {
		if ev.Shard == shardID {
			g.limited(ev.Data)
		}
	})
	defer removeLimited()

	d := map[string]any{"guild_id": req.GuildID, "nonce": nonce}
	if req.UserIDs != nil {
		d["user_ids"] = req.UserIDs
	} else {
		d["query"] = req.Query
		d["limit"] = req.Limit
	}
	if req.Presences {
		d["presences"] = true
	}
	if err := sh.Send(ctx, protocols.OpRequestGuildMembers, d); err != nil {
		return GuildMembers{}, err
	}
	select {
	case <-g.done:
	case <-ctx.Done():
		return GuildMembers{}, fmt.Errorf("reference: request guild members of %s: %w", req.GuildID, ctx.Err())
	}
	return g.result()
}

// newNonce returns 16 random hex characters (Discord allows 32 bytes).
func newNonce() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("reference: nonce: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// gatherer collects the chunks of one request.
type gatherer struct {
	nonce, guildID string

	mu     sync.Mutex
	chunks map[int]memberChunk
	count  int
	err    error
	over   bool
	done   chan struct{}
}

func (g *gatherer) chunk(data []byte) {
	var c memberChunk
	if json.Unmarshal(data, &c) != nil || c.Nonce != g.nonce {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.over {
		return
	}
	if g.chunks == nil {
		g.chunks = make(map[int]memberChunk)
	}
	g.chunks[c.ChunkIndex] = c
	g.count = max(g.count, c.ChunkCount, 1)
	if len(g.chunks) >= g.count {
		g.over = true
		close(g.done)
	}
}

func (g *gatherer) limited(data []byte) {
	var r rateLimited
	if json.Unmarshal(data, &r) != nil || r.Meta.Nonce != g.nonce {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.over {
		return
	}
	g.err = &MemberRequestRateLimitedError{GuildID: g.guildID, RetryAfter: time.Duration(r.RetryAfter * float64(time.Second))}
	g.over = true
	close(g.done)
}

func (g *gatherer) result() (GuildMembers, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		return GuildMembers{}, g.err
	}
	var out GuildMembers
	for i := range g.count {
		c := g.chunks[i]
		out.Members = append(out.Members, c.Members...)
		out.Presences = append(out.Presences, c.Presences...)
		for _, id := range c.NotFound {
			out.NotFound = append(out.NotFound, snowflakeString(id))
		}
	}
	return out, nil
}

// snowflakeString reads an ID sent as a string or a number.
func snowflakeString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return strconv.Quote(string(raw))
}
