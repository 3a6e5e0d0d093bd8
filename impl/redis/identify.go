package redis

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cordkit/cordkit/internal/backoff"
	"github.com/cordkit/cordkit/internal/wait"
	"github.com/cordkit/cordkit/protocols"
)

var (
	_ protocols.IdentifyLimiter                                                = (*identifyLimiter)(nil)
	_ func(protocols.IdentifyLimiterParams) (protocols.IdentifyLimiter, error) = Options{}.NewIdentifyLimiter
)

const (
	// IdentifyInterval is how far apart identifies in one max_concurrency
	// bucket must be (discord-protocol.md §C.14: "Each bucket allows one
	// IDENTIFY per 5 s").
	IdentifyInterval = 5 * time.Second
	// SessionStartWindow is the period of the daily session-start budget:
	// after the reset that /gateway/bot announced, the limiter assumes a
	// new budget of SessionStartLimit.Total every SessionStartWindow.
	SessionStartWindow = 24 * time.Hour
	// TicketLease is how long a waiter's place in a bucket's queue lasts
	// without news from its process. Waiters renew it at least every
	// TicketLease/3; the ticket of a process that crashed, or that cannot
	// reach Redis, expires after it, so a queue never wedges.
	TicketLease = 15 * time.Second
)

// Internal timings of the identify limiter.
const (
	renewEvery   = TicketLease / 3 // a waiter asks Redis again at least this often
	ticketTTL    = time.Minute     // a ticket's state outlives its lease, to catch late commands
	bucketTTL    = 4 * TicketLease // queue, leases and spacing keys; renewed by every call
	epochTTL     = 2 * SessionStartWindow
	retryBackoff = 50 * time.Millisecond // first delay after a failed call
	retryMax     = 2 * time.Second       // longest delay between two calls while Redis fails
	stallPoll    = 50 * time.Millisecond // shortest sleep of a waiter that has not been granted
	minMargin    = 10 * time.Millisecond // the smallest margin added to IdentifyInterval
)

// UnavailableError is returned when a caller's context ended while Redis
// could not be reached or did not answer within [Options.Timeout]. The
// limiter never guesses while Redis is away: it keeps retrying, with
// bounded backoff, until Redis answers or the context ends.
//
// errors.Is matches both the context's error and the last Redis failure.
type UnavailableError struct {
	// Op is what was being done, such as "identify shard 3".
	Op string
	// Err is the context's error.
	Err error
	// Cause is the last error from Redis.
	Cause error
}

// Error describes the failure.
func (e *UnavailableError) Error() string {
	return "redis: " + e.Op + ": " + e.Err.Error() + " while Redis was unavailable: " + e.Cause.Error()
}

// Unwrap returns the context's error and the Redis cause.
func (e *UnavailableError) Unwrap() []error { return []error{e.Err, e.Cause} }

// NewIdentifyLimiter returns a [protocols.IdentifyLimiter] shared through
// Redis by every process that uses the same [Options.Namespace]. It fits
// TypeSheet.NewIdentifyLimiter.
//
// # Buckets and fairness
//
// Shards identify in p.MaxConcurrency buckets keyed by shard_id %
// max_concurrency (zero or less means 1); in each, grants are at least
// [IdentifyInterval] plus a margin apart, across all processes. The margin
// covers the reply's trip: a grant whose reply took longer than the margin
// it was spaced by is undone and asked for again with a larger margin
// (10ms at first, adapting to the replies' times, at most
// [Options.Timeout]), so the identifies that follow Wait's returns are at
// least IdentifyInterval apart however slow Redis is.
// Each bucket keeps a queue of tickets in Redis, numbered on arrival, and
// grants only its head: waiters are served first come, first served,
// whichever process they are in. A waiter whose context ends leaves the
// queue at once; a ticket not renewed for [TicketLease] (its process
// crashed) is dropped by the next caller, so the queue moves on.
//
// Waiting sleeps on a timer until the time the script computed (the
// bucket's next slot, or the slot before the waiter's own turn, so that it
// takes over at once from a waiter ahead that gave up), waking at least
// every TicketLease/3 to renew its ticket. It never holds a connection
// while asleep and never subscribes to anything, so the limiter starts no
// goroutine and works inside testing/synctest bubbles.
//
// # Daily budget
//
// When p.SessionStartLimit.Total is positive, the first process to ask
// seeds the shared budget in Redis: Remaining identifies until ResetAfter
// (counted from this call), then Total per [SessionStartWindow], the
// window starting at the first identify after a reset (the latest the real
// reset can be, so the guess never overspends). Every grant spends one,
// atomically. When it is spent, Wait waits for the reset, or returns an
// error wrapping [protocols.ErrSessionStartLimit] at once when ctx's
// deadline comes before the reset: Discord ends every session and resets
// the token of a bot that goes over. A zero Total means unknown: this
// process does not seed the budget, but spends one seeded by another.
//
// # Failures
//
// Every call to Redis is bounded by [Options.Timeout]. When Redis fails
// or is slow, Wait retries with bounded backoff and never grants on its
// own; when ctx ends first it returns an [*UnavailableError] wrapping
// ctx.Err() and the Redis error. Scripts are idempotent per ticket and
// attempt, and a grant whose reply was lost is undone on the next attempt,
// so lost replies cost neither a slot nor the budget.
//
// A Redis that comes back empty (restarted without persistence) has
// forgotten the grants made before: the first script to see its epoch key
// missing quarantines every bucket for IdentifyInterval plus the margin before
// granting again, when the calling process knew the previous epoch or
// Redis has been up for less than that. A brand-new namespace on a Redis
// that has been up for a while grants at once. The budget is then seeded
// again from the last value this process saw, or from p. Keys that vanish
// for other reasons (FLUSHALL, eviction: run Redis with
// maxmemory-policy noeviction) are only partly covered.
//
// # Clock
//
// Scripts take the time from [Options.Now] when set, else from Redis's
// TIME, so processes need not agree on their clocks.
//
// Wait returns an error wrapping [protocols.ErrInvalidShard] for a
// negative shard ID, and one wrapping ctx.Err() when ctx ends first. The
// keys are "cordkit:{ns}:identify:...", each with a TTL.
func (o Options) NewIdentifyLimiter(p protocols.IdentifyLimiterParams) (protocols.IdentifyLimiter, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	s := p.SessionStartLimit
	if s.Total < 0 || s.Remaining < 0 || s.ResetAfter < 0 {
		return nil, fmt.Errorf("redis: identify limiter: negative session start limit %+v", s)
	}
	return &identifyLimiter{
		o:         o,
		log:       o.logger(),
		buckets:   max(p.MaxConcurrency, 1),
		total:     s.Total,
		remaining: s.Remaining,
		resetAt:   time.Now().Add(time.Duration(s.ResetAfter) * time.Millisecond),
		epochKey:  o.key("identify", "epoch"),
		budgetKey: o.key("identify", "budget"),
		seqKey:    o.key("identify", "seq"),
		margin:    min(minMargin, o.timeout()),
	}, nil
}

type identifyLimiter struct {
	o       Options
	log     *slog.Logger
	buckets int

	epochKey, budgetKey, seqKey string

	mu        sync.Mutex
	epoch     string    // the last epoch seen; "" before the first answer
	total     int       // seed of the budget; 0: unknown
	remaining int       // seed: from p, then the last value seen
	resetAt   time.Time // seed: local time of the budget's reset
	margin    time.Duration
}

// pollReply is the answer of identifyPoll.
type pollReply struct {
	status      int64 // 1 granted, 0 wait, 2 the ticket is gone
	delay       time.Duration
	budgetDelay time.Duration // < 0: the budget is not what we wait for
	quarantined time.Duration // > 0: this call found Redis empty
}

func (l *identifyLimiter) Wait(ctx context.Context, shardID int) error {
	if shardID < 0 {
		return fmt.Errorf("redis: identify: shard %d: %w", shardID, protocols.ErrInvalidShard)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redis: identify: shard %d: %w", shardID, err)
	}
	b := strconv.Itoa(shardID % l.buckets)
	keys := []string{
		l.epochKey, l.budgetKey, l.seqKey,
		l.o.key("identify", "bucket", b, "queue"),
		l.o.key("identify", "bucket", b, "leases"),
		l.o.key("identify", "bucket", b, "next"),
		"", // the ticket, set below
	}
	ticket := rand.Text()
	keys[6] = l.o.key("identify", "ticket", ticket)
	var (
		attempt  int64
		failures int
		cause    error // the last Redis failure, nil after a success
		polled   bool  // the ticket may exist in Redis
	)
	fail := func(err error) error {
		if cause != nil {
			// Redis is failing: the ticket's lease will expire, and
			// trying to leave would keep the caller past ctx's end.
			return &UnavailableError{Op: fmt.Sprintf("identify shard %d", shardID), Err: err, Cause: cause}
		}
		if polled {
			l.leave(ctx, keys, ticket)
		}
		return fmt.Errorf("redis: identify: shard %d: %w", shardID, err)
	}
	for {
		attempt++
		polled = true
		margin := l.currentMargin()
		start := time.Now()
		r, err := l.poll(ctx, keys, ticket, attempt, margin)
		took := time.Since(start)
		if err != nil {
			if ctx.Err() != nil {
				return fail(ctx.Err())
			}
			cause = err
			d := backoff.Backoff{Base: retryBackoff, Max: retryMax}.Delay(failures)
			failures++
			l.log.LogAttrs(ctx, slog.LevelWarn, "redis: identify: Redis failed; retrying",
				slog.Int("shard", shardID), slog.Duration("retry_after", d), slog.String("error", err.Error()))
			if err := wait.Sleep(ctx, d, nil); err != nil {
				return fail(err)
			}
			continue
		}
		failures, cause = 0, nil
		if r.quarantined > 0 {
			l.log.LogAttrs(ctx, slog.LevelWarn, "redis: identify: Redis lost its state; no identify until the quarantine ends",
				slog.Int("shard", shardID), slog.Duration("retry_after", r.quarantined))
		}
		switch r.status {
		case 1:
			if l.adjustMargin(took, margin) {
				return nil
			}
			// The reply took longer than the margin the grant was
			// spaced by: the next attempt undoes it and asks again,
			// with a larger margin.
			continue
		case 2: // gone: start over with a new ticket
			ticket = rand.Text()
			keys[6] = l.o.key("identify", "ticket", ticket)
			attempt = 0
			continue
		}
		if r.budgetDelay >= 0 {
			if deadline, ok := ctx.Deadline(); ok && deadline.Before(time.Now().Add(r.budgetDelay)) {
				l.leave(ctx, keys, ticket)
				return fmt.Errorf("redis: identify: shard %d: %w: the budget resets in %v, after the context's deadline",
					shardID, protocols.ErrSessionStartLimit, r.budgetDelay.Round(time.Millisecond))
			}
		}
		if err := wait.Sleep(ctx, min(r.delay, renewEvery), nil); err != nil {
			if r.budgetDelay >= 0 {
				err = fmt.Errorf("%w: %w", protocols.ErrSessionStartLimit, err)
			}
			return fail(err)
		}
	}
}

// poll runs identifyPoll once, bounded by the timeout.
func (l *identifyLimiter) poll(ctx context.Context, keys []string, ticket string, attempt int64, margin time.Duration) (pollReply, error) {
	l.mu.Lock()
	known := l.epoch
	seedRemaining, seedReset := l.remaining, max(time.Until(l.resetAt), 0)
	l.mu.Unlock()
	slot := IdentifyInterval + margin

	cctx, cancel := context.WithTimeout(ctx, l.o.timeout())
	defer cancel()
	vals, err := identifyPoll.Run(cctx, l.o.Client, keys,
		l.now(), ticket, attempt, known, rand.Text(),
		slot.Milliseconds(), TicketLease.Milliseconds(),
		l.total, seedRemaining, seedReset.Milliseconds(), SessionStartWindow.Milliseconds(),
		epochTTL.Milliseconds(), bucketTTL.Milliseconds(), ticketTTL.Milliseconds(), stallPoll.Milliseconds(),
	).Slice()
	if err != nil {
		if ctx.Err() == nil && cctx.Err() != nil {
			// Not the caller's deadline: do not let errors.Is take it
			// for one.
			err = fmt.Errorf("no answer within %v (%v)", l.o.timeout(), err)
		}
		return pollReply{}, err
	}
	var n [6]int64
	epoch, ok := "", len(vals) == 7
	for i := 0; ok && i < 6; i++ {
		n[i], ok = vals[i].(int64)
	}
	if ok {
		epoch, ok = vals[6].(string)
	}
	if !ok {
		return pollReply{}, fmt.Errorf("redis: identify: unexpected script reply %v", vals)
	}
	ms := func(v int64) time.Duration { return time.Duration(v) * time.Millisecond }
	l.mu.Lock()
	l.epoch = epoch
	if n[4] >= 0 { // the budget as Redis has it: the seed if Redis loses it
		l.remaining, l.resetAt = int(n[4]), time.Now().Add(ms(n[5]))
	}
	l.mu.Unlock()
	return pollReply{status: n[0], delay: ms(n[1]), budgetDelay: ms(n[2]), quarantined: ms(n[3])}, nil
}

// currentMargin returns the margin by which the next grant is spaced
// beyond IdentifyInterval.
func (l *identifyLimiter) currentMargin() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.margin
}

// adjustMargin learns from a granting call that took took and was spaced
// by margin. It reports whether the grant may be used: the identify that
// follows comes at most took after the grant, so it must not exceed the
// margin. Slow replies double the margin, up to the timeout (which no
// successful call exceeds); fast ones shrink it slowly.
func (l *identifyLimiter) adjustMargin(took, margin time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if took > margin && margin < l.o.timeout() {
		l.margin = min(max(2*took, 2*l.margin), l.o.timeout())
		return false
	}
	if took < l.margin/4 {
		l.margin = max(l.margin-l.margin/8, min(minMargin, l.o.timeout()))
	}
	return true
}

// now returns ARGV "now": Options.Now in milliseconds, or "" for Redis's
// TIME.
func (l *identifyLimiter) now() string {
	if l.o.Now == nil {
		return ""
	}
	return strconv.FormatInt(l.o.Now().UnixMilli(), 10)
}

// leave takes the ticket out of its queue and undoes a grant nobody
// received. It is best effort: when Redis cannot be reached, the ticket's
// lease expires instead.
func (l *identifyLimiter) leave(ctx context.Context, keys []string, ticket string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.o.timeout())
	defer cancel()
	err := identifyLeave.Run(cctx, l.o.Client, keys, ticket, ticketTTL.Milliseconds(), bucketTTL.Milliseconds()).Err()
	if err != nil && !errors.Is(err, goredis.Nil) {
		l.log.LogAttrs(ctx, slog.LevelWarn, "redis: identify: cannot leave the queue; the ticket will expire",
			slog.Duration("retry_after", TicketLease), slog.String("error", err.Error()))
	}
}

// The identify scripts share these functions. Times are milliseconds in
// the script's clock: ARGV "now", or Redis's TIME when it is "".
const identifyLuaCommon = `
local function clock(a)
  if a ~= '' then return tonumber(a) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function s(x) return string.format('%d', x) end

-- undo reverts a grant its waiter never received. g is the ticket's
-- {ga, gseq, gprev, gnext, greset}: the bucket's spacing goes back to what
-- it was unless another grant followed, and the budget gets its identify
-- back unless it was reset since.
local function undo(tkey, nextKey, budgetKey, g, ttl)
  redis.call('HDEL', tkey, 'ga', 'gseq', 'gprev', 'gnext', 'greset')
  if redis.call('GET', nextKey) == g[4] then
    if g[3] == '0' then
      redis.call('DEL', nextKey)
    else
      redis.call('SET', nextKey, g[3], 'PX', ttl)
    end
  end
  if g[5] ~= '' then
    local b = redis.call('HMGET', budgetKey, 'total', 'rem', 'reset')
    if b[3] == g[5] and tonumber(b[2]) < tonumber(b[1]) then
      redis.call('HINCRBY', budgetKey, 'rem', 1)
    end
  end
end
`

// identifyPoll enqueues a ticket (or renews it) and grants it when it is
// at the head of its bucket's queue, the bucket's spacing has passed, the
// quarantine is over and the budget allows.
//
// KEYS: 1 epoch, 2 budget, 3 seq, 4 queue, 5 leases, 6 next, 7 ticket.
// ARGV: 1 now, 2 ticket, 3 attempt, 4 known epoch, 5 new epoch id, 6 slot,
// 7 lease, 8 seed total, 9 seed remaining, 10 seed reset delay, 11 budget
// window, 12 epoch TTL, 13 bucket TTL, 14 ticket TTL, 15 stall poll.
//
// Returns {status, delay, budget delay, quarantine, remaining, reset
// delay, epoch}: status 1 granted, 0 wait delay, 2 the ticket is gone.
var identifyPoll = goredis.NewScript(identifyLuaCommon + `
local now = clock(ARGV[1])
local ticket, attempt = ARGV[2], tonumber(ARGV[3])
local slot, lease, window = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[11])
local bucketTTL, stall = tonumber(ARGV[13]), tonumber(ARGV[15])

-- The epoch: missing when Redis lost its state, or on first use.
local ep = redis.call('HGET', KEYS[1], 'id')
local q, quarantined = 0, 0
if not ep then
  ep = ARGV[5]
  if ARGV[4] ~= '' then
    -- This process saw an earlier epoch: grants were forgotten.
    q = now + slot
  else
    -- Unknown: if Redis started less than a slot ago, grants made before
    -- may be forgotten. uptime_in_seconds may be a second too high.
    local up = tonumber(string.match(redis.call('INFO', 'server'), 'uptime_in_seconds:(%d+)') or '0')
    local young = slot - (up - 1) * 1000
    if young > 0 then q = now + math.min(young, slot) end
  end
  if q > now then quarantined = q - now end
  redis.call('HSET', KEYS[1], 'id', ep, 'q', s(q), 'c', s(now))
else
  q = tonumber(redis.call('HGET', KEYS[1], 'q')) or 0
  if ARGV[4] ~= '' and ARGV[4] ~= ep then
    -- Another process recreated the epoch: hold until a slot after that.
    local c = tonumber(redis.call('HGET', KEYS[1], 'c')) or 0
    if c + slot > q then
      q = c + slot
      redis.call('HSET', KEYS[1], 'q', s(q))
    end
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[12])

-- The ticket: a command that arrives after a later attempt or after the
-- waiter left changes nothing; a grant of an earlier attempt was never
-- received, so it is undone and the ticket keeps its place.
local st = redis.call('HMGET', KEYS[7], 'a', 'left', 'ga', 'gseq', 'gprev', 'gnext', 'greset')
if st[2] or (st[1] and tonumber(st[1]) > attempt) then
  return {2, 0, -1, quarantined, -1, 0, ep}
end
if st[3] and tonumber(st[3]) == attempt then
  return {1, 0, -1, quarantined, -1, 0, ep}
end
redis.call('HSET', KEYS[7], 'a', attempt)
redis.call('PEXPIRE', KEYS[7], ARGV[14])
local reseq = false
if st[3] then
  undo(KEYS[7], KEYS[6], KEYS[2], {st[3], st[4], st[5], st[6], st[7]}, bucketTTL)
  reseq = st[4]
end

-- Tickets whose lease ran out (their process died) leave the queue.
local expired = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now)
for i = 1, #expired do
  redis.call('ZREM', KEYS[4], expired[i])
  redis.call('ZREM', KEYS[5], expired[i])
end

-- The daily budget, seeded by the first process that knows it.
local b = redis.call('HMGET', KEYS[2], 'total', 'rem', 'reset')
local total, rem, reset = tonumber(b[1]), tonumber(b[2]), tonumber(b[3])
if not total and tonumber(ARGV[8]) > 0 then
  total, rem, reset = tonumber(ARGV[8]), tonumber(ARGV[9]), now + tonumber(ARGV[10])
  redis.call('HSET', KEYS[2], 'total', s(total), 'rem', s(rem), 'reset', s(reset))
  redis.call('PEXPIRE', KEYS[2], reset - now + window)
end
local effRem, budgetAt = -1, 0
if total then
  effRem = rem
  if now >= reset then effRem = total end
  if effRem <= 0 then budgetAt = reset end
end
local function reply(status, delay, bdelay)
  local rd = 0
  if total then rd = math.max(reset - now, 0) end
  return {status, delay, bdelay, quarantined, effRem, rd, ep}
end

-- The queue: numbered on arrival, renewed on every call.
if not redis.call('ZSCORE', KEYS[4], ticket) then
  local seq = reseq or redis.call('INCR', KEYS[3])
  redis.call('ZADD', KEYS[4], seq, ticket)
end
redis.call('ZADD', KEYS[5], now + lease, ticket)
redis.call('PEXPIRE', KEYS[3], ARGV[12])
redis.call('PEXPIRE', KEYS[4], bucketTTL)
redis.call('PEXPIRE', KEYS[5], bucketTTL)

local pos = redis.call('ZRANK', KEYS[4], ticket)
local nextRaw = redis.call('GET', KEYS[6])
local free = math.max(tonumber(nextRaw) or 0, q)
local budgetDelay = -1
if budgetAt > now then budgetDelay = budgetAt - now end

if pos == 0 and now >= free and budgetDelay < 0 then
  local seq = redis.call('ZSCORE', KEYS[4], ticket)
  redis.call('ZREM', KEYS[4], ticket)
  redis.call('ZREM', KEYS[5], ticket)
  local nxt = now + slot
  redis.call('SET', KEYS[6], s(nxt), 'PX', bucketTTL)
  local rs = ''
  if total then
    if now >= reset then
      rem, reset = total, now + window
    end
    rem = rem - 1
    effRem = rem
    redis.call('HSET', KEYS[2], 'rem', s(rem), 'reset', s(reset))
    redis.call('PEXPIRE', KEYS[2], reset - now + window)
    rs = s(reset)
  end
  redis.call('HSET', KEYS[7], 'ga', attempt, 'gseq', seq, 'gprev', nextRaw or '0', 'gnext', s(nxt), 'greset', rs)
  return reply(1, 0, -1)
end

-- Wait: the head until the bucket is free; the others until the turn
-- before theirs, to take over from a waiter ahead that gave up; past it,
-- until their own turn or, if the queue is late, until the first lease
-- ahead runs out (a dead waiter's ticket is dropped then).
local base = math.max(free, budgetAt)
local wake = base
if pos > 0 then
  wake = base + slot * (pos - 1)
  if wake <= now then
    local lease = math.huge
    local ahead = redis.call('ZRANGE', KEYS[4], 0, pos - 1)
    for i = 1, #ahead do
      local l = tonumber(redis.call('ZSCORE', KEYS[5], ahead[i]))
      if l and l < lease then lease = l end
    end
    wake = base + slot * pos
    if wake <= now or lease < wake then wake = lease end
    if wake == math.huge then wake = now + stall end
  end
  wake = math.max(wake, now + stall)
end
wake = math.max(wake, now + 1)
return reply(0, wake - now, budgetDelay)
`)

// identifyLeave takes a ticket out of its queue for good and undoes a
// grant its waiter never received.
//
// KEYS as identifyPoll. ARGV: 1 ticket, 2 ticket TTL, 3 bucket TTL.
var identifyLeave = goredis.NewScript(identifyLuaCommon + `
local g = redis.call('HMGET', KEYS[7], 'ga', 'gseq', 'gprev', 'gnext', 'greset')
redis.call('HSET', KEYS[7], 'left', '1')
redis.call('PEXPIRE', KEYS[7], ARGV[2])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
if g[1] then undo(KEYS[7], KEYS[6], KEYS[2], g, ARGV[3]) end
return 0
`)
