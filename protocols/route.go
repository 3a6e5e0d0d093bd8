package protocols

import (
	"fmt"
	"net/url"
	"strings"
)

// Route is one REST request target: data, not behaviour. It is comparable and
// may be used as a map key.
//
// Discord limits requests per route and per top-level resource (a channel, a
// guild, a webhook with its token). The same route with different top-level
// IDs is limited separately, so a limiter keys on [Route.Endpoint] plus
// [Route.Resource] until Discord names the route's bucket, and on the bucket
// hash plus [Route.Resource] after.
type Route struct {
	// Method is the HTTP method, upper case: GET, POST, PUT, PATCH or DELETE.
	Method string
	// Path is the request path relative to the API base, escaped, starting
	// with a slash: "/channels/123/messages".
	Path string
	// Template is Path with every ID replaced by a placeholder:
	// "/channels/{channel_id}/messages".
	Template string
	// Resource names the top-level resource: "channels/123", "guilds/9",
	// "webhooks/5/token", or "" when the path has none.
	Resource string
	// Exempt reports that the route does not count toward the global limit.
	// Discord exempts the interaction endpoints.
	Exempt bool
}

// Endpoint returns the method and template, "POST /channels/{channel_id}/messages":
// the part of a route that Discord maps to a bucket hash.
func (r Route) Endpoint() string { return r.Method + " " + r.Template }

// Key returns the limiter key used before the route's bucket hash is known:
// the endpoint and the top-level resource.
func (r Route) Key() string {
	if r.Resource == "" {
		return r.Endpoint()
	}
	return r.Endpoint() + " " + r.Resource
}

// String returns "METHOD path" with webhook and interaction tokens
// replaced by their placeholders (see [Route.Redacted]), so a route can be
// logged.
func (r Route) String() string { return r.Redacted() }

// Redacted returns "METHOD path" where every path segment whose template
// placeholder names a token ({webhook_token}, {interaction_token}) shows
// the placeholder instead: tokens in paths are credentials.
func (r Route) Redacted() string {
	if !strings.Contains(r.Template, "token}") {
		return r.Method + " " + r.Path
	}
	path := strings.Split(r.Path, "/")
	tmpl := strings.Split(r.Template, "/")
	if len(path) != len(tmpl) {
		return r.Method + " " + r.Template
	}
	for i, t := range tmpl {
		if strings.HasPrefix(t, "{") && strings.HasSuffix(t, "token}") {
			path[i] = t
		}
	}
	return r.Method + " " + strings.Join(path, "/")
}

// topLevel lists the path prefixes whose next segment (and, for webhooks, the
// one after) is a top-level resource.
var topLevel = map[string]string{
	"channels": "channel_id",
	"guilds":   "guild_id",
	"webhooks": "webhook_id",
}

func validMethod(m string) bool {
	switch m {
	case "GET", "POST", "PUT", "PATCH", "DELETE":
		return true
	}
	return false
}

// NewRoute builds a Route from a template such as
// "/channels/{channel_id}/messages/{message_id}" and one argument per
// placeholder, in order. Arguments are path-escaped. A template whose
// placeholder is named {interaction_token}, or that starts with
// /interactions/, is exempt from the global limit.
//
// NewRoute returns an error wrapping [ErrInvalidRoute] for an unknown
// method, a template that does not start with a slash, an empty argument, or
// a placeholder count that does not match the arguments.
func NewRoute(method, template string, args ...string) (Route, error) {
	if !validMethod(method) {
		return Route{}, fmt.Errorf("%w: method %q", ErrInvalidRoute, method)
	}
	if !strings.HasPrefix(template, "/") || strings.ContainsAny(template, "?# ") {
		return Route{}, fmt.Errorf("%w: template %q must be a path starting with /", ErrInvalidRoute, template)
	}
	segs := strings.Split(template[1:], "/")
	path := make([]string, len(segs))
	names := make([]string, len(segs))
	n := 0
	for i, s := range segs {
		if s == "" || s == "." || s == ".." {
			return Route{}, fmt.Errorf("%w: template %q has an empty or relative segment", ErrInvalidRoute, template)
		}
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") && len(s) > 2 {
			if n >= len(args) {
				return Route{}, fmt.Errorf("%w: template %q needs more than %d arguments", ErrInvalidRoute, template, len(args))
			}
			if args[n] == "" {
				return Route{}, fmt.Errorf("%w: argument %d for %s is empty", ErrInvalidRoute, n, s)
			}
			path[i] = url.PathEscape(args[n])
			names[i] = s[1 : len(s)-1]
			n++
			continue
		}
		if strings.ContainsAny(s, "{}") {
			return Route{}, fmt.Errorf("%w: template %q has a malformed placeholder", ErrInvalidRoute, template)
		}
		path[i] = s
	}
	if n != len(args) {
		return Route{}, fmt.Errorf("%w: template %q takes %d arguments, got %d", ErrInvalidRoute, template, n, len(args))
	}
	r := Route{Method: method, Path: "/" + strings.Join(path, "/"), Template: template}
	r.Resource = resource(segs, path, names)
	r.Exempt = segs[0] == "interactions"
	for _, name := range names {
		if name == "interaction_token" {
			r.Exempt = true
		}
	}
	return r, nil
}

// resource derives the top-level resource from the template segments, the
// escaped path segments and the placeholder names.
func resource(segs, path, names []string) string {
	if len(segs) < 2 || names[1] == "" {
		return ""
	}
	switch segs[0] {
	case "channels", "guilds":
		return segs[0] + "/" + path[1]
	case "webhooks", "interactions":
		if len(segs) >= 3 && names[2] != "" {
			return segs[0] + "/" + path[1] + "/" + path[2]
		}
		return segs[0] + "/" + path[1]
	}
	return ""
}

// ParseRoute builds a Route from a method and a concrete path such as
// "/channels/123/messages/456", for requests that have no template at hand.
// The top-level ID stays in [Route.Resource]; other numeric IDs, a webhook
// token and a reaction's emoji become placeholders in the template. Only
// paths under /interactions/ are exempt from the global limit: a webhook
// token cannot be told apart from an interaction token, and counting an
// exempt route is merely slower, never a 429.
//
// ParseRoute returns an error wrapping [ErrInvalidRoute] for an unknown
// method, a path with a query, or an empty or relative segment.
func ParseRoute(method, path string) (Route, error) {
	if !validMethod(method) {
		return Route{}, fmt.Errorf("%w: method %q", ErrInvalidRoute, method)
	}
	if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, "?# ") {
		return Route{}, fmt.Errorf("%w: path %q must start with / and carry no query", ErrInvalidRoute, path)
	}
	segs := strings.Split(path[1:], "/")
	tmpl := make([]string, len(segs))
	names := make([]string, len(segs))
	for i, s := range segs {
		if s == "" || s == "." || s == ".." {
			return Route{}, fmt.Errorf("%w: path %q has an empty or relative segment", ErrInvalidRoute, path)
		}
		tmpl[i] = s
		switch {
		case i == 1 && topLevel[segs[0]] != "":
			names[i] = topLevel[segs[0]]
		case i == 1 && segs[0] == "interactions":
			names[i] = "interaction_id"
		case i == 2 && segs[0] == "webhooks":
			names[i] = "webhook_token"
		case i == 2 && segs[0] == "interactions":
			names[i] = "interaction_token"
		case i > 0 && segs[i-1] == "reactions":
			names[i] = "emoji"
		case isSnowflake(s):
			names[i] = "id"
		}
		if names[i] != "" {
			tmpl[i] = "{" + names[i] + "}"
		}
	}
	r := Route{
		Method:   method,
		Path:     path,
		Template: "/" + strings.Join(tmpl, "/"),
		Exempt:   segs[0] == "interactions",
	}
	r.Resource = resource(segs, segs, names)
	return r, nil
}

func isSnowflake(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
