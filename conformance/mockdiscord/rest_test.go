package mockdiscord_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
)

func TestRequestChecks(t *testing.T) {
	tests := []struct {
		name       string
		opts       *mockdiscord.Options
		method     string
		path       string
		reqOpts    []opt
		wantStatus int
		wantCode   int
		wantMsg    string
		invalid    bool
	}{
		{name: "Authorized", method: "GET", path: "/api/v10/users/@me", wantStatus: 200},
		{name: "V9", method: "GET", path: "/api/v9/users/@me", wantStatus: 200},
		{name: "NoAuthorization", method: "GET", path: "/api/v10/users/@me", reqOpts: []opt{noAuth}, wantStatus: 401, wantMsg: "401: Unauthorized", invalid: true},
		{name: "WrongToken", method: "GET", path: "/api/v10/users/@me", reqOpts: []opt{header("Authorization", "Bot nope")}, wantStatus: 401, wantMsg: "401: Unauthorized", invalid: true},
		{name: "TokenWithoutBotPrefix", method: "GET", path: "/api/v10/users/@me", reqOpts: []opt{header("Authorization", mockdiscord.DefaultToken)}, wantStatus: 401, invalid: true},
		{name: "Bearer", method: "GET", path: "/api/v10/users/@me", reqOpts: []opt{header("Authorization", "Bearer "+mockdiscord.DefaultToken)}, wantStatus: 401, invalid: true},
		{name: "Unauthorized50014", opts: &mockdiscord.Options{UnauthorizedCode: 50014}, method: "GET", path: "/api/v10/users/@me", reqOpts: []opt{noAuth}, wantStatus: 401, wantCode: 50014, wantMsg: "Invalid authentication token", invalid: true},
		{name: "GatewayNeedsNoAuth", method: "GET", path: "/api/v10/gateway", reqOpts: []opt{noAuth}, wantStatus: 200},
		{name: "GatewayWrongAuth", method: "GET", path: "/api/v10/gateway", reqOpts: []opt{header("Authorization", "Bot nope")}, wantStatus: 401, invalid: true},
		{name: "GatewayBotNeedsAuth", method: "GET", path: "/api/v10/gateway/bot", reqOpts: []opt{noAuth}, wantStatus: 401, invalid: true},
		{name: "GoUserAgent", method: "GET", path: "/api/v10/users/@me", reqOpts: []opt{header("User-Agent", "Go-http-client/1.1")}, wantStatus: 403, wantCode: 40333, invalid: true},
		{name: "NoUserAgent", method: "GET", path: "/api/v10/users/@me", reqOpts: []opt{header("User-Agent", "")}, wantStatus: 403, wantCode: 40333, invalid: true},
		{name: "AllowAnyUserAgent", opts: &mockdiscord.Options{AllowAnyUserAgent: true}, method: "GET", path: "/api/v10/users/@me", reqOpts: []opt{header("User-Agent", "curl/8")}, wantStatus: 200},
		{name: "DeprecatedVersion", method: "GET", path: "/api/v8/users/@me", wantStatus: 400, wantCode: 50041, wantMsg: "Invalid API Version"},
		{name: "DiscontinuedVersion", method: "GET", path: "/api/v3/users/@me", wantStatus: 400, wantCode: 50041},
		{name: "NoVersion", method: "GET", path: "/api/users/@me", wantStatus: 400, wantCode: 50041},
		{name: "OutsideAPI", method: "GET", path: "/users/@me", wantStatus: 404, wantMsg: "404: Not Found"},
		{name: "UnknownRoute", method: "GET", path: "/api/v10/nothing/here", wantStatus: 404, wantMsg: "404: Not Found"},
		{name: "TrailingSlash", method: "GET", path: "/api/v10/users/@me/", wantStatus: 404},
		{name: "WrongMethod", method: "POST", path: "/api/v10/users/@me", wantStatus: 405, wantMsg: "405: Method Not Allowed"},
		{name: "WrongMethodReactions", method: "GET", path: "/api/v10/channels/1/messages/2/reactions/%F0%9F%91%8D/@me", wantStatus: 405},
		{name: "UnknownChannel", method: "GET", path: "/api/v10/channels/123", wantStatus: 404, wantCode: 10003, wantMsg: "Unknown Channel"},
		{name: "UnknownGuild", method: "GET", path: "/api/v10/guilds/123", wantStatus: 404, wantCode: 10004, wantMsg: "Unknown Guild"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bubble(t, tt.opts, func(t *testing.T, e *env) {
				r := e.do(tt.method, e.s.URL()+tt.path, nil, tt.reqOpts...)
				wantStatus(t, r, tt.wantStatus)
				wantHeader(t, r, "Via", "1.1 google")
				if r.header.Get("Date") == "" {
					t.Error("no Date header")
				}
				if tt.wantStatus >= 400 {
					wantHeader(t, r, "Content-Type", "application/json")
					if got := r.code(t); got != tt.wantCode {
						t.Errorf("code: got %d, want %d", got, tt.wantCode)
					}
					if tt.wantMsg != "" {
						wantEqual(t, "message", r.obj(t)["message"], any(tt.wantMsg))
					}
				}
				o := e.last()
				wantEqual(t, "observed status", o.Status, tt.wantStatus)
				wantEqual(t, "observed invalid", o.Invalid, tt.invalid)
			})
		})
	}
}

func TestWorldAndGateway(t *testing.T) {
	bubble(t, &mockdiscord.Options{Guilds: 2, ChannelsPerGuild: 3, Shards: 4, MaxConcurrency: 16, SessionStartTotal: 10}, func(t *testing.T, e *env) {
		wantEqual(t, "guilds", len(e.s.Guilds()), 2)
		wantEqual(t, "channels", len(e.s.Channels()), 6)
		wantEqual(t, "user id", e.s.UserID(), "111111111111111111")
		again := mockdiscord.New(&mockdiscord.Options{Guilds: 2, ChannelsPerGuild: 3})
		defer again.Close()
		wantEqual(t, "deterministic channel IDs", again.Channels(), e.s.Channels())

		me := e.do("GET", "/users/@me", nil).obj(t)
		wantEqual(t, "me.id", me["id"], any("111111111111111111"))
		wantEqual(t, "me.username", me["username"], any("cordkit-mock"))
		wantEqual(t, "me.bot", me["bot"], any(true))

		gw := e.do("GET", "/gateway", nil, noAuth).obj(t)
		wantEqual(t, "gateway url", gw["url"], any("ws://mockdiscord.test/gateway"))

		if !e.s.ConsumeSessionStart() {
			t.Fatal("ConsumeSessionStart: no start left")
		}
		bot := e.do("GET", "/gateway/bot", nil).obj(t)
		wantEqual(t, "shards", bot["shards"], any(4.0))
		wantEqual(t, "session_start_limit", bot["session_start_limit"], any(map[string]any{
			"total": 10.0, "remaining": 9.0, "reset_after": 86400000.0, "max_concurrency": 16.0,
		}))

		g := e.do("GET", "/guilds/"+e.s.Guilds()[1]+"?with_counts=true", nil).obj(t)
		wantEqual(t, "guild id", g["id"], any(e.s.Guilds()[1]))
		wantEqual(t, "approximate_member_count", g["approximate_member_count"], any(1.0))
		var chans []map[string]any
		e.do("GET", "/guilds/"+e.s.Guilds()[1]+"/channels", nil).decode(t, &chans)
		wantEqual(t, "guild channels", len(chans), 3)
		wantEqual(t, "channel guild_id", chans[0]["guild_id"], any(e.s.Guilds()[1]))
		wantEqual(t, "channel id", chans[0]["id"], any(e.s.Channels()[3]))
		ch := e.do("GET", "/channels/"+e.s.Channels()[0], nil).obj(t)
		wantEqual(t, "channel type", ch["type"], any(0.0))
	})
}

func TestGatewayURLOption(t *testing.T) {
	bubble(t, &mockdiscord.Options{GatewayURL: "ws://127.0.0.1:9/ws"}, func(t *testing.T, e *env) {
		wantEqual(t, "url", e.do("GET", "/gateway", nil).obj(t)["url"], any("ws://127.0.0.1:9/ws"))
	})
}

func TestCreateMessageValidation(t *testing.T) {
	long := strings.Repeat("é", 2001)
	tests := []struct {
		name        string
		body        any
		contentType string
		wantStatus  int
		wantCode    int
		wantErrors  string // JSON of "errors", "" to skip
	}{
		{name: "Content", body: `{"content":"hello"}`, wantStatus: 200},
		{name: "MaxLengthInRunes", body: `{"content":"` + strings.Repeat("é", 2000) + `"}`, wantStatus: 200},
		{name: "EmbedOnly", body: `{"embeds":[{"title":"t"}]}`, wantStatus: 200},
		{name: "Empty", body: `{"content":""}`, wantStatus: 400, wantCode: 50006},
		{name: "Whitespace", body: `{"content":"  \n "}`, wantStatus: 400, wantCode: 50006},
		{name: "NoBody", body: nil, wantStatus: 400, wantCode: 50006},
		{name: "TooLong", body: `{"content":"` + long + `"}`, wantStatus: 400, wantCode: 50035,
			wantErrors: `{"content":{"_errors":[{"code":"BASE_TYPE_MAX_LENGTH","message":"Must be 2000 or fewer in length."}]}}`},
		{name: "EmbedTitleTooLong", body: `{"embeds":[{"title":"` + strings.Repeat("x", 257) + `"}]}`, wantStatus: 400, wantCode: 50035,
			wantErrors: `{"embeds":{"0":{"title":{"_errors":[{"code":"BASE_TYPE_MAX_LENGTH","message":"Must be 256 or fewer in length."}]}}}}`},
		{name: "ContentNotString", body: `{"content":5}`, wantStatus: 400, wantCode: 50035},
		{name: "InvalidJSON", body: `{"content":`, wantStatus: 400, wantCode: 50109},
		{name: "NotAnObject", body: `["hello"]`, wantStatus: 400, wantCode: 50035},
		{name: "TextPlain", body: `{"content":"hello"}`, contentType: "text/plain", wantStatus: 400, wantCode: 50035,
			wantErrors: `{"_errors":[{"code":"CONTENT_TYPE_INVALID","message":"Expected \"Content-Type\" header to be one of {'application/json', 'application/x-www-form-urlencoded', 'multipart/form-data'}."}]}`},
		{name: "NoContentType", body: `{"content":"hello"}`, contentType: "-", wantStatus: 400, wantCode: 50035},
		{name: "FormURLEncoded", body: `content=hi+there&tts=true`, contentType: "application/x-www-form-urlencoded", wantStatus: 200},
		{name: "JSONWithCharset", body: `{"content":"hello"}`, contentType: "application/json; charset=utf-8", wantStatus: 200},
		{name: "NonceTooLong", body: `{"content":"x","nonce":"` + strings.Repeat("n", 26) + `"}`, wantStatus: 400, wantCode: 50035},
		{name: "TooManyEmbeds", body: `{"embeds":[{},{},{},{},{},{},{},{},{},{},{}]}`, wantStatus: 400, wantCode: 50035},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bubble(t, nil, func(t *testing.T, e *env) {
				ch := e.s.Channels()[0]
				var opts []opt
				switch tt.contentType {
				case "":
				case "-":
					opts = append(opts, noHeader("Content-Type"))
				default:
					opts = append(opts, header("Content-Type", tt.contentType))
				}
				r := e.do("POST", "/channels/"+ch+"/messages", tt.body, opts...)
				wantStatus(t, r, tt.wantStatus)
				if tt.wantStatus != 200 {
					wantEqual(t, "code", r.code(t), tt.wantCode)
					if tt.wantErrors != "" {
						var body struct {
							Errors map[string]any `json:"errors"`
						}
						r.decode(t, &body)
						var want map[string]any
						reply{body: []byte(tt.wantErrors)}.decode(t, &want)
						wantEqual(t, "errors", body.Errors, want)
					}
					if n := len(e.s.Messages(ch)); n != 0 {
						t.Errorf("stored %d messages after an error", n)
					}
					return
				}
				m := r.obj(t)
				wantEqual(t, "channel_id", m["channel_id"], any(ch))
				wantEqual(t, "author.id", m["author"].(map[string]any)["id"], any(e.s.UserID()))
				stored := e.s.Messages(ch)
				if len(stored) != 1 || stored[0].ID != m["id"] {
					t.Fatalf("Messages: got %+v, want the created message", stored)
				}
				if tt.name == "FormURLEncoded" && (stored[0].Content != "hi there" || !stored[0].TTS) {
					t.Errorf("form message: got content %q tts %v", stored[0].Content, stored[0].TTS)
				}
			})
		})
	}
}

func TestMessageLifecycle(t *testing.T) {
	bubble(t, nil, func(t *testing.T, e *env) {
		ch := e.s.Channels()[0]
		other := e.s.Channels()[1]
		id := e.post(ch, "first")
		got := e.do("GET", "/channels/"+ch+"/messages/"+id, nil).obj(t)
		wantEqual(t, "content", got["content"], any("first"))
		wantEqual(t, "edited_timestamp", got["edited_timestamp"], nil)

		wantEqual(t, "in another channel", e.do("GET", "/channels/"+other+"/messages/"+id, nil).code(t), 10008)

		edited := e.do("PATCH", "/channels/"+ch+"/messages/"+id, `{"content":"second"}`)
		wantStatus(t, edited, 200)
		wantEqual(t, "edited content", edited.obj(t)["content"], any("second"))
		if edited.obj(t)["edited_timestamp"] == nil {
			t.Error("edited_timestamp is null after an edit")
		}
		wantEqual(t, "edit to empty", e.do("PATCH", "/channels/"+ch+"/messages/"+id, `{"content":""}`).code(t), 50006)

		sim, err := e.s.SimulateMessage(ch, "alice", "", "hi bot")
		if err != nil {
			t.Fatal(err)
		}
		r := e.do("PATCH", "/channels/"+ch+"/messages/"+sim.ID, `{"content":"hacked"}`)
		wantStatus(t, r, 403)
		wantEqual(t, "edit other's message", r.code(t), 50005)

		del := e.do("DELETE", "/channels/"+ch+"/messages/"+id, nil)
		wantStatus(t, del, 204)
		if len(del.body) != 0 || del.header.Get("Content-Type") != "" {
			t.Errorf("204 has body %q / Content-Type %q", del.body, del.header.Get("Content-Type"))
		}
		r = e.do("GET", "/channels/"+ch+"/messages/"+id, nil)
		wantStatus(t, r, 404)
		wantEqual(t, "deleted", r.code(t), 10008)
		wantEqual(t, "delete again", e.do("DELETE", "/channels/"+ch+"/messages/"+id, nil).code(t), 10008)
		wantStatus(t, e.do("POST", "/channels/"+ch+"/typing", nil), 204)
	})
}

func TestListMessages(t *testing.T) {
	bubble(t, &mockdiscord.Options{Buckets: []mockdiscord.BucketSpec{}}, func(t *testing.T, e *env) {
		ch := e.s.Channels()[0]
		var ids []string
		for i := range 10 {
			ids = append(ids, e.post(ch, fmt.Sprint(i)))
		}
		list := func(query string) []string {
			t.Helper()
			var msgs []map[string]any
			r := e.do("GET", "/channels/"+ch+"/messages"+query, nil)
			wantStatus(t, r, 200)
			r.decode(t, &msgs)
			var out []string
			for _, m := range msgs {
				out = append(out, m["content"].(string))
			}
			return out
		}
		wantEqual(t, "default", list(""), []string{"9", "8", "7", "6", "5", "4", "3", "2", "1", "0"})
		wantEqual(t, "limit", list("?limit=3"), []string{"9", "8", "7"})
		wantEqual(t, "before", list("?before="+ids[5]+"&limit=2"), []string{"4", "3"})
		wantEqual(t, "after", list("?after="+ids[5]+"&limit=2"), []string{"7", "6"})
		wantEqual(t, "around", list("?around="+ids[5]+"&limit=3"), []string{"6", "5", "4"})
		for _, q := range []string{"?limit=0", "?limit=101", "?limit=x", "?before=abc"} {
			r := e.do("GET", "/channels/"+ch+"/messages"+q, nil)
			wantStatus(t, r, 400)
			wantEqual(t, "code for "+q, r.code(t), 50035)
		}
	})
}

func TestMultipart(t *testing.T) {
	tests := []struct {
		name       string
		form       form
		wantStatus int
		wantCode   int
		wantFiles  []string // filename/content_type/size
	}{
		{
			name:       "FilesAndPayload",
			form:       form{payload: `{"content":"look","attachments":[{"id":1,"filename":"renamed.txt","description":"second"}]}`, files: []file{{"files[0]", "a.png", "image/png", "PNG!"}, {"files[1]", "b.txt", "", "hello"}}},
			wantStatus: 200,
			wantFiles:  []string{"a.png image/png 4", "renamed.txt application/octet-stream 5"},
		},
		{
			name:       "FileOnly",
			form:       form{files: []file{{"files[0]", "a.bin", "application/octet-stream", "x"}}},
			wantStatus: 200,
			wantFiles:  []string{"a.bin application/octet-stream 1"},
		},
		{
			name:       "ContentField",
			form:       form{fields: map[string]string{"content": "plain field"}},
			wantStatus: 200,
		},
		{name: "WrongPartName", form: form{files: []file{{"file", "a.bin", "", "x"}}}, wantStatus: 400, wantCode: 50006},
		{name: "InvalidPayloadJSON", form: form{payload: `{"content":`}, wantStatus: 400, wantCode: 50109},
		{name: "FileTooLarge", form: form{files: []file{{"files[0]", "big.bin", "", strings.Repeat("x", 1025)}}}, wantStatus: 413, wantCode: 40005},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bubble(t, &mockdiscord.Options{MaxFileSize: 1024}, func(t *testing.T, e *env) {
				ch := e.s.Channels()[0]
				r := e.do("POST", "/channels/"+ch+"/messages", tt.form)
				wantStatus(t, r, tt.wantStatus)
				if tt.wantStatus != 200 {
					wantEqual(t, "code", r.code(t), tt.wantCode)
					return
				}
				var m struct {
					Attachments []struct {
						ID          string `json:"id"`
						Filename    string `json:"filename"`
						ContentType string `json:"content_type"`
						Size        int    `json:"size"`
						URL         string `json:"url"`
					} `json:"attachments"`
				}
				r.decode(t, &m)
				var got []string
				for _, a := range m.Attachments {
					got = append(got, fmt.Sprintf("%s %s %d", a.Filename, a.ContentType, a.Size))
					if a.ID == "" || a.URL == "" {
						t.Errorf("attachment %+v lacks id or url", a)
					}
				}
				wantEqual(t, "attachments", got, tt.wantFiles)
				stored := e.s.Messages(ch)[0]
				if len(tt.wantFiles) > 0 {
					wantEqual(t, "first file data", string(stored.Attachments[0].Data), tt.form.files[0].data)
				}
				if tt.name == "FilesAndPayload" {
					wantEqual(t, "description", stored.Attachments[1].Description, "second")
					wantEqual(t, "content", stored.Content, "look")
				}
			})
		})
	}
}

func TestAuditLogReason(t *testing.T) {
	bubble(t, nil, func(t *testing.T, e *env) {
		ch := e.s.Channels()[0]
		id := e.post(ch, "x")
		r := e.do("DELETE", "/channels/"+ch+"/messages/"+id, nil, header("X-Audit-Log-Reason", "spam%20%26%20abuse%20%E2%9C%93"))
		wantStatus(t, r, 204)
		wantEqual(t, "reason", e.last().AuditLogReason, "spam & abuse ✓")

		id = e.post(ch, "y")
		r = e.do("DELETE", "/channels/"+ch+"/messages/"+id, nil, header("X-Audit-Log-Reason", strings.Repeat("%C3%A9", 513)))
		wantStatus(t, r, 400)
		wantEqual(t, "code", r.code(t), 50035)
		r = e.do("DELETE", "/channels/"+ch+"/messages/"+id, nil, header("X-Audit-Log-Reason", strings.Repeat("%C3%A9", 512)))
		wantStatus(t, r, 204)
	})
}

func TestReactions(t *testing.T) {
	bubble(t, &mockdiscord.Options{Buckets: []mockdiscord.BucketSpec{}}, func(t *testing.T, e *env) {
		ch := e.s.Channels()[0]
		id := e.post(ch, "react to me")
		path := "/channels/" + ch + "/messages/" + id + "/reactions/%F0%9F%91%8D"
		wantStatus(t, e.do("PUT", path+"/@me", nil), 204)
		wantStatus(t, e.do("PUT", path+"/@me", nil), 204)
		var users []map[string]any
		e.do("GET", path, nil).decode(t, &users)
		if len(users) != 1 || users[0]["id"] != e.s.UserID() {
			t.Fatalf("reactors: got %v, want the bot", users)
		}
		msg := e.do("GET", "/channels/"+ch+"/messages/"+id, nil).obj(t)
		reactions := msg["reactions"].([]any)
		wantEqual(t, "reaction me", reactions[0].(map[string]any)["me"], any(true))
		wantEqual(t, "stored emoji", e.s.Messages(ch)[0].Reactions[0].Emoji, "👍")
		wantStatus(t, e.do("DELETE", path+"/"+e.s.UserID(), nil), 204)
		if rs := e.s.Messages(ch)[0].Reactions; len(rs) != 0 {
			t.Errorf("reactions after delete: %v", rs)
		}
		r := e.do("PUT", "/channels/"+ch+"/messages/"+id+"/reactions/thumbsup/@me", nil)
		wantStatus(t, r, 400)
		wantEqual(t, "text emoji", r.code(t), 10014)
		wantEqual(t, "custom emoji", e.do("PUT", "/channels/"+ch+"/messages/"+id+"/reactions/blob:123/@me", nil).code(t), 10014)
		wantEqual(t, "unknown message", e.do("PUT", "/channels/"+ch+"/messages/1/reactions/%F0%9F%91%8D/@me", nil).code(t), 10008)
	})
}

func TestWebhooks(t *testing.T) {
	bubble(t, nil, func(t *testing.T, e *env) {
		hook := e.s.Webhooks()[1]
		path := "/webhooks/" + hook.ID + "/" + hook.Token
		r := e.do("POST", path, `{"content":"from a hook"}`, noAuth)
		wantStatus(t, r, 204)
		o := e.last()
		wantEqual(t, "resource", o.Resource, "webhooks/"+hook.ID+"/"+hook.Token)
		wantEqual(t, "unauthenticated is not global", o.Global, false)

		r = e.do("POST", path+"?wait=true", `{"content":"wait for it","username":"Hooky"}`, noAuth)
		wantStatus(t, r, 200)
		m := r.obj(t)
		wantEqual(t, "webhook_id", m["webhook_id"], any(hook.ID))
		wantEqual(t, "channel_id", m["channel_id"], any(hook.ChannelID))
		wantEqual(t, "author name", m["author"].(map[string]any)["username"], any("Hooky"))
		wantEqual(t, "stored", len(e.s.Messages(hook.ChannelID)), 2)

		wantEqual(t, "authenticated counts globally", func() bool { e.do("POST", path, `{"content":"x"}`); return e.last().Global }(), true)

		r = e.do("POST", "/webhooks/"+hook.ID+"/wrong", `{"content":"x"}`, noAuth)
		wantStatus(t, r, 401)
		wantEqual(t, "wrong token", r.code(t), 50027)
		r = e.do("POST", "/webhooks/1/abc", `{"content":"x"}`, noAuth)
		wantStatus(t, r, 404)
		wantEqual(t, "unknown webhook", r.code(t), 10015)
		wantEqual(t, "bad wait", e.do("POST", path+"?wait=maybe", `{"content":"x"}`, noAuth).code(t), 50035)

		// An interaction follow-up: the application's ID, any token.
		r = e.do("POST", "/webhooks/"+e.s.UserID()+"/interaction-token?wait=true", `{"content":"follow-up"}`)
		wantStatus(t, r, 200)
		wantEqual(t, "follow-up is exempt", e.last().Global, false)
	})
}

func TestInteractionCallback(t *testing.T) {
	bubble(t, nil, func(t *testing.T, e *env) {
		path := "/interactions/42/tok/callback"
		r := e.do("POST", path, `{"type":4,"data":{"content":"pong"}}`, noAuth)
		wantStatus(t, r, 204)
		o := e.last()
		wantEqual(t, "global", o.Global, false)
		wantEqual(t, "endpoint", o.Endpoint, "POST /interactions/{interaction_id}/{interaction_token}/callback")
		irs := e.s.InteractionResponses()
		if len(irs) != 1 || irs[0].ID != "42" || irs[0].Type != 4 || string(irs[0].Data) != `{"content":"pong"}` {
			t.Fatalf("InteractionResponses: %+v", irs)
		}
		r = e.do("POST", path, `{"type":4,"data":{"content":"again"}}`, noAuth)
		wantStatus(t, r, 400)
		wantEqual(t, "second callback", r.code(t), 40060)
		wantEqual(t, "missing type", e.do("POST", "/interactions/43/tok/callback", `{}`).code(t), 50035)
		wantEqual(t, "bad type", e.do("POST", "/interactions/43/tok/callback", `{"type":3}`).code(t), 50035)
		wantStatus(t, e.do("POST", "/interactions/43/tok/callback", `{"type":1}`), 204)
	})
}
