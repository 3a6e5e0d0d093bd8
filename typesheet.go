package cordkit

import (
	"log/slog"
	"net/http"
	"time"

	reference "github.com/cordkit/cordkit/impl/default"
	"github.com/cordkit/cordkit/protocols"
)

// TypeSheet says which implementation of each protocol a [State] uses: one
// field per protocol, an implementation or a constructor. A nil field means
// the reference implementation from impl/default, so the zero TypeSheet is
// valid and swapping one part means setting one field:
//
//	sheet := cordkit.TypeSheet{NewRateLimiter: myLimiter}
//	state, err := cordkit.New(cfg, sheet)
//
// TypeSheet is defined in package protocols so that implementation
// packages (impl/fast, your own) can return one without importing this
// package. [New] copies it: changing a TypeSheet after New has no effect.
type TypeSheet = protocols.TypeSheet

// defaultDoer is the HTTP client used when the TypeSheet names none: its own
// transport (so that changes to http.DefaultTransport do not reach it) and
// no cross-host redirects, so the token never leaves the API host.
func defaultDoer() protocols.HTTPDoer {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &http.Client{
		Transport: tr,
		Timeout:   2 * time.Minute,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// resolve returns ts with every nil field set to the reference
// implementation.
func resolve(ts TypeSheet) TypeSheet {
	if ts.Logger == nil {
		ts.Logger = slog.New(slog.DiscardHandler)
	}
	if ts.Codec == nil {
		ts.Codec = reference.Codec{}
	}
	if ts.HTTPDoer == nil {
		ts.HTTPDoer = defaultDoer()
	}
	if ts.NewBucket == nil {
		ts.NewBucket = reference.NewBucket
	}
	if ts.NewRateLimiter == nil {
		ts.NewRateLimiter = reference.NewRateLimiter
	}
	if ts.NewHTTPClient == nil {
		ts.NewHTTPClient = reference.NewHTTPClient
	}
	if ts.Dialer == nil {
		ts.Dialer = reference.NewDialer()
	}
	if ts.NewInflater == nil {
		ts.NewInflater = reference.NewInflater
	}
	if ts.NewKeepAlive == nil {
		ts.NewKeepAlive = reference.NewKeepAlive
	}
	if ts.NewSendLimiter == nil {
		ts.NewSendLimiter = reference.NewSendLimiter
	}
	if ts.NewIdentifyLimiter == nil {
		ts.NewIdentifyLimiter = reference.NewIdentifyLimiter
	}
	if ts.NewDispatcher == nil {
		ts.NewDispatcher = reference.NewDispatcher
	}
	if ts.SessionStore == nil {
		ts.SessionStore = reference.NewSessionStore()
	}
	if ts.NewShard == nil {
		ts.NewShard = reference.NewShard
	}
	if ts.NewGateway == nil {
		ts.NewGateway = reference.NewGateway
	}
	return ts
}

// DefaultTypeSheet returns a TypeSheet with every field set to the reference
// implementation: what [New] uses for nil fields. Decorators start from it.
func DefaultTypeSheet() TypeSheet { return resolve(TypeSheet{}) }
