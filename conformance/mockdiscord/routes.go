package mockdiscord

import (
	"net/url"
	"strings"
)

// authMode says whether a route needs the bot token.
type authMode int

const (
	authRequired authMode = iota
	// authOptional routes take their credential in the path (webhook and
	// interaction tokens) or need none (GET /gateway). A wrong
	// Authorization header still gets 401.
	authOptional
)

// route is one REST endpoint the mock serves.
type route struct {
	method   string
	template string
	segs     []string // template segments; "{name}" for placeholders
	auth     authMode
	exempt   bool // exempt from the global limit (interaction endpoints)
	body     bool // takes a body: Content-Type is checked
	handle   func(*call)
}

func (r *route) endpoint() string { return r.method + " " + r.template }

// routes is the table of every REST endpoint, filled by init in handlers.go
// order. It is read-only after package initialisation.
var routes []*route

func addRoute(method, template string, auth authMode, exempt, body bool, h func(*call)) {
	routes = append(routes, &route{
		method: method, template: template, segs: strings.Split(template[1:], "/"),
		auth: auth, exempt: exempt, body: body, handle: h,
	})
}

// Endpoints returns every endpoint the mock serves, as "METHOD /template"
// strings in Discord's notation, in a fixed order. They are the valid
// values of [BucketSpec.Endpoint] and [Fault.Endpoint].
func Endpoints() []string {
	out := make([]string, len(routes))
	for i, r := range routes {
		out[i] = r.endpoint()
	}
	return out
}

func isPlaceholder(s string) bool {
	return len(s) > 2 && s[0] == '{' && s[len(s)-1] == '}'
}

// normalizeEndpoint turns "get  /channels/{id}" into "GET /channels/{}":
// the method upper-cased and placeholder names dropped.
func normalizeEndpoint(e string) string {
	method, tmpl, ok := strings.Cut(strings.TrimSpace(e), " ")
	if !ok {
		return ""
	}
	tmpl = strings.TrimSpace(tmpl)
	if !strings.HasPrefix(tmpl, "/") {
		return ""
	}
	segs := strings.Split(tmpl[1:], "/")
	for i, s := range segs {
		if isPlaceholder(s) {
			segs[i] = "{}"
		}
	}
	return strings.ToUpper(method) + " /" + strings.Join(segs, "/")
}

// lookupEndpoint finds the route an endpoint string names, or nil.
func lookupEndpoint(e string) *route {
	n := normalizeEndpoint(e)
	if n == "" {
		return nil
	}
	for _, r := range routes {
		if normalizeEndpoint(r.endpoint()) == n {
			return r
		}
	}
	return nil
}

// params holds the decoded path parameters of a matched route.
type params map[string]string

// match finds the route for method and the escaped path below the version
// ("/channels/1/messages"). It returns the route and its parameters, or
// nil and 404 when no template matches the path, or nil and 405 when one
// matches with another method. When several templates match, the one with
// more literal segments wins (".../reactions/{emoji}/@me" over
// ".../reactions/{emoji}/{user_id}").
func match(method, escapedPath string) (*route, params, int) {
	if !strings.HasPrefix(escapedPath, "/") {
		return nil, nil, 404
	}
	segs := strings.Split(escapedPath[1:], "/")
	var best *route
	bestScore, pathKnown := -1, false
	for _, r := range routes {
		score, ok := matchSegs(r.segs, segs)
		if !ok {
			continue
		}
		pathKnown = true
		if r.method == method && score > bestScore {
			best, bestScore = r, score
		}
	}
	if best == nil {
		if pathKnown {
			return nil, nil, 405
		}
		return nil, nil, 404
	}
	p := params{}
	for i, s := range best.segs {
		if isPlaceholder(s) {
			v, err := url.PathUnescape(segs[i])
			if err != nil {
				return nil, nil, 404
			}
			p[s[1:len(s)-1]] = v
		}
	}
	// A literal segment beats a placeholder: if another route of any
	// method matches with a higher score, the path belongs to it.
	for _, r := range routes {
		if score, ok := matchSegs(r.segs, segs); ok && score > bestScore {
			return nil, nil, 405
		}
	}
	return best, p, 0
}

// matchSegs reports whether path segments fit template segments, and how
// many literal segments matched.
func matchSegs(tmpl, path []string) (int, bool) {
	if len(tmpl) != len(path) {
		return 0, false
	}
	score := 0
	for i, t := range tmpl {
		switch {
		case path[i] == "":
			return 0, false
		case isPlaceholder(t):
		case t == path[i]:
			score++
		default:
			return 0, false
		}
	}
	return score, true
}

// resourceOf returns the top-level resource of a matched route: channels/ID,
// guilds/ID, webhooks/ID/TOKEN or interactions/ID/TOKEN, or "".
func resourceOf(r *route, p params) string {
	switch r.segs[0] {
	case "channels":
		return "channels/" + p["channel_id"]
	case "guilds":
		return "guilds/" + p["guild_id"]
	case "webhooks":
		return "webhooks/" + p["webhook_id"] + "/" + p["webhook_token"]
	case "interactions":
		return "interactions/" + p["interaction_id"] + "/" + p["interaction_token"]
	}
	return ""
}
