package reference

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cordkit/cordkit/protocols"
)

var (
	_ protocols.RateLimiter = (*limiter)(nil)
	_ protocols.Permit      = (*permit)(nil)

	_ func(protocols.RateLimiterParams) (protocols.RateLimiter, error) = NewRateLimiter
	_ func(protocols.RateLimiterParams) (protocols.RateLimiter, error) = RateLimiterOptions{}.New
)

// DefaultGlobalLimit is Discord's global limit: 50 requests per second per
// bot, used when [protocols.RateLimiterParams.GlobalLimit] is zero.
const DefaultGlobalLimit = 50

// Defaults of [RateLimiterOptions].
const (
	// DefaultCloudflarePause is how long every route pauses after a
	// Cloudflare 429 that says nothing about how long to wait.
	DefaultCloudflarePause = 60 * time.Second
	// DefaultIdleTimeout is how long an unused bucket is kept past its
	// last activity and its last known reset.
	DefaultIdleTimeout = 10 * time.Minute
)

// RateLimiterOptions holds the settings of the reference rate limiter that
// [protocols.RateLimiterParams] does not carry. The zero value gives the
// defaults. Its New method has the shape of the TypeSheet's NewRateLimiter
// field.
type RateLimiterOptions struct {
	// CloudflarePause is how long every route, exempt ones included, waits
	// after a 429 that looks like a Cloudflare IP ban (see
	// [protocols.ScopeCloudflare]) when the response gave no Retry-After.
	// Such bans are reported to last up to an hour; the pause only keeps
	// the client from making the ban worse, and the HTTP client does not
	// retry these 429s. Defaults to [DefaultCloudflarePause]; negative
	// means no pause beyond Retry-After.
	CloudflarePause time.Duration
	// IdleTimeout is how long a bucket that nobody waits on or holds a
	// permit of is kept after its last activity and its last known reset.
	// Eviction runs lazily inside Acquire, at most once per IdleTimeout,
	// so a long-running bot that touches many channels does not grow
	// without bound. Defaults to [DefaultIdleTimeout]; negative disables
	// eviction.
	IdleTimeout time.Duration
}

// NewRateLimiter returns the reference [protocols.RateLimiter] with default
// [RateLimiterOptions]. A nil p.NewBucket means [NewBucket]; a nil p.Logger
// discards logs; a zero p.GlobalLimit means [DefaultGlobalLimit], and a
// negative one disables the proactive global limit (global 429s are still
// honoured).
func NewRateLimiter(p protocols.RateLimiterParams) (protocols.RateLimiter, error) {
	return RateLimiterOptions{}.New(p)
}

// New returns the reference [protocols.RateLimiter] with options o.
//
// # Buckets
//
// Until Discord has named a route's bucket, the route waits in a temporary
// bucket keyed by [protocols.Route.Key] (endpoint and top-level resource).
// When a response carries X-RateLimit-Bucket H, the route's endpoint is
// mapped to H, and from then on its key is H plus the top-level resource:
// routes that return the same hash share one bucket per resource, and a
// new resource of a mapped endpoint goes straight to its hash bucket. The
// limits learned from that first response are handed to the hash bucket
// (created, or updated through [protocols.BucketUpdater]), so requests that move
// there, and other routes that share it, do not go blind into an exhausted
// window.
//
// When an endpoint is first mapped, its temporary buckets are retired
// (closed): their waiters re-resolve their key and queue in the hash
// bucket. When an endpoint's hash changes (Discord does this, for example
// for message deletes), the old hash's buckets are retired only if no
// other endpoint still maps to that hash; otherwise their waiters check the
// mapping once admitted, give the slot back and move.
//
// # Global limit
//
// Acquire waits for the route's bucket first and for the global token
// second, and gives the bucket slot back if the global wait fails. The
// other order would let a request sit on one of the few global tokens
// while its bucket waits out a reset of seconds, starving every other
// route; holding a bucket slot while waiting for a token costs nothing,
// since the bucket's next request could not go before this one anyway.
//
// The proactive limit allows at most GlobalLimit non-exempt requests in any
// one second as Discord sees them, whatever the latency: a token is taken
// in Acquire, held until the response arrives (Complete), and only then
// returns, one second later. Discord receives a request somewhere between
// those two moments, so no one-second window on its side can hold more
// than GlobalLimit of them. Cancel returns the token at once. Exempt
// routes ([protocols.Route.Exempt]) never take a token.
//
// A global 429 pauses every non-exempt route for its RetryAfter. A
// Cloudflare 429 pauses every route, exempt ones included (the ban is on
// the IP), for RetryAfter or [RateLimiterOptions.CloudflarePause]. A user
// or shared 429 pauses only its bucket.
//
// # Lifetime
//
// The limiter starts no goroutine. Idle buckets are evicted lazily (see
// [RateLimiterOptions.IdleTimeout]). Close wakes every waiter with
// [protocols.ErrClosed] and closes every bucket; permits still out may be
// finished afterwards and do nothing.
func (o RateLimiterOptions) New(p protocols.RateLimiterParams) (protocols.RateLimiter, error) {
	if p.NewBucket == nil {
		p.NewBucket = NewBucket
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.GlobalLimit == 0 {
		p.GlobalLimit = DefaultGlobalLimit
	}
	if o.CloudflarePause == 0 {
		o.CloudflarePause = DefaultCloudflarePause
	}
	if o.CloudflarePause < 0 {
		o.CloudflarePause = 0
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	l := &limiter{
		newBucket: p.NewBucket,
		logger:    p.Logger,
		opts:      o,
		hashes:    make(map[string]string),
		buckets:   make(map[string]*entry),
		global:    newGate(p.GlobalLimit),
	}
	return l, nil
}

type limiter struct {
	newBucket protocols.BucketFunc
	logger    *slog.Logger
	opts      RateLimiterOptions
	global    *gate

	mu        sync.Mutex
	closed    bool
	hashes    map[string]string // endpoint -> X-RateLimit-Bucket
	buckets   map[string]*entry // bucket key -> bucket
	nextSweep time.Time
}

// entry is one bucket in the limiter's map.
type entry struct {
	key    string
	bucket protocols.Bucket
	// endpoint is set on a temporary bucket (keyed by Route.Key), hash on a
	// bucket keyed by its X-RateLimit-Bucket.
	endpoint, hash string
	// refs counts the goroutines waiting on the bucket and the permits out.
	// Guarded by limiter.mu, like idleFrom.
	refs int
	// idleFrom is the latest of the last activity and the last known
	// reset; eviction counts from it.
	idleFrom time.Time
}

// hashKey is the key of the bucket for hash and top-level resource.
func hashKey(hash, resource string) string {
	if resource == "" {
		return hash
	}
	return hash + " " + resource
}

// keyFor returns r's bucket key. l.mu is held.
func (l *limiter) keyFor(r protocols.Route) (key, hash string) {
	if h, ok := l.hashes[r.Endpoint()]; ok {
		return hashKey(h, r.Resource), h
	}
	return r.Key(), ""
}

// Acquire waits for r's bucket, then for a global token unless r is exempt.
func (l *limiter) Acquire(ctx context.Context, r protocols.Route) (protocols.Permit, error) {
	for {
		e, err := l.enter(r)
		if err != nil {
			return nil, l.fail(r, err)
		}
		bp, err := e.bucket.Acquire(ctx)
		if err != nil {
			if retired := l.leave(e, nil); retired && errors.Is(err, protocols.ErrClosed) {
				if ctx.Err() != nil {
					return nil, l.fail(r, ctx.Err())
				}
				continue // the bucket was replaced: queue in the new one
			}
			return nil, l.fail(r, err)
		}
		if l.moved(r, e) {
			// The route was re-mapped while it waited: give the slot back
			// (the bucket keeps it counted) and queue where it belongs now.
			bp.Cancel()
			l.leave(e, nil)
			continue
		}
		token, err := l.global.acquire(ctx, r.Exempt)
		if err != nil {
			bp.Cancel()
			l.leave(e, nil)
			return nil, l.fail(r, err)
		}
		return &permit{l: l, route: r, e: e, bp: bp, token: token}, nil
	}
}

// fail wraps an Acquire error, turning any failure after Close into
// [protocols.ErrClosed]. Routes appear by endpoint, never by path: a path
// may hold a webhook token.
func (l *limiter) fail(r protocols.Route, err error) error {
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed && !errors.Is(err, protocols.ErrClosed) {
		return fmt.Errorf("reference: rate limiter: %s: %w", r.Endpoint(), protocols.ErrClosed)
	}
	return fmt.Errorf("reference: rate limiter: %s: %w", r.Endpoint(), err)
}

// enter finds or creates r's bucket and takes a reference to it.
func (l *limiter) enter(r protocols.Route) (*entry, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, protocols.ErrClosed
	}
	now := time.Now()
	evicted := l.sweep(now)
	key, hash := l.keyFor(r)
	e := l.buckets[key]
	if e == nil {
		e = &entry{key: key, bucket: l.newBucket(), hash: hash, idleFrom: now}
		if hash == "" {
			e.endpoint = r.Endpoint()
		}
		l.buckets[key] = e
	}
	e.refs++
	l.mu.Unlock()
	closeAll(evicted)
	return e, nil
}

// leave drops a reference to e, taken by enter, and notes when e was last
// busy. It reports whether e has been retired from the map while the
// limiter is still open: its waiters must re-resolve their key.
func (l *limiter) leave(e *entry, info *protocols.RateLimitInfo) bool {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e.refs--
	busy := now
	if info != nil {
		busy = busyUntil(now, *info)
	}
	if busy.After(e.idleFrom) {
		e.idleFrom = busy
	}
	return !l.closed && l.buckets[e.key] != e
}

// busyUntil returns when a bucket that got info at now may next be idle:
// after its reset and after any pause.
func busyUntil(now time.Time, info protocols.RateLimitInfo) time.Time {
	busy := now
	if t := now.Add(info.ResetAfter); t.After(busy) {
		busy = t
	}
	if t := now.Add(info.RetryAfter); t.After(busy) {
		busy = t
	}
	return busy
}

// moved reports whether r no longer belongs in e: its key changed, or e
// was retired.
func (l *limiter) moved(r protocols.Route, e *entry) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false // the global wait will fail with ErrClosed
	}
	key, _ := l.keyFor(r)
	return key != e.key || l.buckets[key] != e
}

// sweep removes the buckets idle for longer than IdleTimeout and returns
// them, to be closed without l.mu held. It runs at most once per
// IdleTimeout. l.mu is held.
func (l *limiter) sweep(now time.Time) []protocols.Bucket {
	idle := l.opts.IdleTimeout
	if idle < 0 || now.Before(l.nextSweep) {
		return nil
	}
	l.nextSweep = now.Add(idle)
	var out []protocols.Bucket
	for k, e := range l.buckets {
		if e.refs == 0 && !now.Before(e.idleFrom.Add(idle)) {
			delete(l.buckets, k)
			out = append(out, e.bucket)
		}
	}
	return out
}

// complete finishes p with the response info.
func (l *limiter) complete(p *permit, info protocols.RateLimitInfo) {
	now := time.Now()

	// A response naming a bucket other than the one that admitted p
	// belongs to that bucket: teach it, creating it if need be, before the
	// route is mapped to it, so that no request reaches it blind.
	var seeded protocols.Bucket
	var seedKey string
	if info.Bucket != "" {
		key := hashKey(info.Bucket, p.route.Resource)
		var target protocols.Bucket
		l.mu.Lock()
		open := !l.closed
		if e := l.buckets[key]; open && e != nil && key != p.e.key {
			target = e.bucket
			if t := busyUntil(now, info); t.After(e.idleFrom) {
				e.idleFrom = t
			}
		}
		l.mu.Unlock()
		switch {
		case !open || key == p.e.key:
		case target != nil:
			if u, ok := target.(protocols.BucketUpdater); ok {
				u.Update(info)
			}
		default:
			seeded, seedKey = l.seed(info), key
		}
	}

	l.mu.Lock()
	retired := l.remap(p.route, info.Bucket)
	if seeded != nil {
		if key, _ := l.keyFor(p.route); !l.closed && key == seedKey && l.buckets[seedKey] == nil {
			l.buckets[seedKey] = &entry{key: seedKey, bucket: seeded, hash: info.Bucket, idleFrom: busyUntil(now, info)}
		} else {
			retired = append(retired, seeded) // lost a race: drop it
		}
	}
	l.mu.Unlock()

	if p.e.hash != "" && info.Bucket != "" && info.Bucket != p.e.hash {
		// The response belongs to another bucket now: only free the slot.
		p.bp.Cancel()
	} else {
		p.bp.Complete(info)
	}
	l.leave(p.e, &info)
	l.global.release(p.token, &info, l.opts.CloudflarePause)
	closeAll(retired)

	if info.Limited() {
		l.logger.Debug("rate limited", "route", p.route.Endpoint(), "bucket", info.Bucket,
			"scope", string(info.Scope), "retry_after", info.RetryAfter)
	}
}

// seed returns a new bucket that has already seen info: through
// [protocols.BucketUpdater] when the bucket has it, otherwise through a permit. A new
// bucket admits its first request at once (its limit is unknown), so that
// Acquire does not wait; the timeout only guards against a BucketFunc that
// breaks the rule.
func (l *limiter) seed(info protocols.RateLimitInfo) protocols.Bucket {
	b := l.newBucket()
	if u, ok := b.(protocols.BucketUpdater); ok {
		u.Update(info)
		return b
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	bp, err := b.Acquire(ctx)
	if err != nil {
		_ = b.Close()
		return nil
	}
	bp.Complete(info)
	return b
}

// remap maps r's endpoint to hash and retires the buckets the change makes
// obsolete, returning them to be closed without l.mu held. l.mu is held.
func (l *limiter) remap(r protocols.Route, hash string) []protocols.Bucket {
	if hash == "" || l.closed {
		return nil
	}
	ep := r.Endpoint()
	old, had := l.hashes[ep]
	if had && old == hash {
		return nil
	}
	l.hashes[ep] = hash
	if had {
		l.logger.Debug("bucket hash changed", "route", ep, "bucket", hash, "old_bucket", old)
	} else {
		l.logger.Debug("bucket hash learned", "route", ep, "bucket", hash)
	}
	var out []protocols.Bucket
	retire := func(match func(e *entry) bool) {
		for k, e := range l.buckets {
			if match(e) {
				delete(l.buckets, k)
				out = append(out, e.bucket)
			}
		}
	}
	if !had {
		retire(func(e *entry) bool { return e.endpoint == ep })
		return out
	}
	for _, h := range l.hashes {
		if h == old {
			return nil // another endpoint still uses the old hash's buckets
		}
	}
	retire(func(e *entry) bool { return e.hash == old })
	return out
}

// Close wakes every waiter with an error wrapping [protocols.ErrClosed] and
// closes every bucket. It is idempotent.
func (l *limiter) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	var all []protocols.Bucket
	for _, e := range l.buckets {
		all = append(all, e.bucket)
	}
	clear(l.buckets)
	l.mu.Unlock()
	l.global.close()
	closeAll(all)
	return nil
}

func closeAll(bs []protocols.Bucket) {
	for _, b := range bs {
		_ = b.Close()
	}
}

type permit struct {
	l     *limiter
	route protocols.Route
	e     *entry
	bp    protocols.Permit
	token bool // holds a global token
	done  atomic.Bool
}

// Complete reports the response: the limiter learns the route's bucket, the
// bucket its limits, and a 429 pauses the bucket or every route.
func (p *permit) Complete(info protocols.RateLimitInfo) {
	if p.done.Swap(true) {
		return
	}
	p.l.complete(p, info)
}

// Cancel frees the bucket slot and gives the global token back at once.
func (p *permit) Cancel() {
	if p.done.Swap(true) {
		return
	}
	p.bp.Cancel()
	p.l.leave(p.e, nil)
	p.l.global.release(p.token, nil, 0)
}
