package mockdiscord

import (
	"encoding/json"
	"io"
	"net/http"
)

// gatewayFaultJSON is the body of POST /_mock/gateway/faults.
type gatewayFaultJSON struct {
	Kind            GatewayFaultKind `json:"kind"`
	Shard           int              `json:"shard"`
	AfterDispatches int              `json:"after_dispatches"`
	Next            bool             `json:"next"`
	BeforeHello     bool             `json:"before_hello"`
	Code            int              `json:"code"`
	Reason          string           `json:"reason"`
	Resumable       bool             `json:"resumable"`
	Parts           int              `json:"parts"`
	Count           int              `json:"count"`
}

// gatewayDispatchJSON is the body of POST /_mock/gateway/dispatch.
type gatewayDispatchJSON struct {
	GuildID string          `json:"guild_id"`
	Shard   *int            `json:"shard"`
	Name    string          `json:"name"`
	Data    json.RawMessage `json:"data"`
}

// gatewayStreamJSON is the body of POST /_mock/gateway/stream.
type gatewayStreamJSON struct {
	Shard int    `json:"shard"`
	N     int    `json:"n"`
	Name  string `json:"name"`
}

// serveGatewayControl serves /_mock/gateway/{what}.
func (s *Server) serveGatewayControl(w http.ResponseWriter, r *http.Request, what string) {
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	problem := func(status int, msg string) { reply(status, map[string]string{"message": msg}) }
	decode := func(v any) bool {
		if r.Method != http.MethodPost {
			problem(http.StatusMethodNotAllowed, "405: Method Not Allowed")
			return false
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			problem(http.StatusBadRequest, "invalid body: "+err.Error())
			return false
		}
		return true
	}
	get := func() bool {
		if r.Method != http.MethodGet {
			problem(http.StatusMethodNotAllowed, "405: Method Not Allowed")
			return false
		}
		return true
	}
	switch what {
	case "observations":
		if get() {
			obs := s.GatewayObservations()
			if obs == nil {
				obs = []GatewayObservation{}
			}
			reply(http.StatusOK, obs)
		}
	case "violations":
		if get() {
			v := s.GatewayViolations()
			if v == nil {
				v = []string{}
			}
			reply(http.StatusOK, v)
		}
	case "sessions":
		if get() {
			ss := s.Sessions()
			if ss == nil {
				ss = []GatewaySession{}
			}
			reply(http.StatusOK, ss)
		}
	case "faults":
		var fj gatewayFaultJSON
		if !decode(&fj) {
			return
		}
		n, err := s.InjectGateway(GatewayFault(fj))
		if err != nil {
			problem(http.StatusBadRequest, err.Error())
			return
		}
		reply(http.StatusOK, map[string]int{"connections": n})
	case "dispatch":
		var dj gatewayDispatchJSON
		if !decode(&dj) {
			return
		}
		data := dj.Data
		if len(data) == 0 {
			data = json.RawMessage("null")
		}
		var n int
		var err error
		if dj.Shard != nil {
			n, err = s.DispatchToShard(*dj.Shard, dj.Name, data)
		} else {
			n, err = s.Dispatch(dj.GuildID, dj.Name, data)
		}
		if err != nil {
			problem(http.StatusBadRequest, err.Error())
			return
		}
		reply(http.StatusOK, map[string]int{"sessions": n})
	case "stream":
		var sj gatewayStreamJSON
		if !decode(&sj) {
			return
		}
		n, err := s.Stream(sj.Shard, sj.N, sj.Name)
		if err != nil {
			problem(http.StatusBadRequest, err.Error())
			return
		}
		reply(http.StatusOK, map[string]int{"sessions": n})
	default:
		problem(http.StatusNotFound, "404: Not Found")
	}
}
