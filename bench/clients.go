package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/disgoorg/disgo"
	"github.com/disgoorg/disgo/discord"
	"github.com/disgoorg/disgo/rest"
	"github.com/disgoorg/snowflake/v2"

	"github.com/cordkit/cordkit"
	"github.com/cordkit/cordkit/conformance/mockdiscord"
	"github.com/cordkit/cordkit/impl/fast"
)

// client is what a benchmark drives: one library pointed at one mock.
type client interface {
	getMe(ctx context.Context) error
	createMessage(ctx context.Context, channel int, content string) error
	close()
}

// library names a client and builds it for a mock. limited says whether
// the mock enforces Discord's limits (rest-limits) or not (rest): cordkit
// turns its own global limiter off when the mock has none, since the other
// libraries have no proactive global limiter either.
type library struct {
	name    string
	limiter bool // has a rate limiter; bare net/http does not
	build   func(srv *mockdiscord.Server, limited bool) (client, error)
}

var libraries = []library{
	{"cordkit reference", true, func(srv *mockdiscord.Server, limited bool) (client, error) {
		return newCordkit(srv, limited, cordkit.TypeSheet{})
	}},
	{"cordkit fast", true, func(srv *mockdiscord.Server, limited bool) (client, error) {
		return newCordkit(srv, limited, fast.TypeSheet())
	}},
	{"cordkit fast, in-flight", true, func(srv *mockdiscord.Server, limited bool) (client, error) {
		sheet := fast.TypeSheet()
		sheet.NewRateLimiter = fast.RateLimiterOptions{InFlight: true}.New // up to Remaining requests of a bucket at once
		return newCordkit(srv, limited, sheet)
	}},
	{"discordgo", true, newDiscordgo},
	{"disgo", true, newDisgo},
	{"net/http", false, newBare},
}

// newTransport is the connection pool every library gets, so that none
// pays for reconnects the others do not (http.Transport keeps only 2 idle
// connections per host by default; cordkit's own default keeps 64).
func newTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return tr
}

// ---- cordkit ----

type cordkitClient struct {
	st  *cordkit.State
	tr  *http.Transport
	chs []string
}

func newCordkit(srv *mockdiscord.Server, limited bool, sheet cordkit.TypeSheet) (client, error) {
	tr := newTransport()
	sheet.HTTPDoer = &http.Client{Transport: tr, Timeout: time.Minute}
	cfg := cordkit.Config{Token: cordkit.BotToken(srv.Token()), APIBase: srv.APIBase()}
	if !limited {
		cfg.GlobalLimit = -1
	}
	st, err := cordkit.New(cfg, sheet)
	if err != nil {
		return nil, err
	}
	return &cordkitClient{st: st, tr: tr, chs: srv.Channels()}, nil
}

func (c *cordkitClient) getMe(ctx context.Context) error {
	_, err := c.st.REST().GetCurrentUser(ctx)
	return err
}

func (c *cordkitClient) createMessage(ctx context.Context, ch int, content string) error {
	_, err := c.st.REST().CreateMessage(ctx, c.chs[ch], cordkit.MessageCreate{Content: content})
	return err
}

func (c *cordkitClient) close() {
	_ = c.st.Close()
	c.tr.CloseIdleConnections()
}

// ---- discordgo ----

// hostRewriter sends discord.com to the mock over plain HTTP: discordgo
// has no base-URL option. Any other host is refused.
type hostRewriter struct {
	host string
	base *http.Transport
}

func (h *hostRewriter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host != "discord.com" {
		return nil, fmt.Errorf("bench: refusing a request to %s", r.URL)
	}
	r2 := r.Clone(r.Context())
	r2.URL.Scheme, r2.URL.Host, r2.Host = "http", h.host, h.host
	return h.base.RoundTrip(r2)
}

type discordgoClient struct {
	s   *discordgo.Session
	tr  *http.Transport
	chs []string
}

func newDiscordgo(srv *mockdiscord.Server, _ bool) (client, error) {
	u, err := url.Parse(srv.URL())
	if err != nil {
		return nil, err
	}
	s, err := discordgo.New("Bot " + srv.Token()) // discordgo sends the token verbatim
	if err != nil {
		return nil, err
	}
	tr := newTransport()
	s.Client = &http.Client{Transport: &hostRewriter{host: u.Host, base: tr}, Timeout: time.Minute}
	s.LogLevel = discordgo.LogError
	return &discordgoClient{s: s, tr: tr, chs: srv.Channels()}, nil
}

func (c *discordgoClient) getMe(ctx context.Context) error {
	_, err := c.s.User("@me", discordgo.WithContext(ctx))
	return err
}

func (c *discordgoClient) createMessage(ctx context.Context, ch int, content string) error {
	_, err := c.s.ChannelMessageSend(c.chs[ch], content, discordgo.WithContext(ctx))
	return err
}

func (c *discordgoClient) close() { c.tr.CloseIdleConnections() }

// ---- disgo ----

type disgoClient struct {
	rc  rest.Client
	r   rest.Rest
	chs []snowflake.ID
}

func newDisgo(srv *mockdiscord.Server, _ bool) (client, error) {
	logger := slog.New(slog.DiscardHandler)
	rc := rest.NewClient(srv.Token(),
		rest.WithURL(srv.APIBase()),
		// rest.NewClient sends no User-Agent of its own; the mock, like
		// Discord, refuses requests without "DiscordBot (url, version)".
		rest.WithUserAgent(fmt.Sprintf("DiscordBot (%s, %s)", disgo.GitHub, disgo.Version)),
		rest.WithHTTPClient(&http.Client{Transport: newTransport(), Timeout: time.Minute}),
		rest.WithLogger(logger),
		rest.WithRateLimiterConfigOpts(rest.WithRateLimiterLogger(logger)),
	)
	c := &disgoClient{rc: rc, r: rest.New(rc)}
	for _, id := range srv.Channels() {
		sf, err := snowflake.Parse(id)
		if err != nil {
			return nil, err
		}
		c.chs = append(c.chs, sf)
	}
	return c, nil
}

func (c *disgoClient) getMe(ctx context.Context) error {
	_, err := c.r.GetCurrentUser("", rest.WithCtx(ctx))
	return err
}

func (c *disgoClient) createMessage(ctx context.Context, ch int, content string) error {
	_, err := c.r.CreateMessage(c.chs[ch], discord.MessageCreate{Content: content}, rest.WithCtx(ctx))
	return err
}

func (c *disgoClient) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.rc.Close(ctx)
	c.rc.HTTPClient().CloseIdleConnections()
}

// ---- bare net/http: the floor ----

// bareClient sends the same requests with the same headers through a
// plain http.Client, reads and discards the body, and decodes nothing.
type bareClient struct {
	hc       *http.Client
	tr       *http.Transport
	base, ua string
	auth     string
	chans    []string
}

func newBare(srv *mockdiscord.Server, _ bool) (client, error) {
	tr := newTransport()
	return &bareClient{
		hc:    &http.Client{Transport: tr, Timeout: time.Minute},
		tr:    tr,
		base:  srv.APIBase(),
		ua:    cordkit.DefaultUserAgent,
		auth:  "Bot " + srv.Token(),
		chans: srv.Channels(),
	}, nil
}

func (c *bareClient) do(ctx context.Context, method, path, body string) error {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("User-Agent", c.ua)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return nil
}

func (c *bareClient) getMe(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/users/@me", "")
}

func (c *bareClient) createMessage(ctx context.Context, ch int, content string) error {
	return c.do(ctx, http.MethodPost, "/channels/"+c.chans[ch]+"/messages", `{"content":"`+content+`"}`)
}

func (c *bareClient) close() { c.tr.CloseIdleConnections() }
