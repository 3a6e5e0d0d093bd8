package reference

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cordkit/cordkit/protocols"
)

var (
	_ protocols.Gateway                                        = (*gateway)(nil)
	_ func(protocols.GatewayParams) (protocols.Gateway, error) = NewGateway
	_ func(protocols.GatewayParams) (protocols.Gateway, error) = GatewayOptions{}.New
)

// DefaultMaxAutoRescales bounds the automatic rescales one sharding-
// required close (4011) may cause; see [GatewayOptions.MaxAutoRescales].
const DefaultMaxAutoRescales = 4

// GatewayOptions holds the settings of the reference shard manager that
// [protocols.GatewayParams] does not carry. The zero value gives the
// defaults. Its New method has the shape of the TypeSheet's NewGateway
// field.
type GatewayOptions struct {
	// Shard configures the reference shards built when
	// GatewayParams.NewShard is nil.
	Shard ShardOptions
	// CloseCode is the code Close closes every shard with. Zero means
	// 1000: a deliberate shutdown that ends the sessions (the bot goes
	// offline) and deletes them from the session store. Another code,
	// such as [ReconnectCloseCode], keeps the sessions stored and
	// resumable, so that a restarted process resumes them.
	CloseCode protocols.CloseCode
	// OnShardExit is called, on the shard's goroutine, when a shard of the
	// running set stops by itself after Connect returned: a fatal close
	// code, or ShouldReconnect saying no. It is not called for a 4011 that
	// leads to an automatic rescale, nor for shards closed by Close or
	// Rescale. Nil logs the error.
	OnShardExit func(shardID int, err error)
	// MaxAutoRescales bounds how many times in a row a 4011 may rescale
	// automatically before the error is surfaced. Zero means
	// [DefaultMaxAutoRescales].
	MaxAutoRescales int
}

// NewGateway returns the reference [protocols.Gateway] with default
// [GatewayOptions].
func NewGateway(p protocols.GatewayParams) (protocols.Gateway, error) { return GatewayOptions{}.New(p) }

// New returns the reference [protocols.Gateway] for p with options o.
//
// p.ShardCount must not be negative, and p.ShardIDs, when set, need an
// explicit ShardCount and must be distinct IDs below it. Nil parts get
// defaults: NewShard builds reference shards with o.Shard, NewKeepAlive,
// NewSendLimiter and NewIdentifyLimiter the reference ones, and
// p.Shard.Sessions an in-memory store shared by the shards. Events and
// Raw dispatchers come from p.Shard and are shared by every shard.
//
// # Connect
//
// Connect asks GET /gateway/bot, through p.HTTPClient, for what is not
// configured: the URL (p.Shard.URL), the shard count (p.ShardCount) and
// max_concurrency (p.MaxConcurrency), plus the session start limit. It
// builds the identify limiter from them with p.NewIdentifyLimiter, unless
// p.Shard.IdentifyLimiter is set (a broker shared between processes). It
// then starts every shard of p.ShardIDs (all of 0..count-1 by default) at
// once, on goroutines the gateway owns, each with its own KeepAlive and
// SendLimiter and all sharing the identify limiter, dispatchers and
// session store. Shards of different max_concurrency buckets identify
// together and each bucket is spaced by the limiter; within a bucket the
// shards of a set identify in ID order, as Discord recommends ("shards are
// started bucket by bucket, in order"): a shard's first identify waits
// until the previous shard of its bucket has passed the limiter, resumed,
// or stopped. Shards with a stored session resume without waiting.
// Connect returns when every shard is ready. On a shard's fatal error, or
// when ctx ends, it closes the shards it started (with 1000) and returns
// the error; Connect may then be called again.
//
// The shards run until Close, independently of Connect's ctx (whose
// values they keep).
//
// # Sharding required
//
// When a shard is closed with 4011 and the shard count was not configured
// (p.ShardCount is 0), the gateway rescales: it asks /gateway/bot again,
// and takes its count if it is higher, or else twice the current one. It
// never reconnects the refused shard. During Connect the new set replaces
// the refused one before Connect returns; later, Rescale runs in the
// background. With a configured count the *[protocols.CloseError]
// (matching [protocols.ErrShardingRequired]) is returned by Connect, or
// given to OnShardExit. The shards of a refused set that were already
// ready are closed too, and the next set delivers their guilds again
// (READY and GUILD_CREATE, as after any new session); with the identify
// order above, a set is usually refused at its first shard, before the
// others start.
//
// # Rescale
//
// Rescale runs one at a time. It starts a new set of shards with new
// sessions, waits until all are ready, then closes the old set with 1000;
// the old shards are told not to reconnect as soon as the new set is
// ready. Until then both sets run, and their events reach the shared
// dispatchers: an event for a guild may arrive twice during the overlap
// (once from each set; Event.Shard does not tell the sets apart), and the
// new set sends a GUILD_CREATE for every guild. Handlers that cannot
// tolerate that should be idempotent, or drop what they already saw. If
// the new set fails, it is closed and the old one keeps running.
//
// The session store is keyed by (shard ID, count), so a set never loads
// the sessions of the set it replaces (it starts new ones), a set coming
// up does not write the keys of a running set of the same count until it
// takes over, and a replaced set does not delete its successor's keys.
//
// # Close
//
// Close closes every shard with o.CloseCode, waits for every goroutine the
// gateway started (so it must not be called from an event handler, whose
// return it would wait for), and is idempotent. Later calls of Connect and
// Rescale return errors wrapping [protocols.ErrClosed].
func (o GatewayOptions) New(p protocols.GatewayParams) (protocols.Gateway, error) {
	if p.ShardCount < 0 {
		return nil, fmt.Errorf("reference: gateway: shard count %d: %w", p.ShardCount, protocols.ErrInvalidShard)
	}
	if p.ShardIDs != nil {
		if err := checkShardIDs(p.ShardCount, p.ShardIDs); err != nil {
			return nil, fmt.Errorf("reference: gateway: %w", err)
		}
		p.ShardIDs = slices.Clone(p.ShardIDs)
	}
	if o.CloseCode == 0 {
		o.CloseCode = protocols.CloseNormal
	}
	if o.MaxAutoRescales <= 0 {
		o.MaxAutoRescales = DefaultMaxAutoRescales
	}
	if p.NewShard == nil {
		p.NewShard = o.Shard.New
	}
	if p.NewKeepAlive == nil {
		p.NewKeepAlive = NewKeepAlive
	}
	if p.NewSendLimiter == nil {
		p.NewSendLimiter = NewSendLimiter
	}
	if p.NewIdentifyLimiter == nil {
		p.NewIdentifyLimiter = NewIdentifyLimiter
	}
	if p.Shard.Sessions == nil {
		p.Shard.Sessions = NewSessionStore()
	}
	if p.Shard.Codec == nil {
		p.Shard.Codec = Codec{}
	}
	if p.Shard.Logger == nil {
		p.Shard.Logger = slog.New(slog.DiscardHandler)
	}
	return &gateway{p: p, o: o, log: p.Shard.Logger}, nil
}

// checkShardIDs checks a configured subset of shards.
func checkShardIDs(count int, ids []int) error {
	if count == 0 {
		return fmt.Errorf("%w: shard IDs need an explicit shard count", protocols.ErrInvalidShard)
	}
	if len(ids) == 0 {
		return fmt.Errorf("%w: shard IDs is empty", protocols.ErrInvalidShard)
	}
	seen := make(map[int]bool, len(ids))
	for _, id := range ids {
		if id < 0 || id >= count {
			return fmt.Errorf("%w: shard %d is outside 0-%d", protocols.ErrInvalidShard, id, count-1)
		}
		if seen[id] {
			return fmt.Errorf("%w: shard %d listed twice", protocols.ErrInvalidShard, id)
		}
		seen[id] = true
	}
	return nil
}

// gateway is the reference protocols.Gateway.
type gateway struct {
	p   protocols.GatewayParams
	o   GatewayOptions
	log *slog.Logger

	rescaleMu fifoMutex      // one Connect or Rescale at a time
	wg        sync.WaitGroup // every goroutine the gateway started

	mu      sync.Mutex
	closed  bool
	url     string
	count   int
	limiter protocols.IdentifyLimiter
	// maxConcurrency orders the first identifies of a set; 1 when unknown
	// (a configured limiter and no MaxConcurrency).
	maxConcurrency int
	active         *shardSet
	sets           map[*shardSet]struct{} // every set whose shards may still run
	rescales       int                    // automatic rescales in a row
	// closeHooks are called by Close, to end background rescales.
	closeHooks map[chan struct{}]func()
}

// shardSet is the shards of one Connect or Rescale.
type shardSet struct {
	count   int
	members []*member
	order   *orderedIdentify
	cancel  context.CancelFunc // ends the shards' Run context

	mu          sync.Mutex
	pending     int           // members not ready yet
	allReady    chan struct{} // closed when pending reaches 0
	failed      chan struct{} // closed at the first exit before allReady
	err         error         // that exit's error
	established bool          // the set became the active one; guarded by gateway.mu
}

// member is one shard of a set.
type member struct {
	id       int
	sh       protocols.Shard
	retired  atomic.Bool // closing on purpose: no reconnect, no report
	replaced atomic.Bool // retired by a rescale: its sessions are no longer the store's
	ready    bool        // guarded by shardSet.mu
	done     chan struct{}
	exited   bool  // guarded by gateway.mu
	err      error // Run's result, guarded by gateway.mu
}

func (g *gateway) Connect(ctx context.Context) error {
	if err := g.rescaleMu.lock(ctx); err != nil {
		return fmt.Errorf("reference: gateway connect: %w", err)
	}
	defer g.rescaleMu.unlock()
	g.mu.Lock()
	closed, active := g.closed, g.active
	g.mu.Unlock()
	switch {
	case closed:
		return fmt.Errorf("reference: gateway connect: %w", protocols.ErrClosed)
	case active != nil:
		return errors.New("reference: gateway connect: already connected")
	}

	count, gwURL, maxConcurrency := g.p.ShardCount, g.p.Shard.URL, g.p.MaxConcurrency
	var startLimit protocols.SessionStartLimit
	if count == 0 || gwURL == "" || (maxConcurrency <= 0 && g.p.Shard.IdentifyLimiter == nil) {
		bot, err := g.gatewayBot(ctx)
		if err != nil {
			return fmt.Errorf("reference: gateway connect: %w", err)
		}
		if count == 0 {
			count = max(bot.Shards, 1)
		}
		if gwURL == "" {
			gwURL = bot.URL
		}
		if maxConcurrency <= 0 {
			maxConcurrency = bot.SessionStartLimit.MaxConcurrency
		}
		startLimit = bot.SessionStartLimit
	}
	limiter := g.p.Shard.IdentifyLimiter
	g.mu.Lock()
	if limiter == nil && g.limiter != nil && g.maxConcurrency == max(maxConcurrency, 1) {
		// A Connect called again keeps the limiter: it remembers when each
		// bucket last identified, which a new one would not.
		limiter = g.limiter
	}
	g.mu.Unlock()
	if limiter == nil {
		l, err := g.p.NewIdentifyLimiter(protocols.IdentifyLimiterParams{MaxConcurrency: max(maxConcurrency, 1), SessionStartLimit: startLimit})
		if err != nil {
			return fmt.Errorf("reference: gateway connect: identify limiter: %w", err)
		}
		limiter = l
	}
	g.mu.Lock()
	g.url, g.limiter, g.maxConcurrency = gwURL, limiter, max(maxConcurrency, 1)
	g.mu.Unlock()
	g.log.LogAttrs(ctx, slog.LevelInfo, "gateway: connecting", slog.Int("count", count), slog.Int("max_concurrency", maxConcurrency))

	ids := g.p.ShardIDs
	if ids == nil {
		ids = allShards(count)
	}
	set, err := g.bringUp(ctx, count, ids, true)
	for rescales := 0; err != nil && g.autoRescalable(err) && rescales < g.o.MaxAutoRescales; rescales++ {
		count = g.nextCount(ctx, count)
		g.log.LogAttrs(ctx, slog.LevelWarn, "gateway: sharding required: rescaling", slog.Int("count", count))
		set, err = g.bringUp(ctx, count, allShards(count), false)
	}
	if err != nil {
		return fmt.Errorf("reference: gateway connect: %w", err)
	}
	g.activate(ctx, set)
	return nil
}

func (g *gateway) Rescale(ctx context.Context, count int, ids []int) error {
	if count < 1 {
		return fmt.Errorf("reference: gateway rescale: shard count %d: %w", count, protocols.ErrInvalidShard)
	}
	if ids != nil {
		if err := checkShardIDs(count, ids); err != nil {
			return fmt.Errorf("reference: gateway rescale: %w", err)
		}
		ids = slices.Clone(ids)
	} else {
		ids = allShards(count)
	}
	if err := g.rescaleMu.lock(ctx); err != nil {
		return fmt.Errorf("reference: gateway rescale: %w", err)
	}
	defer g.rescaleMu.unlock()
	return g.rescaleLocked(ctx, count, ids)
}

// rescaleLocked replaces the running set by a new one; rescaleMu is held.
func (g *gateway) rescaleLocked(ctx context.Context, count int, ids []int) error {
	g.mu.Lock()
	closed, limiter := g.closed, g.limiter
	g.mu.Unlock()
	switch {
	case closed:
		return fmt.Errorf("reference: gateway rescale: %w", protocols.ErrClosed)
	case limiter == nil:
		return errors.New("reference: gateway rescale: not connected")
	}
	g.log.LogAttrs(ctx, slog.LevelInfo, "gateway: rescaling", slog.Int("count", count))
	set, err := g.bringUp(ctx, count, ids, false)
	if err != nil {
		return fmt.Errorf("reference: gateway rescale: %w", err)
	}
	g.activate(ctx, set)
	return nil
}

// activate makes set the running one and retires the previous one.
func (g *gateway) activate(ctx context.Context, set *shardSet) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	old := g.active
	g.active, g.count = set, set.count
	set.established = true
	var exited []*member
	for _, m := range set.members {
		if m.exited && m.err != nil {
			exited = append(exited, m)
		}
	}
	g.mu.Unlock()
	if old != nil {
		for _, m := range old.members {
			m.replaced.Store(true)
		}
		if old.count == set.count {
			// The new set held back its saves while the old one ran.
			for _, m := range set.members {
				if sess := m.sh.Status().Session; sess.ID != "" {
					if err := g.p.Shard.Sessions.Save(ctx, sess); err != nil {
						g.log.LogAttrs(ctx, slog.LevelWarn, "gateway: cannot save the session",
							slog.Int(logKeyShard, m.id), slog.String("error", err.Error()))
					}
				}
			}
		}
		g.retire(old, protocols.CloseNormal)
	}
	g.log.LogAttrs(ctx, slog.LevelInfo, "gateway: all shards ready", slog.Int("count", set.count), slog.Int("shards", len(set.members)))
	for _, m := range exited {
		g.report(set, m)
	}
}

// retire closes every shard of set with code and waits for them.
func (g *gateway) retire(set *shardSet, code protocols.CloseCode) {
	for _, m := range set.members {
		m.retired.Store(true)
	}
	var wg sync.WaitGroup
	for _, m := range set.members {
		wg.Go(func() { _ = m.sh.Close(code) })
	}
	wg.Wait()
	set.cancel()
	for _, m := range set.members {
		<-m.done
	}
	g.mu.Lock()
	delete(g.sets, set)
	g.mu.Unlock()
}

// bringUp starts count shards with ids and waits until all are ready. On
// failure it closes them and returns the first error. loadSessions says
// whether shards may resume stored sessions (a fresh set must not resume
// the sessions of the set it replaces).
func (g *gateway) bringUp(ctx context.Context, count int, ids []int, loadSessions bool) (*shardSet, error) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil, protocols.ErrClosed
	}
	gwURL, limiter, maxConcurrency := g.url, g.limiter, g.maxConcurrency
	g.mu.Unlock()

	set := &shardSet{
		count: count, pending: len(ids), allReady: make(chan struct{}), failed: make(chan struct{}),
		order: newOrderedIdentify(limiter, ids, maxConcurrency),
	}
	for _, id := range ids {
		m := &member{id: id, done: make(chan struct{})}
		p := g.p.Shard
		p.ID, p.Count, p.URL = id, count, gwURL
		p.KeepAlive = g.p.NewKeepAlive()
		p.SendLimiter = g.p.NewSendLimiter()
		p.IdentifyLimiter = set.order
		p.Sessions = &memberSessions{SessionStore: p.Sessions, g: g, set: set, m: m, fresh: !loadSessions}
		userReconnect := g.p.Shard.ShouldReconnect
		p.ShouldReconnect = func(shardID int, err error) bool {
			if m.retired.Load() {
				return false
			}
			return userReconnect == nil || userReconnect(shardID, err)
		}
		sh, err := g.p.NewShard(p)
		if err != nil {
			discard(set)
			return nil, fmt.Errorf("shard %d: %w", id, err)
		}
		m.sh = sh
		set.members = append(set.members, m)
	}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	set.cancel = cancel
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		cancel()
		discard(set)
		return nil, protocols.ErrClosed
	}
	if g.sets == nil {
		g.sets = make(map[*shardSet]struct{})
	}
	g.sets[set] = struct{}{}
	for _, m := range set.members {
		g.wg.Add(1)
		go g.runShard(runCtx, set, m)
	}
	g.mu.Unlock()

	if len(set.members) == 0 {
		return set, nil
	}
	var err error
	select {
	case <-set.allReady:
		return set, nil
	case <-set.failed:
		set.mu.Lock()
		err = set.err
		set.mu.Unlock()
	case <-ctx.Done():
		err = ctx.Err()
	}
	// For Connect (the set that may load sessions), not 1000: the shards
	// that identified keep their sessions, saved, so a Connect called
	// again resumes them instead of spending session starts (a retry loop
	// around Connect must not burn the daily budget). A failed Rescale
	// ends its fresh sessions: nothing will resume them.
	code := protocols.CloseNormal
	if loadSessions {
		code = ReconnectCloseCode
	}
	g.retire(set, code)
	return nil, err
}

// discard closes the shards of a set that never ran, with a code that
// leaves the session store alone.
func discard(set *shardSet) {
	for _, m := range set.members {
		_ = m.sh.Close(ReconnectCloseCode)
	}
}

// runShard runs one shard on a goroutine of the gateway.
func (g *gateway) runShard(ctx context.Context, set *shardSet, m *member) {
	defer g.wg.Done()
	err := m.sh.Run(ctx, func() { set.ready(m) })
	if err == nil && !m.retired.Load() {
		err = fmt.Errorf("reference: shard %d stopped: %w", m.id, protocols.ErrClosed)
	}
	set.order.pass(m.id)
	set.exit(err)

	g.mu.Lock()
	m.exited, m.err = true, err
	report := set.established && !m.retired.Load()
	g.mu.Unlock()
	close(m.done)
	if report {
		g.report(set, m)
	}
}

// ready records that m became ready.
func (s *shardSet) ready(m *member) {
	s.order.pass(m.id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.ready {
		return
	}
	m.ready = true
	s.pending--
	if s.pending == 0 {
		close(s.allReady)
	}
}

// exit records a member's exit while the set is coming up.
func (s *shardSet) exit(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil || s.pending == 0 {
		return
	}
	if err == nil {
		err = protocols.ErrClosed
	}
	s.err = err
	close(s.failed)
}

// report handles a shard of the running set that stopped by itself.
func (g *gateway) report(set *shardSet, m *member) {
	if m.retired.Load() {
		return
	}
	if g.autoRescalable(m.err) {
		g.mu.Lock()
		if g.closed || g.active != set {
			g.mu.Unlock()
			return
		}
		g.wg.Add(1)
		g.mu.Unlock()
		go g.autoRescale(set)
		return
	}
	if g.o.OnShardExit != nil {
		g.o.OnShardExit(m.id, m.err)
		return
	}
	g.log.LogAttrs(context.Background(), slog.LevelError, "gateway: shard stopped",
		slog.Int(logKeyShard, m.id), slog.String("error", m.err.Error()))
}

// autoRescale replaces set after one of its shards got 4011.
func (g *gateway) autoRescale(set *shardSet) {
	defer g.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := g.onClose(cancel)
	defer stop()
	if g.rescaleMu.lock(ctx) != nil {
		return
	}
	defer g.rescaleMu.unlock()
	g.mu.Lock()
	stale := g.closed || g.active != set
	g.rescales++
	tooMany := g.rescales > g.o.MaxAutoRescales
	g.mu.Unlock()
	if stale {
		return
	}
	err := error(&protocols.CloseError{Code: protocols.CloseShardingRequired})
	if !tooMany {
		count := g.nextCount(ctx, set.count)
		g.log.LogAttrs(ctx, slog.LevelWarn, "gateway: sharding required: rescaling", slog.Int("count", count))
		if err = g.rescaleLocked(ctx, count, allShards(count)); err == nil {
			g.mu.Lock()
			g.rescales = 0
			g.mu.Unlock()
			return
		}
	}
	if ctx.Err() != nil {
		return
	}
	if g.o.OnShardExit != nil {
		g.o.OnShardExit(-1, err)
		return
	}
	g.log.LogAttrs(ctx, slog.LevelError, "gateway: automatic rescale failed", slog.String("error", err.Error()))
}

// onClose calls f when the gateway closes; stop undoes it.
func (g *gateway) onClose(f func()) (stop func()) {
	done := make(chan struct{})
	g.mu.Lock()
	closed := g.closed
	if !closed {
		if g.closeHooks == nil {
			g.closeHooks = make(map[chan struct{}]func())
		}
		g.closeHooks[done] = f
	}
	g.mu.Unlock()
	if closed {
		f()
		return func() {}
	}
	return func() {
		g.mu.Lock()
		delete(g.closeHooks, done)
		g.mu.Unlock()
	}
}

// autoRescalable reports whether err is a 4011 the gateway answers by
// rescaling: the shard count was not configured.
func (g *gateway) autoRescalable(err error) bool {
	return g.p.ShardCount == 0 && errors.Is(err, protocols.ErrShardingRequired)
}

// nextCount is the shard count after a 4011 with count shards:
// /gateway/bot's recommendation when it is higher, else twice count.
func (g *gateway) nextCount(ctx context.Context, count int) int {
	bot, err := g.gatewayBot(ctx)
	if err == nil && bot.Shards > count {
		return bot.Shards
	}
	return count * 2
}

// gatewayBot asks GET /gateway/bot.
func (g *gateway) gatewayBot(ctx context.Context) (protocols.GatewayBot, error) {
	if g.p.HTTPClient == nil {
		return protocols.GatewayBot{}, errors.New("GET /gateway/bot: no HTTPClient, and the URL, shard count or max concurrency is not configured")
	}
	r, err := protocols.NewRoute("GET", "/gateway/bot")
	if err != nil {
		return protocols.GatewayBot{}, err
	}
	resp, err := g.p.HTTPClient.Do(ctx, &protocols.Request{Route: r})
	if err != nil {
		return protocols.GatewayBot{}, fmt.Errorf("GET /gateway/bot: %w", err)
	}
	var bot protocols.GatewayBot
	if err := g.p.Shard.Codec.Unmarshal(resp.Body, &bot); err != nil {
		return protocols.GatewayBot{}, fmt.Errorf("GET /gateway/bot: %w", err)
	}
	return bot, nil
}

func (g *gateway) Shard(id int) protocols.Shard {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.active == nil {
		return nil
	}
	for _, m := range g.active.members {
		if m.id == id {
			return m.sh
		}
	}
	return nil
}

func (g *gateway) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	sets := make([]*shardSet, 0, len(g.sets))
	for set := range g.sets {
		sets = append(sets, set)
	}
	hooks := make([]func(), 0, len(g.closeHooks))
	for _, f := range g.closeHooks {
		hooks = append(hooks, f)
	}
	g.mu.Unlock()
	for _, f := range hooks {
		f()
	}
	var wg sync.WaitGroup
	for _, set := range sets {
		wg.Go(func() { g.retire(set, g.o.CloseCode) })
	}
	wg.Wait()
	g.wg.Wait()
	return nil
}

// allShards returns 0..count-1.
func allShards(count int) []int {
	ids := make([]int, count)
	for i := range ids {
		ids[i] = i
	}
	return ids
}

// memberSessions is the session store as one shard of a set sees it. The
// store is keyed by (ID, count), so two sets of one count would share
// keys: a shard of a new set (fresh) finds no session to load, so it
// identifies instead of resuming the session of the shard it replaces; a
// set still coming up does not write the keys of a running set of the
// same count (it saves its sessions when it takes over); and a shard
// replaced by a rescale no longer writes keys its successor uses.
type memberSessions struct {
	protocols.SessionStore
	g     *gateway
	set   *shardSet
	m     *member
	fresh bool
}

func (s *memberSessions) Load(ctx context.Context, id, count int) (protocols.Session, error) {
	if s.fresh {
		return protocols.Session{}, fmt.Errorf("reference: shard %d/%d: new session: %w", id, count, protocols.ErrNoSession)
	}
	return s.SessionStore.Load(ctx, id, count)
}

func (s *memberSessions) Save(ctx context.Context, sess protocols.Session) error {
	if s.m.replaced.Load() || !s.mayWrite(sess.ShardCount) {
		return nil
	}
	return s.SessionStore.Save(ctx, sess)
}

func (s *memberSessions) Delete(ctx context.Context, id, count int) error {
	if !s.mayWrite(count) {
		return nil
	}
	return s.SessionStore.Delete(ctx, id, count)
}

// mayWrite reports whether the shard may write keys of count.
func (s *memberSessions) mayWrite(count int) bool {
	g := s.g
	g.mu.Lock()
	defer g.mu.Unlock()
	running := g.active != nil && g.active != s.set && g.count == count
	switch {
	case s.m.replaced.Load():
		return g.count != count
	case !s.set.established:
		return !running
	}
	return true
}
