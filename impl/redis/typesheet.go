package redis

import "github.com/cordkit/cordkit/protocols"

// TypeSheet returns base with the parts that shards in several processes
// must share taken from Redis: NewRateLimiter ([Options.NewRateLimiter]),
// NewIdentifyLimiter ([Options.NewIdentifyLimiter]) and SessionStore
// ([Options.NewSessionStore]). The other fields of base are kept as they
// are, so nil ones still mean the reference implementation.
//
// It returns an error, and the zero TypeSheet, when o is invalid: a nil
// Client ([ErrNoClient]) or an empty Namespace ([ErrNoNamespace]).
func (o Options) TypeSheet(base protocols.TypeSheet) (protocols.TypeSheet, error) {
	if err := o.validate(); err != nil {
		return protocols.TypeSheet{}, err
	}
	store, err := o.NewSessionStore()
	if err != nil {
		return protocols.TypeSheet{}, err
	}
	base.NewRateLimiter = o.NewRateLimiter
	base.NewIdentifyLimiter = o.NewIdentifyLimiter
	base.SessionStore = store
	return base, nil
}
