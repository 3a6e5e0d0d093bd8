package mockdiscord

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// controlPrefix is where the control API lives.
const controlPrefix = "/_mock/"

// faultJSON is the body of POST /_mock/faults.
type faultJSON struct {
	Kind         FaultKind `json:"kind"`
	Endpoint     string    `json:"endpoint"`
	Count        int       `json:"count"`
	Status       int       `json:"status"`
	RetryAfterMS int64     `json:"retry_after_ms"`
	NewHash      string    `json:"new_hash"`
	DelayMS      int64     `json:"delay_ms"`
}

// simulatedMessage is the body of POST /_mock/messages.
type simulatedMessage struct {
	ChannelID string `json:"channel_id"`
	Content   string `json:"content"`
	Author    string `json:"author"`
	AuthorID  string `json:"author_id"`
}

// serveControl serves the control API. It needs no authentication, is
// not observed, and is not subject to Latency, limits or faults.
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	problem := func(status int, msg string) { reply(status, map[string]string{"message": msg}) }
	allow := func(method string) bool {
		if r.Method != method {
			problem(http.StatusMethodNotAllowed, "405: Method Not Allowed")
			return false
		}
		return true
	}
	if what, ok := strings.CutPrefix(r.URL.Path, controlPrefix+"gateway/"); ok {
		s.serveGatewayControl(w, r, what)
		return
	}
	switch strings.TrimPrefix(r.URL.Path, controlPrefix) {
	case "reset":
		if allow(http.MethodPost) {
			s.Reset()
			w.WriteHeader(http.StatusNoContent)
		}
	case "observations":
		if allow(http.MethodGet) {
			obs := s.Observations()
			if obs == nil {
				obs = []Observation{}
			}
			reply(http.StatusOK, obs)
		}
	case "faults":
		if !allow(http.MethodPost) {
			return
		}
		var fj faultJSON
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&fj); err != nil {
			problem(http.StatusBadRequest, "invalid fault: "+err.Error())
			return
		}
		err := s.Inject(Fault{
			Kind: fj.Kind, Endpoint: fj.Endpoint, Count: fj.Count, Status: fj.Status,
			RetryAfter: time.Duration(fj.RetryAfterMS) * time.Millisecond,
			NewHash:    fj.NewHash, Delay: time.Duration(fj.DelayMS) * time.Millisecond,
		})
		if err != nil {
			problem(http.StatusBadRequest, err.Error())
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case "world":
		if allow(http.MethodGet) {
			reply(http.StatusOK, s.worldJSON())
		}
	case "messages":
		switch r.Method {
		case http.MethodGet:
			id := r.URL.Query().Get("channel_id")
			if s.world.chanIdx[id] == nil {
				problem(http.StatusNotFound, "unknown channel_id "+strconv.Quote(id))
				return
			}
			s.mu.Lock()
			out := []any{}
			for _, m := range s.world.messages[id] {
				out = append(out, s.world.messageJSON(m))
			}
			s.mu.Unlock()
			reply(http.StatusOK, out)
		case http.MethodPost:
			var in simulatedMessage
			if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in); err != nil {
				problem(http.StatusBadRequest, "invalid message: "+err.Error())
				return
			}
			m, err := s.SimulateMessage(in.ChannelID, in.Author, in.AuthorID, in.Content)
			if err != nil {
				problem(http.StatusBadRequest, err.Error())
				return
			}
			s.mu.Lock()
			js := s.world.messageJSON(&m)
			s.mu.Unlock()
			reply(http.StatusOK, js)
		default:
			problem(http.StatusMethodNotAllowed, "405: Method Not Allowed")
		}
	case "interactions":
		if allow(http.MethodGet) {
			out := []map[string]any{}
			for _, ir := range s.InteractionResponses() {
				var data json.RawMessage
				if len(ir.Data) > 0 {
					data = ir.Data
				}
				out = append(out, map[string]any{"id": ir.ID, "token": ir.Token, "type": ir.Type, "data": data, "time": ir.Time})
			}
			reply(http.StatusOK, out)
		}
	default:
		problem(http.StatusNotFound, "404: Not Found")
	}
}

func (s *Server) worldJSON() map[string]any {
	guilds := []any{}
	for _, g := range s.world.guilds {
		chans := []any{}
		for _, id := range g.ChannelIDs {
			ch := s.world.chanIdx[id]
			chans = append(chans, map[string]any{"id": ch.ID, "name": ch.Name})
		}
		guilds = append(guilds, map[string]any{"id": g.ID, "name": g.Name, "channels": chans})
	}
	hooks := []any{}
	for _, h := range s.world.webhooks {
		hooks = append(hooks, map[string]any{"id": h.ID, "token": h.Token, "channel_id": h.ChannelID, "guild_id": h.GuildID, "name": h.Name})
	}
	return map[string]any{
		"bot":      map[string]any{"id": s.world.botID, "username": BotUsername},
		"guilds":   guilds,
		"webhooks": hooks,
	}
}

// ErrUnknownChannel is wrapped by [Server.SimulateMessage] for a channel
// that is not in the fake world.
var ErrUnknownChannel = errors.New("mockdiscord: unknown channel")

// simulatedUserID derives a stable user ID from a username.
func simulatedUserID(name string) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	return strconv.FormatUint(200000000000000000+h.Sum64()%100000000000000000, 10)
}

// SimulateMessage stores a message from a simulated (non-bot) user, as if
// a person had typed it in the Discord client, and delivers a
// MESSAGE_CREATE [Event] to subscribers (the gateway half dispatches it).
// author is the username (default "mock-user"); authorID defaults to an
// ID derived from the username. It is what POST /_mock/messages calls. It
// returns an error wrapping ErrUnknownChannel for an unknown channel.
func (s *Server) SimulateMessage(channelID, author, authorID, content string) (Message, error) {
	ch := s.world.chanIdx[channelID]
	if ch == nil {
		return Message{}, fmt.Errorf("%w: channel_id %q", ErrUnknownChannel, channelID)
	}
	if author == "" {
		author = "mock-user"
	}
	if authorID == "" {
		authorID = simulatedUserID(author)
	}
	m := &Message{ChannelID: ch.ID, GuildID: ch.GuildID, Content: content, AuthorID: authorID, AuthorName: author}
	s.mu.Lock()
	s.world.users[authorID] = author
	s.store(m, time.Now())
	out := m.clone()
	s.mu.Unlock()
	s.publish()
	return out, nil
}
