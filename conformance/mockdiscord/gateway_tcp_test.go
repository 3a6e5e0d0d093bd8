package mockdiscord_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
)

// TestGatewayTCP runs a session over real loopback TCP, with transport
// compression, driven through the control API.
func TestGatewayTCP(t *testing.T) {
	tcp(t, &mockdiscord.Options{Guilds: 2, HeartbeatInterval: 5 * time.Second}, func(t *testing.T, e *env) {
		c := dialTCP(t, e.s, "/gateway/?v=10&encoding=json&compress=zlib-stream")
		_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		r := c.identify(e.s, 0, 1, guildsAndMessages|mockdiscord.IntentMessageContent)
		c.skipGuildCreates(2)
		wantEqual(t, "resume URL", r.ResumeGatewayURL, strings.TrimSuffix(e.s.GatewayURL(), "/gateway")+"/gateway-resume")
		ctl := func(method, path, body string) reply {
			return e.do(method, e.s.URL()+"/_mock/"+path, body, noAuth)
		}
		ch := e.s.Channels()[0]
		wantStatus(t, ctl("POST", "messages", fmt.Sprintf(`{"channel_id":%q,"content":"over tcp"}`, ch)), 200)
		wantEqual(t, "content", c.dispatch("MESSAGE_CREATE").obj(t)["content"], any("over tcp"))
		var n struct{ Sessions, Connections int }
		ctl("POST", "gateway/dispatch", fmt.Sprintf(`{"guild_id":%q,"name":"GUILD_UPDATE","data":{"id":%q}}`, e.s.Guilds()[0], e.s.Guilds()[0])).decode(t, &n)
		wantEqual(t, "dispatched", n.Sessions, 1)
		c.dispatch("GUILD_UPDATE")
		ctl("POST", "gateway/stream", `{"shard":0,"n":3,"name":"N"}`).decode(t, &n)
		wantEqual(t, "streamed", n.Sessions, 1)
		ns, _ := c.streamNs("N", 3)
		wantEqual(t, "stream", ns, []int{1, 2, 3})
		ctl("POST", "gateway/dispatch", `{"shard":0,"name":"SHARD_EVENT","data":{"a":1}}`).decode(t, &n)
		c.dispatch("SHARD_EVENT")
		wantStatus(t, ctl("POST", "gateway/faults", `{"kind":"nope"}`), 400)
		wantStatus(t, ctl("POST", "gateway/faults", `{"kind":"drop","bogus":1}`), 400)
		wantStatus(t, ctl("GET", "gateway/faults", ""), 405)
		ctl("POST", "gateway/faults", `{"kind":"reconnect"}`).decode(t, &n)
		wantEqual(t, "armed", n.Connections, 1)
		c.expect(7)
		c.closeWith(4000)

		var sessions []mockdiscord.GatewaySession
		ctl("GET", "gateway/sessions", "").decode(t, &sessions)
		wantEqual(t, "sessions", len(sessions), 1)
		wantEqual(t, "session", sessions[0].ID, r.SessionID)

		c2 := dialTCP(t, e.s, "/gateway-resume?v=10&encoding=json&compress=zlib-stream")
		_ = c2.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		c2.resume(e.s, r.SessionID, c.seq)
		c2.dispatch("RESUMED")

		var obs []mockdiscord.GatewayObservation
		ctl("GET", "gateway/observations", "").decode(t, &obs)
		kinds := map[mockdiscord.GatewayObservationKind]int{}
		for _, o := range obs {
			kinds[o.Kind]++
		}
		for _, k := range []mockdiscord.GatewayObservationKind{mockdiscord.ObserveConnect, mockdiscord.ObserveIdentify, mockdiscord.ObserveResume, mockdiscord.ObserveClose, mockdiscord.ObserveReceive, mockdiscord.ObserveFault} {
			if kinds[k] == 0 {
				t.Errorf("no %s observation in %v", k, kinds)
			}
		}
		var v []string
		ctl("GET", "gateway/violations", "").decode(t, &v)
		wantEqual(t, "violations", v, []string{})
		wantStatus(t, ctl("GET", "gateway/nope", ""), 404)

		// Close ends the connection.
		if err := e.s.Close(); err != nil {
			t.Fatal(err)
		}
		c2.expectEOF()
	})
}

// TestGatewayCloseEndsEverything closes the server with connections in
// every state; the bubble fails if a goroutine is left.
func TestGatewayCloseEndsEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := mockdiscord.New(&mockdiscord.Options{Guilds: 1})
		e := &env{t: t, s: s, c: s.Client(), base: s.APIBase()}
		a, _ := identified(t, e, "/gateway?v=10")
		b := dialGateway(t, s, "/gateway?v=10&compress=zlib-stream") // never reads
		_, _ = s.Stream(0, 100, "N")                                 // a is not reading either
		c := dialGateway(t, s, "/gateway?v=10")
		c.expect(10)
		c.sendRaw("{") // closing
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
		a.expectEOF()
		c.expectEOF()
		if _, err := tryDialGateway(t, s, "/gateway"); err == nil {
			t.Errorf("dial after Close succeeded")
		}
		_ = b
		if _, err := s.DialGateway(t.Context(), ""); err == nil {
			t.Errorf("DialGateway after Close succeeded")
		}
	})
}

func TestGatewayReset(t *testing.T) {
	bubble(t, &mockdiscord.Options{Guilds: 1}, func(t *testing.T, e *env) {
		c, _ := identified(t, e, "/gateway?v=10")
		inject(t, e, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultReconnect, BeforeHello: true}, 0)
		inject(t, e, mockdiscord.GatewayFault{Kind: mockdiscord.GatewayFaultRefuseResume, Count: -1}, 0)
		e.s.Reset()
		wantEqual(t, "observations", len(e.s.GatewayObservations()), 0)
		wantEqual(t, "sessions stay", len(e.s.Sessions()), 1)
		c2 := dialGateway(t, e.s, "/gateway-resume?v=10") // no refusal, no op 7
		c2.expect(10)
		// The identify bucket was reset too: no 5 s wait.
		c2.send(op(2, identifyData(e.s, 0, 1, mockdiscord.IntentGuilds)))
		c2.ready()
		c.heartbeat()
		c.expect(11)
	})
}

func TestGatewayOptionsValidate(t *testing.T) {
	bad := []mockdiscord.Options{
		{HeartbeatInterval: -1},
		{MissedHeartbeatCode: 1005},
		{InvalidSessionCloseCode: 999},
		{AllowedPrivilegedIntents: mockdiscord.IntentGuilds},
		{MemberChunkSize: -1},
		{ResumeGatewayURL: "http://x/"},
	}
	for _, o := range bad {
		if err := o.Validate(); !errors.Is(err, mockdiscord.ErrInvalidOptions) {
			t.Errorf("%+v: got %v, want ErrInvalidOptions", o, err)
		}
	}
	good := mockdiscord.Options{HeartbeatInterval: time.Second, MissedHeartbeatCode: -1, AllowedPrivilegedIntents: mockdiscord.NoPrivilegedIntents, ResumeGatewayURL: "wss://x/"}
	if err := good.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	// Observations and sessions marshal to JSON.
	if _, err := json.Marshal(mockdiscord.GatewayObservation{}); err != nil {
		t.Error(err)
	}
}
