package protocols_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cordkit/cordkit/protocols"
)

func TestNewRoute(t *testing.T) {
	tests := []struct {
		name                         string
		method, template             string
		args                         []string
		path, resource, key, printed string
		exempt                       bool
	}{
		{"Channel", "GET", "/channels/{channel_id}", []string{"123"},
			"/channels/123", "channels/123", "GET /channels/{channel_id} channels/123", "GET /channels/123", false},
		{"MessageKeepsOnlyTopLevelID", "DELETE", "/channels/{channel_id}/messages/{message_id}", []string{"1", "2"},
			"/channels/1/messages/2", "channels/1", "DELETE /channels/{channel_id}/messages/{message_id} channels/1", "DELETE /channels/1/messages/2", false},
		{"Guild", "PATCH", "/guilds/{guild_id}/members/{user_id}", []string{"9", "8"},
			"/guilds/9/members/8", "guilds/9", "PATCH /guilds/{guild_id}/members/{user_id} guilds/9", "PATCH /guilds/9/members/8", false},
		{"WebhookWithToken", "POST", "/webhooks/{webhook_id}/{webhook_token}", []string{"5", "sec/ret"},
			"/webhooks/5/sec%2Fret", "webhooks/5/sec%2Fret", "POST /webhooks/{webhook_id}/{webhook_token} webhooks/5/sec%2Fret", "POST /webhooks/5/{webhook_token}", false},
		{"InteractionFollowUpIsExempt", "POST", "/webhooks/{application_id}/{interaction_token}", []string{"5", "tok"},
			"/webhooks/5/tok", "webhooks/5/tok", "POST /webhooks/{application_id}/{interaction_token} webhooks/5/tok", "POST /webhooks/5/{interaction_token}", true},
		{"InteractionCallbackIsExempt", "POST", "/interactions/{interaction_id}/{interaction_token}/callback", []string{"1", "t"},
			"/interactions/1/t/callback", "interactions/1/t", "POST /interactions/{interaction_id}/{interaction_token}/callback interactions/1/t", "POST /interactions/1/{interaction_token}/callback", true},
		{"NoResource", "GET", "/users/@me", nil, "/users/@me", "", "GET /users/@me", "GET /users/@me", false},
		{"EmojiEscaped", "PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", []string{"1", "2", "👍"},
			"/channels/1/messages/2/reactions/%F0%9F%91%8D/@me", "channels/1", "PUT /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me channels/1", "PUT /channels/1/messages/2/reactions/%F0%9F%91%8D/@me", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := protocols.NewRoute(tt.method, tt.template, tt.args...)
			require.NoError(t, err)
			assert.Equal(t, tt.path, r.Path)
			assert.Equal(t, tt.template, r.Template)
			assert.Equal(t, tt.resource, r.Resource)
			assert.Equal(t, tt.key, r.Key())
			assert.Equal(t, tt.exempt, r.Exempt)
			assert.Equal(t, tt.printed, r.String())
			assert.Equal(t, tt.method+" "+tt.template, r.Endpoint())
		})
	}
}

func TestNewRouteErrors(t *testing.T) {
	tests := []struct {
		name, method, template string
		args                   []string
	}{
		{"UnknownMethod", "BREW", "/channels/{channel_id}", []string{"1"}},
		{"LowerCaseMethod", "get", "/users/@me", nil},
		{"NoLeadingSlash", "GET", "channels/{channel_id}", []string{"1"}},
		{"Query", "GET", "/channels/{channel_id}?limit=1", []string{"1"}},
		{"TooFewArgs", "GET", "/channels/{channel_id}/messages/{message_id}", []string{"1"}},
		{"TooManyArgs", "GET", "/channels/{channel_id}", []string{"1", "2"}},
		{"EmptyArg", "GET", "/channels/{channel_id}", []string{""}},
		{"EmptySegment", "GET", "/channels//x", nil},
		{"DotDot", "GET", "/channels/../x", nil},
		{"MalformedPlaceholder", "GET", "/channels/{channel_id", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := protocols.NewRoute(tt.method, tt.template, tt.args...)
			assert.ErrorIs(t, err, protocols.ErrInvalidRoute)
		})
	}
}

func TestParseRoute(t *testing.T) {
	tests := []struct {
		path, template, resource string
		exempt                   bool
	}{
		{"/channels/123/messages/456", "/channels/{channel_id}/messages/{id}", "channels/123", false},
		{"/guilds/9/members/8", "/guilds/{guild_id}/members/{id}", "guilds/9", false},
		{"/webhooks/5/abc", "/webhooks/{webhook_id}/{webhook_token}", "webhooks/5/abc", false},
		{"/webhooks/5", "/webhooks/{webhook_id}", "webhooks/5", false},
		{"/interactions/1/tok/callback", "/interactions/{interaction_id}/{interaction_token}/callback", "interactions/1/tok", true},
		{"/channels/1/messages/2/reactions/%F0%9F%91%8D/@me", "/channels/{channel_id}/messages/{id}/reactions/{emoji}/@me", "channels/1", false},
		{"/users/@me/guilds", "/users/@me/guilds", "", false},
		{"/users/42", "/users/{id}", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r, err := protocols.ParseRoute("GET", tt.path)
			require.NoError(t, err)
			assert.Equal(t, tt.path, r.Path)
			assert.Equal(t, tt.template, r.Template)
			assert.Equal(t, tt.resource, r.Resource)
			assert.Equal(t, tt.exempt, r.Exempt)
		})
	}
	for _, bad := range []string{"", "channels/1", "/channels/1?x=1", "/channels//1", "/a/../b"} {
		_, err := protocols.ParseRoute("GET", bad)
		assert.ErrorIs(t, err, protocols.ErrInvalidRoute, "path %q", bad)
	}
}

// Two channels of one template differ only in resource: they share an
// endpoint (one bucket hash) but not a key (separate counters).
func TestRouteKeysSeparateResources(t *testing.T) {
	a, _ := protocols.NewRoute("POST", "/channels/{channel_id}/messages", "1")
	b, _ := protocols.NewRoute("POST", "/channels/{channel_id}/messages", "2")
	assert.Equal(t, a.Endpoint(), b.Endpoint())
	assert.NotEqual(t, a.Key(), b.Key())
	m := map[protocols.Route]int{a: 1, b: 2}
	assert.Len(t, m, 2, "Route is comparable and usable as a map key")
}

func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{"/channels/1/messages/2", "/webhooks/1/t", "/interactions/1/t/callback", "/users/@me", "/a//b", "/x/../y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		r, err := protocols.ParseRoute("GET", path)
		if err != nil {
			return
		}
		if r.Path != path || !strings.HasPrefix(r.Template, "/") {
			t.Fatalf("ParseRoute(%q) = %+v", path, r)
		}
		if strings.Count(r.Template, "/") != strings.Count(path, "/") {
			t.Fatalf("template %q and path %q have different segment counts", r.Template, path)
		}
		if r.Resource != "" && !strings.Contains(path, r.Resource) {
			t.Fatalf("resource %q is not in path %q", r.Resource, path)
		}
		if strings.Contains(r.Template, "token}") && strings.Contains(r.String(), path) && path != r.Template {
			t.Fatalf("String() of %q shows the token", path)
		}
	})
}
