package fast

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cordkit/cordkit/protocols"
)

var (
	_ protocols.RateLimiter       = (*limiter)(nil)
	_ protocols.ConcurrentBuckets = (*limiter)(nil)
	_ protocols.Permit            = (*permit)(nil)

	_ func(protocols.RateLimiterParams) (protocols.RateLimiter, error) = NewRateLimiter
	_ func(protocols.RateLimiterParams) (protocols.RateLimiter, error) = RateLimiterOptions{}.New
)

// Defaults of [RateLimiterOptions] and [protocols.RateLimiterParams], the
// same as the reference limiter's.
const (
	// DefaultGlobalLimit is Discord's global limit, 50 requests per second
	// per bot, used when [protocols.RateLimiterParams].GlobalLimit is zero.
	DefaultGlobalLimit = 50
	// DefaultCloudflarePause is how long every route pauses after a
	// Cloudflare 429 that says nothing about how long to wait.
	DefaultCloudflarePause = 60 * time.Second
	// DefaultIdleTimeout is how long an unused bucket is kept past its
	// last activity and its last known reset.
	DefaultIdleTimeout = 10 * time.Minute
)

// RateLimiterOptions holds the settings of the fast rate limiter that
// [protocols.RateLimiterParams] does not carry. The zero value gives the
// defaults, which behave as the reference limiter. Its New method has the
// shape of the TypeSheet's NewRateLimiter field.
type RateLimiterOptions struct {
	// CloudflarePause is how long every route, exempt ones included, waits
	// after a 429 that looks like a Cloudflare IP ban (see
	// [protocols.ScopeCloudflare]) when the response gave no Retry-After.
	// Defaults to [DefaultCloudflarePause]; negative means no pause beyond
	// Retry-After.
	CloudflarePause time.Duration
	// IdleTimeout is how long a bucket that nobody waits on or holds a
	// permit of is kept after its last activity and its last known reset.
	// Eviction runs lazily inside Acquire, at most once per IdleTimeout.
	// Defaults to [DefaultIdleTimeout]; negative disables eviction.
	IdleTimeout time.Duration
	// InFlight lets up to Remaining requests of a bucket be in flight at
	// once, instead of one at a time. Off by default.
	//
	// Discord counts a request when it arrives, and the limiter learns the
	// count only from responses, which may come back in any order. With
	// InFlight on, a bucket whose limit is known admits a request while
	// its local count of the window, which every admission lowers, is
	// above zero: at most Remaining requests whose responses are pending,
	// plus those already completed in the window. A response may only
	// lower that count, to its Remaining less the bucket's other requests
	// still in flight (they may reach Discord after it), and only push
	// the reset later: a response that comes back late, with the higher
	// Remaining of an earlier moment, cannot give requests back.
	//
	// The risk is a reset racing responses: a request admitted just
	// before the local reset may reach Discord after Discord's reset and
	// be counted in the next window. The local reset is never earlier
	// than Discord's (ResetAfter is counted from the response's arrival),
	// and once it passes the bucket goes blind as the reference does: it
	// sends one request, and only when nothing of the old window is in
	// flight, so the next window's count starts from a response that
	// includes every straggler. A bucket whose limit is unknown also
	// sends one request at a time. What remains is what the reference
	// has too: requests of other processes on the same token.
	//
	// The limiter reports the mode through [protocols.ConcurrentBuckets],
	// so the conformance suite checks it.
	InFlight bool
}

// NewRateLimiter returns the fast [protocols.RateLimiter] with default
// [RateLimiterOptions]. It has the shape of the TypeSheet's
// NewRateLimiter field; see [RateLimiterOptions.New].
func NewRateLimiter(p protocols.RateLimiterParams) (protocols.RateLimiter, error) {
	return RateLimiterOptions{}.New(p)
}

// New returns the fast [protocols.RateLimiter] with options o. It behaves
// as the reference limiter (impl/default) and passes the same conformance
// suite, with these differences in how it gets there:
//
//   - A route's bucket is found without a limiter-wide lock: the map from
//     endpoint to bucket hash is copy-on-write behind an atomic pointer
//     (it changes only when Discord names or renames a bucket), and the
//     buckets sit in 256 shards, each a copy-on-write map behind an
//     atomic pointer, so a lookup is two atomic loads and two map reads
//     and only creating or retiring a bucket takes its shard's mutex.
//   - A bucket that is known to be unlimited (its latest 2xx carried no
//     rate-limit headers) admits, and takes back, its requests with
//     atomics only: such a route touches no lock at all.
//   - Any other admission, the "Remaining above zero" case included,
//     takes only the bucket's own mutex, once in Acquire and once in
//     Complete.
//   - The global limit is a ring of GlobalLimit tokens on atomics; a
//     request takes a free one with one compare-and-swap. Only requests
//     that must wait (no free token, a pause, someone already waiting)
//     queue behind a mutex.
//
// The buckets are built in: p.NewBucket is ignored, because the lock-free
// paths read the bucket's own state. They behave as the reference bucket
// ([protocols.Bucket] rules), plus [RateLimiterOptions.InFlight]. A
// program that needs its own [protocols.BucketFunc] uses the reference
// limiter. A nil p.Logger discards logs; a zero p.GlobalLimit means
// [DefaultGlobalLimit], and a negative one disables the proactive global
// limit (global 429s are still honoured).
//
// # Buckets
//
// As in the reference: until Discord has named a route's bucket, the
// route waits in a temporary bucket keyed by its endpoint and top-level
// resource. When a response carries X-RateLimit-Bucket H, the endpoint is
// mapped to H and the route's key becomes H plus the resource; the hash
// bucket learns that first response before the mapping is published, and
// the endpoint's temporary buckets are retired, so their waiters move. When
// an endpoint's hash changes, the old hash's buckets are retired when no
// other endpoint maps to it; otherwise waiters admitted by a bucket that
// is no longer their route's give the slot back and move.
//
// # Global limit
//
// Acquire waits for the route's bucket first and for a global token
// second, and gives the bucket slot back if the global wait fails. A token
// is held from Acquire until the response arrives and becomes free one
// second later (at once after Cancel), so no one-second window on
// Discord's side holds more than GlobalLimit non-exempt requests, whatever
// the latency. Exempt routes never take a token. A global 429 pauses every
// non-exempt route for its RetryAfter, a Cloudflare 429 every route for
// RetryAfter or CloudflarePause, a user or shared 429 only its bucket.
//
// # Lifetime
//
// The limiter starts no goroutine. Idle buckets are evicted lazily. Close
// wakes every waiter with [protocols.ErrClosed]; permits still out may be
// finished afterwards and do nothing harmful.
func (o RateLimiterOptions) New(p protocols.RateLimiterParams) (protocols.RateLimiter, error) {
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
	c := clock{epoch: time.Now()}
	l := &limiter{
		clock:  c,
		logger: p.Logger,
		opts:   o,
		seed:   maphash.MakeSeed(),
		global: newGate(c, p.GlobalLimit),
	}
	l.hashes.Store(&map[epKey]string{})
	for i := range l.shards {
		l.shards[i].m.Store(&map[bkey]*bucket{})
	}
	if o.IdleTimeout > 0 {
		l.nextSweep.Store(int64(o.IdleTimeout))
	}
	return l, nil
}

// epKey is an endpoint: method and template.
type epKey struct{ method, template string }

const shardCount = 256

// shard is one slice of the bucket map: copy-on-write behind m, written
// under mu.
type shard struct {
	m  atomic.Pointer[map[bkey]*bucket]
	mu sync.Mutex
}

type limiter struct {
	clock
	logger *slog.Logger
	opts   RateLimiterOptions
	seed   maphash.Seed
	global *gate

	closed    atomic.Bool
	nextSweep atomic.Int64 // limiter time of the next eviction sweep

	// mu serializes the rare writers of hashes (and the retirements they
	// cause) and Close. Acquire and Complete never take it on their
	// common paths.
	mu     sync.Mutex
	hashes atomic.Pointer[map[epKey]string] // endpoint -> X-RateLimit-Bucket

	shards [shardCount]shard
}

// ConcurrentBuckets reports whether [RateLimiterOptions].InFlight is on.
func (l *limiter) ConcurrentBuckets() bool { return l.opts.InFlight }

// keyFor returns r's bucket key under the mapping hm.
func keyFor(hm map[epKey]string, r *protocols.Route) bkey {
	if h, ok := hm[epKey{r.Method, r.Template}]; ok {
		return bkey{name: h, res: r.Resource}
	}
	return bkey{method: r.Method, name: r.Template, res: r.Resource}
}

func (l *limiter) shardOf(k bkey) *shard {
	s := k.res
	if s == "" {
		s = k.name
	}
	return &l.shards[maphash.String(l.seed, s)%shardCount]
}

// bucket returns the bucket of key, creating it when there is none; a new
// bucket first learns seed when seed is not nil.
func (l *limiter) bucket(key bkey, seed *protocols.RateLimitInfo, now int64) *bucket {
	sh := l.shardOf(key)
	if b := (*sh.m.Load())[key]; b != nil {
		return b
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	m := *sh.m.Load()
	if b := m[key]; b != nil {
		return b
	}
	b := newBucket(key, l.clock, l.opts.InFlight, now)
	if seed != nil {
		b.mu.Lock()
		b.learn(*seed, now, 0)
		b.mu.Unlock()
		touch(&b.idleFrom, busyUntil(now, seed))
	}
	nm := make(map[bkey]*bucket, len(m)+1)
	maps.Copy(nm, m)
	nm[key] = b
	sh.m.Store(&nm)
	return b
}

// Acquire waits for r's bucket, then for a global token unless r is exempt.
func (l *limiter) Acquire(ctx context.Context, r protocols.Route) (protocols.Permit, error) {
	if l.closed.Load() {
		return nil, l.fail(&r, protocols.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		// The lock-free paths would not notice: a caller's cancellation
		// is honoured even when the route has room.
		return nil, l.fail(&r, err)
	}
	now := l.now()
	l.maybeSweep(now)
	for {
		hm := l.hashes.Load()
		key := keyFor(*hm, &r)
		b := l.bucket(key, nil, now)
		if err := b.acquire(ctx); err != nil {
			if errors.Is(err, protocols.ErrClosed) && !l.closed.Load() && ctx.Err() == nil {
				continue // the bucket was retired: queue in the one that replaced it
			}
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return nil, l.fail(&r, err)
		}
		if b.retired.Load() || (l.hashes.Load() != hm && keyFor(*l.hashes.Load(), &r) != key) {
			// The route was re-mapped while it waited: give the slot back
			// (the bucket keeps it counted) and queue where it belongs.
			b.finish(nil, l.now())
			if l.closed.Load() {
				return nil, l.fail(&r, protocols.ErrClosed)
			}
			continue
		}
		now = l.now()
		tok, err := l.global.acquire(ctx, r.Exempt, now)
		if err == nil && l.closed.Load() {
			l.global.release(tok, false, now)
			err = protocols.ErrClosed
		}
		if err != nil {
			b.finish(nil, l.now())
			return nil, l.fail(&r, err)
		}
		return &permit{l: l, route: r, b: b, token: int32(tok)}, nil
	}
}

// fail wraps an Acquire error, turning any failure after Close into
// [protocols.ErrClosed]. Routes appear by endpoint, never by path: a path
// may hold a webhook token.
func (l *limiter) fail(r *protocols.Route, err error) error {
	if l.closed.Load() && !errors.Is(err, protocols.ErrClosed) {
		err = protocols.ErrClosed
	}
	return fmt.Errorf("fast: rate limiter: %s: %w", r.Endpoint(), err)
}

// complete finishes p with the response info.
func (l *limiter) complete(p *permit, info protocols.RateLimitInfo) {
	now := l.now()
	if info.Bucket != "" && !l.closed.Load() {
		// A response naming a bucket other than the one that admitted p
		// belongs to that bucket: teach it, creating it if need be, before
		// the route is mapped to it, so that no request reaches it blind.
		if target := (bkey{name: info.Bucket, res: p.route.Resource}); target != p.b.key {
			sh := l.shardOf(target)
			if b := (*sh.m.Load())[target]; b != nil {
				b.update(info, now)
			} else {
				l.bucket(target, &info, now)
			}
		}
		l.remap(&p.route, info.Bucket)
	}
	if p.b.key.method == "" && info.Bucket != "" && info.Bucket != p.b.key.name {
		// The response belongs to another bucket now: only free the slot.
		p.b.finish(nil, now)
	} else {
		p.b.finish(&info, now)
	}
	l.global.release(int(p.token), true, now)
	if info.Limited() {
		l.global.apply(info, now, l.opts.CloudflarePause)
		l.logger.Debug("rate limited", "route", p.route.Endpoint(), "bucket", info.Bucket,
			"scope", string(info.Scope), "retry_after", info.RetryAfter)
	}
}

// remap maps r's endpoint to hash and retires the buckets the change makes
// obsolete. The common case, a hash already known, takes no lock.
func (l *limiter) remap(r *protocols.Route, hash string) {
	ep := epKey{r.Method, r.Template}
	if h, ok := (*l.hashes.Load())[ep]; ok && h == hash {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return
	}
	hm := *l.hashes.Load()
	old, had := hm[ep]
	if had && old == hash {
		return
	}
	nm := maps.Clone(hm)
	nm[ep] = hash
	l.hashes.Store(&nm)
	if had {
		l.logger.Debug("bucket hash changed", "route", r.Endpoint(), "bucket", hash, "old_bucket", old)
		for _, h := range nm {
			if h == old {
				return // another endpoint still uses the old hash's buckets
			}
		}
		l.retire(func(k bkey) bool { return k.method == "" && k.name == old })
		return
	}
	l.logger.Debug("bucket hash learned", "route", r.Endpoint(), "bucket", hash)
	l.retire(func(k bkey) bool { return k.method == r.Method && k.name == r.Template })
}

// retire removes the buckets whose key matches from the map, then wakes
// their waiters, who look their route up again. l.mu is held.
func (l *limiter) retire(match func(bkey) bool) {
	var out []*bucket
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		m := *sh.m.Load()
		var nm map[bkey]*bucket
		for k, b := range m {
			if match(k) {
				if nm == nil {
					nm = maps.Clone(m)
				}
				delete(nm, k)
				out = append(out, b)
			}
		}
		if nm != nil {
			sh.m.Store(&nm)
		}
		sh.mu.Unlock()
	}
	for _, b := range out {
		b.retire()
	}
}

// maybeSweep evicts idle buckets, at most once per IdleTimeout, in the
// Acquire that finds the time has come.
func (l *limiter) maybeSweep(now int64) {
	next := l.nextSweep.Load()
	if l.opts.IdleTimeout < 0 || now < next || !l.nextSweep.CompareAndSwap(next, now+int64(l.opts.IdleTimeout)) {
		return
	}
	cutoff := now - int64(l.opts.IdleTimeout)
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		m := *sh.m.Load()
		var nm map[bkey]*bucket
		for k, b := range m {
			if b.idleFrom.Load() <= cutoff && b.retireIdle(cutoff, now) {
				if nm == nil {
					nm = maps.Clone(m)
				}
				delete(nm, k)
			}
		}
		if nm != nil {
			sh.m.Store(&nm)
		}
		sh.mu.Unlock()
	}
}

// Close wakes every waiter with an error wrapping [protocols.ErrClosed]
// and retires every bucket. It is idempotent.
func (l *limiter) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Swap(true) {
		return nil
	}
	l.retire(func(bkey) bool { return true })
	l.global.close()
	return nil
}

type permit struct {
	l     *limiter
	route protocols.Route
	b     *bucket
	token int32 // the global token held, or -1
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
	now := p.l.now()
	p.b.finish(nil, now)
	p.l.global.release(int(p.token), false, now)
}
