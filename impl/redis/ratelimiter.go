package redis

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cordkit/cordkit/protocols"
)

var (
	_ protocols.RateLimiter = (*RateLimiter)(nil)
	_ protocols.Permit      = (*permit)(nil)

	_ func(protocols.RateLimiterParams) (protocols.RateLimiter, error) = Options{}.NewRateLimiter
)

// DefaultGlobalLimit is Discord's global limit: 50 requests per second per
// bot, used when [protocols.RateLimiterParams.GlobalLimit] is zero.
const DefaultGlobalLimit = 50

// Defaults of [RateLimiterOptions].
const (
	// DefaultMaxWait is the longest a waiting Acquire sleeps before it asks
	// Redis again.
	DefaultMaxWait = time.Second
	// DefaultPermitLease is how long Redis keeps a permit's bucket slot
	// and global token for a process that never finishes it.
	DefaultPermitLease = time.Minute
	// DefaultCloudflarePause is how long every route pauses after a
	// Cloudflare 429 that says nothing about how long to wait.
	DefaultCloudflarePause = 60 * time.Second
	// DefaultIdleTimeout is how long a bucket's state stays in Redis past
	// its last known reset.
	DefaultIdleTimeout = 10 * time.Minute
	// DefaultFallbackShare divides Discord's limits while Redis cannot be
	// reached: each process then allows itself a quarter of the global
	// limit.
	DefaultFallbackShare = 4
	// DefaultProbeBackoff and DefaultMaxProbeBackoff bound how often a
	// limiter that fell back asks Redis whether it is back: after
	// DefaultProbeBackoff, then doubling up to DefaultMaxProbeBackoff.
	DefaultProbeBackoff    = 250 * time.Millisecond
	DefaultMaxProbeBackoff = 5 * time.Second
)

// ttlSlack is added to the TTL of every key whose entries carry their own
// expiry, so that Redis never drops an entry the scripts still count: the
// clock the scripts use (Options.Now) may run slower than Redis's own.
const ttlSlack = time.Minute

// RateLimiterOptions holds the settings of [Options.NewRateLimiter]. The
// zero value gives the defaults.
type RateLimiterOptions struct {
	// DisablePubSub turns off the pub/sub wake-ups. By default each
	// limiter subscribes to its namespace's channel, and the scripts
	// publish there when a bucket slot or a global token frees, so a
	// waiter in one process is woken as soon as another process releases
	// what it waits for. Without it, a waiter learns of releases by other
	// processes only when it asks again, after at most MaxWait; releases
	// in its own process still wake it at once. Turn it off in
	// testing/synctest bubbles: a subscriber blocked reading the network
	// is not durably blocked, so the fake clock would never advance.
	DisablePubSub bool
	// MaxWait bounds every sleep of a waiting Acquire between two looks at
	// Redis: the bounded fallback for a lost wake-up. Defaults to
	// [DefaultMaxWait].
	MaxWait time.Duration
	// PermitLease is how long Redis keeps the slot and global token of a
	// permit that is never finished (its process died). Set it above the
	// HTTP client's request timeout: a permit still out after its lease no
	// longer counts. Defaults to [DefaultPermitLease].
	PermitLease time.Duration
	// CloudflarePause is how long every route, exempt ones included,
	// waits after a Cloudflare 429 without Retry-After. Defaults to
	// [DefaultCloudflarePause]; negative means no pause beyond
	// Retry-After.
	CloudflarePause time.Duration
	// IdleTimeout is how long a bucket's state stays in Redis (and in the
	// local fallback state) past its last activity and its last known
	// reset. Defaults to [DefaultIdleTimeout].
	IdleTimeout time.Duration
	// FallbackShare divides Discord's limits while Redis cannot be reached
	// (see [Options.NewRateLimiter]); set it to the number of processes
	// sharing the bot. It also sets the global limit of the quarantine
	// window after Redis lost its data. Defaults to [DefaultFallbackShare].
	FallbackShare int
}

func (ro RateLimiterOptions) withDefaults() RateLimiterOptions {
	if ro.MaxWait <= 0 {
		ro.MaxWait = DefaultMaxWait
	}
	if ro.PermitLease <= 0 {
		ro.PermitLease = DefaultPermitLease
	}
	if ro.CloudflarePause == 0 {
		ro.CloudflarePause = DefaultCloudflarePause
	}
	if ro.CloudflarePause < 0 {
		ro.CloudflarePause = 0
	}
	if ro.IdleTimeout <= 0 {
		ro.IdleTimeout = DefaultIdleTimeout
	}
	if ro.FallbackShare <= 0 {
		ro.FallbackShare = DefaultFallbackShare
	}
	return ro
}

// ErrRateLimiterUnavailable matches every [*RateLimiterError]: Redis did
// not answer the rate limiter in time, or answered with an error.
var ErrRateLimiterUnavailable = errors.New("redis: rate limiter: redis unavailable")

// RateLimiterError is a failed call of the rate limiter to Redis. The
// limiter never returns it from Acquire (it falls back to local limits
// instead); it is logged when the limiter falls back and reported by
// [RateLimiter.Status]. errors.Is(err, [ErrRateLimiterUnavailable]) holds,
// and Unwrap gives the go-redis or context error.
type RateLimiterError struct {
	// Op is the script or command that failed: "acquire", "finish",
	// "rejoin".
	Op string
	// Err is the underlying error.
	Err error
}

// Error implements error.
func (e *RateLimiterError) Error() string {
	return "redis: rate limiter: " + e.Op + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *RateLimiterError) Unwrap() error { return e.Err }

// Is reports whether target is [ErrRateLimiterUnavailable].
func (e *RateLimiterError) Is(target error) bool { return target == ErrRateLimiterUnavailable }

// RateLimiterStatus is what [RateLimiter.Status] reports.
type RateLimiterStatus struct {
	// Shared reports that the limiter takes its decisions in Redis, with
	// every other process of the bot. When false it enforces the local
	// fallback limits.
	Shared bool
	// Since is when the limiter last switched between shared and
	// fallback; the zero time when it never did.
	Since time.Time
	// Err is the failure that made it fall back, a [*RateLimiterError];
	// nil while shared.
	Err error
}

//go:embed scripts/ratelimit_acquire.lua
var acquireSrc string

//go:embed scripts/ratelimit_finish.lua
var finishSrc string

//go:embed scripts/ratelimit_rejoin.lua
var rejoinSrc string

var (
	acquireScript = goredis.NewScript(acquireSrc)
	finishScript  = goredis.NewScript(finishSrc)
	rejoinScript  = goredis.NewScript(rejoinSrc)
)

// RateLimiter is the Redis-backed [protocols.RateLimiter] returned by
// [Options.NewRateLimiter]. It is safe for concurrent use.
type RateLimiter struct {
	o      Options
	ro     RateLimiterOptions
	logger *slog.Logger
	global int // <= 0: no proactive global limit
	qcap   int // global limit during a quarantine window

	id      string // this limiter's id: prefix of permit ids, sender of messages
	permits atomic.Uint64

	// Keys.
	prefix, epochKey, routesKey, globalKey, heldKey, retKey, channel string

	n  *notifier
	fb *fallback

	done      chan struct{}
	closeOnce sync.Once
	closed    atomic.Bool

	// Pub/sub listener, when on.
	sub       *goredis.PubSub
	subCancel context.CancelFunc
	subDone   chan struct{}

	mu        sync.Mutex // guards the health fields below
	degraded  bool
	since     time.Time
	lastErr   error
	probing   bool
	backoff   time.Duration
	nextProbe time.Time
	orphans   []orphan // permits whose outcome in Redis is unknown
}

// orphan is a permit that Redis may still count: its acquire or finish
// call failed. It is released when Redis answers again.
type orphan struct {
	id, key string
	token   bool
	route   protocols.Route // set when key is unknown
	res     string
}

// maxOrphans bounds the orphans kept; past it, leases free the rest.
const maxOrphans = 1024

// NewRateLimiter returns a [protocols.RateLimiter] whose state lives in
// Redis and is shared by every process using the same Options.Namespace.
// It has the shape of the TypeSheet's NewRateLimiter field:
//
//	sheet.NewRateLimiter = opts.NewRateLimiter
//
// It returns [ErrNoClient] or [ErrNoNamespace] for incomplete Options.
// p.NewBucket is ignored: bucket state lives in Redis and is decided by
// the Lua scripts, so a local Bucket cannot take part. A zero
// p.GlobalLimit means [DefaultGlobalLimit]; a negative one disables the
// proactive global limit (global 429s are still honoured). Logs go to
// Options.Logger, else p.Logger, else slog.Default().
//
// # Semantics
//
// Permits behave as the reference limiter's (impl/default): a route waits
// in a bucket keyed by its endpoint and top-level resource until Discord
// names its bucket hash, then in the bucket of hash and resource; a bucket
// of unknown limit admits one request at a time, a known one while
// Remaining lasts and one at a time, an unlimited one freely; at most the
// global limit of non-exempt requests hold or recently returned a token,
// a token coming back one second after the response (Complete) or at once
// (Cancel); a global 429 pauses every non-exempt route, a user or shared
// one its bucket, a Cloudflare one every route. All of it is kept in Redis
// and changed only by Lua scripts, atomically: the bucket slot and the
// global token are taken in one step, so N processes together never exceed
// a bucket's limit or the global limit.
//
// # Keys
//
// Under "cordkit:{ns}:rl:": "epoch" (its absence means Redis lost its
// data), "routes" (endpoint → bucket hash), "g" (global pause, Cloudflare
// ban, quarantine end), "gh" and "gr" (global tokens held and returning),
// "b:<bucket key>" (limit, remaining, reset, pause) and "f:<bucket key>"
// (permits in flight). Every key has a TTL: entries in flight expire with
// their permit's lease ([RateLimiterOptions.PermitLease]), buckets
// [RateLimiterOptions.IdleTimeout] after their reset. Webhook and
// interaction tokens in resources are hashed before they reach a key.
// The scripts take the time from Options.Now when set, else from Redis
// (TIME).
//
// # Waiting
//
// A refused Acquire sleeps for the wait the script returned (when the
// bucket resets, a pause ends, the next global token returns), at most
// [RateLimiterOptions.MaxWait], and is woken early, through channels, when
// a permit of its own process frees what it waits for, or when a pub/sub
// message says another process did (see
// [RateLimiterOptions.DisablePubSub]). It never polls faster than that.
// The pub/sub listener is the limiter's only goroutine; Close stops it.
//
// # When Redis fails
//
// When a call to Redis fails or takes longer than Options.Timeout, the
// limiter logs one warning and falls back to local limits that stay below
// Discord's while the other processes do the same: the global limit
// divided by [RateLimiterOptions.FallbackShare] (a quarter by default),
// after a quiet first second (the tokens the others spent in the current
// window are unknown), one request in flight per bucket, at most Limit/FallbackShare (at least
// one) of this process's requests per bucket window, and the resets and
// pauses it learned from its own responses. It asks Redis again after a
// backoff of [DefaultProbeBackoff] doubling to [DefaultMaxProbeBackoff],
// never on every request; on the first answer it logs once, counts the
// tokens it spent alone into the shared window, and frees in Redis the
// permits whose outcome it could not report. When Redis comes back empty
// (restarted without persistence, detected by the missing epoch key), the
// first window only admits the fallback share of the global limit: the
// tokens spent just before are unknown. (A limiter that starts while Redis
// is empty sets the epoch key without a quarantine: a new process has
// spent nothing yet.)
func (o Options) NewRateLimiter(p protocols.RateLimiterParams) (protocols.RateLimiter, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	ro := RateLimiterOptions{}
	if o.RateLimiter != nil {
		ro = *o.RateLimiter
	}
	ro = ro.withDefaults()
	logger := o.Logger
	if logger == nil {
		logger = p.Logger
	}
	if logger == nil {
		logger = slog.Default()
	}
	global := p.GlobalLimit
	if global == 0 {
		global = DefaultGlobalLimit
	}
	var raw [8]byte
	_, _ = rand.Read(raw[:])
	l := &RateLimiter{
		o:         o,
		ro:        ro,
		logger:    logger,
		global:    global,
		qcap:      max(1, global/ro.FallbackShare),
		id:        hex.EncodeToString(raw[:]),
		prefix:    o.key("rl") + ":",
		epochKey:  o.key("rl", "epoch"),
		routesKey: o.key("rl", "routes"),
		globalKey: o.key("rl", "g"),
		heldKey:   o.key("rl", "gh"),
		retKey:    o.key("rl", "gr"),
		channel:   o.key("rl", "wake"),
		n:         newNotifier(),
		fb:        newFallback(global, ro.FallbackShare, ro.IdleTimeout, ro.CloudflarePause),
		done:      make(chan struct{}),
		backoff:   DefaultProbeBackoff,
	}
	l.start()
	if !ro.DisablePubSub {
		l.listen()
	}
	return l, nil
}

// start marks the namespace's state as begun, unless it is already: a
// limiter that finds Redis empty when it starts has spent nothing in the
// current window, so no quarantine follows. A failure here is left to the
// first Acquire to meet.
func (l *RateLimiter) start() {
	ctx, cancel := context.WithTimeout(context.Background(), l.o.timeout())
	defer cancel()
	now := l.now()
	if now == "" {
		now = "0"
	}
	_ = l.o.Client.SetNX(ctx, l.epochKey, now, 24*time.Hour).Err()
}

// bucketKey is the key of the bucket of base (a hash or an endpoint) and
// a top-level resource, as the scripts build it.
func bucketKey(base, res string) string {
	if res == "" {
		return base
	}
	return base + " " + res
}

// sanitizeResource hashes the token of a webhook or interaction resource
// ("webhooks/5/<token>"), which must not reach Redis in clear.
func sanitizeResource(res string) string {
	i := strings.IndexByte(res, '/')
	if i < 0 {
		return res
	}
	j := strings.IndexByte(res[i+1:], '/')
	if j < 0 {
		return res
	}
	j += i + 1
	sum := sha256.Sum256([]byte(res[j+1:]))
	return res[:j+1] + "#" + hex.EncodeToString(sum[:8])
}

// now returns the time argument of the scripts: Options.Now in
// milliseconds, or "" for Redis's clock.
func (l *RateLimiter) now() any {
	if l.o.Now == nil {
		return ""
	}
	return l.o.Now().UnixMilli()
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

// waitFor says how long a refused Acquire sleeps and what may wake it early.
type waitFor struct {
	d      time.Duration // negative: until a release (at most MaxWait)
	key    string        // bucket key whose releases wake it
	global bool          // global releases wake it
}

// Acquire waits until r may be sent: room in its bucket and, unless r is
// exempt, a global token, taken together.
func (l *RateLimiter) Acquire(ctx context.Context, r protocols.Route) (protocols.Permit, error) {
	if err := ctx.Err(); err != nil {
		return nil, l.fail(r, err)
	}
	res := sanitizeResource(r.Resource)
	for {
		if l.closed.Load() {
			return nil, l.fail(r, protocols.ErrClosed)
		}
		gs, bs := l.n.seqs()
		var w waitFor
		if shared, probe := l.mode(); shared {
			p, wt, err := l.acquireShared(ctx, r, res)
			switch {
			case err == nil:
				l.up(probe)
				if p != nil {
					return p, nil
				}
				w = wt
			case ctx.Err() != nil:
				return nil, l.fail(r, ctx.Err())
			default:
				l.down(err, probe)
				continue // decide again in fallback
			}
		} else {
			b, key, token, wt := l.fb.try(r, res, time.Now())
			if b != nil {
				return &permit{l: l, route: r, res: res, id: l.nextID(), key: key, token: token, fbb: b}, nil
			}
			w = wt
		}
		if err := l.sleep(ctx, w, gs, bs); err != nil {
			return nil, l.fail(r, err)
		}
	}
}

// fail wraps an Acquire error, turning any failure after Close into
// [protocols.ErrClosed]. Routes appear by endpoint: a path may hold a
// webhook token.
func (l *RateLimiter) fail(r protocols.Route, err error) error {
	if l.closed.Load() && !errors.Is(err, protocols.ErrClosed) {
		err = protocols.ErrClosed
	}
	return fmt.Errorf("redis: rate limiter: %s: %w", r.Endpoint(), err)
}

func (l *RateLimiter) nextID() string {
	return l.id + ":" + strconv.FormatUint(l.permits.Add(1), 36)
}

// sleep waits for w, bounded by MaxWait, ctx and Close. It returns at once
// when a release came after the sequence numbers gs and bs were read.
func (l *RateLimiter) sleep(ctx context.Context, w waitFor, gs, bs uint64) error {
	var wake <-chan struct{}
	switch {
	case w.global:
		wake = l.n.watchGlobal(gs)
	case w.key != "":
		wake = l.n.watchKey(w.key, bs)
	}
	if wake == nil && (w.global || w.key != "") {
		return nil // something was released meanwhile: look again
	}
	d := w.d
	if d < 0 || d > l.ro.MaxWait {
		d = l.ro.MaxWait
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-l.done:
		return protocols.ErrClosed
	case <-wake:
	case <-t.C:
	}
	return nil
}

// acquireShared runs the acquire script once. It returns a permit, or the
// wait the script asked for, or a [*RateLimiterError].
func (l *RateLimiter) acquireShared(ctx context.Context, r protocols.Route, res string) (*permit, waitFor, error) {
	id := l.nextID()
	exempt := "0"
	if r.Exempt {
		exempt = "1"
	}
	// The call is not cut short by ctx: a grant Redis made must be known,
	// to be given back. It is bounded by Options.Timeout.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.o.timeout())
	out, err := acquireScript.Run(cctx, l.o.Client,
		[]string{l.epochKey, l.routesKey, l.globalKey, l.heldKey, l.retKey},
		l.now(), l.prefix, r.Endpoint(), res, exempt, l.global, l.qcap, id,
		ms(l.ro.PermitLease), ms(l.ro.IdleTimeout), ms(ttlSlack)).Slice()
	cancel()
	if err != nil {
		// The script may have run: remember the permit, to free it.
		l.orphan(orphan{id: id, token: true, route: r, res: res})
		return nil, waitFor{}, &RateLimiterError{Op: "acquire", Err: err}
	}
	if len(out) != 6 {
		return nil, waitFor{}, &RateLimiterError{Op: "acquire", Err: fmt.Errorf("unexpected reply %v", out)}
	}
	ok, _ := out[0].(int64)
	waitMS, _ := out[1].(int64)
	key, _ := out[2].(string)
	hash, _ := out[3].(string)
	reason, _ := out[4].(string)
	if fresh, _ := out[5].(int64); fresh == 1 {
		l.logger.LogAttrs(ctx, slog.LevelInfo, "redis rate limiter: redis had no state; the first global window admits only the fallback share",
			slog.Int("global_limit", l.qcap))
	}
	if ok != 1 {
		w := waitFor{d: time.Duration(waitMS) * time.Millisecond, key: key}
		if reason != "bucket" {
			w.key, w.global = "", true
		}
		if waitMS < 0 {
			w.d = -1
		}
		return nil, w, nil
	}
	token := !r.Exempt && l.global > 0
	p := &permit{l: l, route: r, res: res, id: id, key: key, hash: hash, token: token, shared: true}
	p.fbb = l.fb.takeShared(key, token, time.Now())
	if ctx.Err() != nil {
		// Granted after the caller gave up: give it back.
		p.Cancel()
		return nil, waitFor{}, ctx.Err()
	}
	return p, waitFor{}, nil
}

// mode reports whether to ask Redis, and whether this call is the probe of
// a limiter that fell back.
func (l *RateLimiter) mode() (shared, probe bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.degraded {
		return true, false
	}
	if l.probing || time.Now().Before(l.nextProbe) {
		return false, false
	}
	l.probing = true
	return true, true
}

// down records a failed call to Redis: the first one since Redis last
// answered makes the limiter fall back and log once.
func (l *RateLimiter) down(err error, probe bool) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if probe {
		l.probing = false
		l.backoff = min(2*l.backoff, DefaultMaxProbeBackoff)
		l.nextProbe = now.Add(l.backoff)
		l.lastErr = err
		return
	}
	if l.degraded {
		return
	}
	l.degraded, l.since, l.lastErr = true, now, err
	l.backoff = DefaultProbeBackoff
	l.nextProbe = now.Add(l.backoff)
	l.fb.quiet(now.Add(time.Second))
	l.logger.LogAttrs(context.Background(), slog.LevelWarn,
		"redis rate limiter: redis unavailable; falling back to local limits",
		slog.Any("err", err), slog.Int("fallback_share", l.ro.FallbackShare))
}

// up records an answer of Redis. After a successful probe the limiter
// returns to shared limits: it logs once, counts the tokens it spent alone
// into the shared window and frees its orphaned permits.
func (l *RateLimiter) up(probe bool) {
	if !probe {
		return
	}
	now := time.Now()
	l.mu.Lock()
	l.probing = false
	if !l.degraded {
		l.mu.Unlock()
		return
	}
	l.degraded, l.since, l.lastErr = false, now, nil
	orphans := l.orphans
	l.orphans = nil
	l.mu.Unlock()
	l.logger.LogAttrs(context.Background(), slog.LevelInfo, "redis rate limiter: redis is back; shared limits again",
		slog.Int("orphans", len(orphans)))
	l.rejoin(now)
	for _, o := range orphans {
		l.finishShared(&permit{id: o.id, key: o.key, token: o.token, route: o.route, res: o.res}, "release", nil)
	}
}

// rejoin adds the global tokens this process spent in the last second to
// the shared window.
func (l *RateLimiter) rejoin(now time.Time) {
	pending := l.fb.pendingTokens(now)
	if len(pending) == 0 || l.global <= 0 {
		return
	}
	args := []any{l.now(), ms(ttlSlack)}
	for i, d := range pending {
		args = append(args, l.id+":rejoin:"+strconv.FormatInt(now.UnixNano(), 36)+":"+strconv.Itoa(i), max(1, ms(d)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.o.timeout())
	defer cancel()
	if err := rejoinScript.Run(ctx, l.o.Client, []string{l.retKey}, args...).Err(); err != nil {
		l.down(&RateLimiterError{Op: "rejoin", Err: err}, false)
	}
}

func (l *RateLimiter) orphan(o orphan) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.orphans) < maxOrphans {
		l.orphans = append(l.orphans, o)
	}
}

// Status reports whether the limiter currently shares its limits through
// Redis or enforces the local fallback limits.
func (l *RateLimiter) Status() RateLimiterStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	return RateLimiterStatus{Shared: !l.degraded, Since: l.since, Err: l.lastErr}
}

// Close ends every wait with [protocols.ErrClosed] and stops the pub/sub
// listener. It does not close Options.Client. Permits still out may be
// finished afterwards: they still free their slots in Redis. Close is
// idempotent.
func (l *RateLimiter) Close() error {
	l.closeOnce.Do(func() {
		l.closed.Store(true)
		close(l.done)
		if l.sub != nil {
			l.subCancel()
			_ = l.sub.Close()
			<-l.subDone
		}
	})
	return nil
}

// listen subscribes to the namespace's wake channel and signals this
// process's waiters for every release another process publishes.
func (l *RateLimiter) listen() {
	ctx, cancel := context.WithCancel(context.Background())
	l.subCancel = cancel
	l.subDone = make(chan struct{})
	l.sub = l.o.Client.Subscribe(ctx, l.channel)
	go func() {
		defer close(l.subDone)
		backoff := DefaultProbeBackoff
		for {
			msg, err := l.sub.ReceiveMessage(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				// Redis is away: waiters fall back on MaxWait meanwhile.
				t := time.NewTimer(backoff)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
				backoff = min(2*backoff, DefaultMaxProbeBackoff)
				continue
			}
			backoff = DefaultProbeBackoff
			l.onMessage(msg.Payload)
		}
	}()
}

// onMessage handles one wake message: the sender id, then "k <key>" or
// "g" lines.
func (l *RateLimiter) onMessage(payload string) {
	sender, rest, _ := strings.Cut(payload, "\n")
	if sender == l.id || rest == "" {
		return
	}
	global := false
	var keys []string
	for line := range strings.SplitSeq(rest, "\n") {
		switch {
		case line == "g":
			global = true
		case strings.HasPrefix(line, "k "):
			keys = append(keys, line[2:])
		}
	}
	l.n.signal(global, keys...)
}

// permit is one admitted request, from Redis (shared) or from the local
// fallback (fbb set).
type permit struct {
	l     *RateLimiter
	route protocols.Route
	res   string
	id    string
	key   string // bucket key
	hash  string // the hash key was built from; "" for a route key
	token bool   // holds a global token
	// shared is set for permits from Redis; fbb is the permit's bucket in
	// the local fallback state.
	shared bool
	fbb    *fbBucket
	done   atomic.Bool
}

// Complete reports the response: Redis (or the fallback state) learns the
// route's bucket and limits, and a 429 pauses the bucket or every route.
func (p *permit) Complete(info protocols.RateLimitInfo) {
	if p.done.Swap(true) {
		return
	}
	p.finish(&info)
}

// Cancel frees the bucket slot and gives the global token back at once.
func (p *permit) Cancel() {
	if p.done.Swap(true) {
		return
	}
	p.finish(nil)
}

func (p *permit) finish(info *protocols.RateLimitInfo) {
	l := p.l
	l.fb.finish(p.route, p.res, p.fbb, p.token, info, time.Now())
	keys := []string{p.key}
	if info != nil && info.Bucket != "" {
		if k := bucketKey(info.Bucket, p.res); k != p.key {
			keys = append(keys, k)
		}
	}
	if p.shared {
		mode := "complete"
		if info == nil {
			mode = "cancel"
		}
		l.finishShared(p, mode, info)
	}
	l.n.signal(info == nil && p.token, keys...)
	if info != nil && info.Limited() {
		l.logger.LogAttrs(context.Background(), slog.LevelDebug, "rate limited",
			slog.String("route", p.route.Endpoint()), slog.String("bucket", info.Bucket),
			slog.String("scope", string(info.Scope)), slog.Duration("retry_after", info.RetryAfter))
	}
}

// finishShared runs the finish script for p. A failure makes the limiter
// fall back, and p is freed when Redis answers again.
func (l *RateLimiter) finishShared(p *permit, mode string, info *protocols.RateLimitInfo) {
	token := "0"
	if p.token {
		token = "1"
	}
	var i protocols.RateLimitInfo
	if info != nil {
		i = *info
	}
	hasLimit := "0"
	if i.HasLimit {
		hasLimit = "1"
	}
	channel := l.channel
	if l.ro.DisablePubSub {
		channel = ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.o.timeout())
	defer cancel()
	err := finishScript.Run(ctx, l.o.Client,
		[]string{l.routesKey, l.globalKey, l.heldKey, l.retKey},
		l.now(), l.prefix, p.id, p.key, p.hash, token, mode,
		p.route.Endpoint(), p.res,
		i.Status, i.Bucket, hasLimit, i.Limit, i.Remaining, ms(i.ResetAfter),
		string(i.Scope), ms(i.RetryAfter), ms(l.ro.CloudflarePause),
		ms(l.ro.IdleTimeout), ms(ttlSlack), channel, l.id).Err()
	if err != nil {
		if mode != "release" {
			l.orphan(orphan{id: p.id, key: p.key, token: p.token})
		}
		l.down(&RateLimiterError{Op: "finish", Err: err}, false)
	}
}
