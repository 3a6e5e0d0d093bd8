package redis

import (
	"net/http"
	"sync"
	"time"

	"github.com/cordkit/cordkit/protocols"
)

// fallback is the limiter's local, conservative state: what it enforces
// while Redis cannot be reached, and what it has learned from this
// process's own responses meanwhile, so that a switch to it honours the
// last known resets and pauses.
//
// Its limits are a fraction of Discord's, because the other processes are
// doing the same blind: the global limit divided by FallbackShare, one
// request in flight per bucket, and at most Limit/FallbackShare (at least
// one) of this process's requests per bucket window, never while the last
// response said Remaining 0 before its reset.
type fallback struct {
	share int
	limit int // per-process global tokens per second; <= 0: none
	idle  time.Duration
	// cfPause is the pause after a Cloudflare 429 without RetryAfter.
	cfPause time.Duration

	mu          sync.Mutex
	inUse       int         // global tokens of this process in flight, shared or not
	returns     []time.Time // when completed tokens come back, in order
	pausedUntil time.Time   // global 429
	quietUntil  time.Time   // no fallback global token before: see quiet
	bannedUntil time.Time   // Cloudflare 429
	hashes      map[string]string
	buckets     map[string]*fbBucket
	nextSweep   time.Time
}

type fbBucket struct {
	known, unlimited bool
	limit, remaining int
	used             int // this process's fallback requests in this window
	resetAt          time.Time
	pausedUntil      time.Time
	inFlight         int // permits of this process in flight, shared or not
	idleFrom         time.Time
}

func newFallback(global, share int, idle, cfPause time.Duration) *fallback {
	f := &fallback{share: share, idle: idle, cfPause: cfPause, hashes: make(map[string]string), buckets: make(map[string]*fbBucket)}
	if global > 0 {
		f.limit = max(1, global/share)
	}
	return f
}

// key returns the bucket key of r, with resource res, as Redis would.
// f.mu is held.
func (f *fallback) key(r protocols.Route, res string) (key, hash string) {
	if h, ok := f.hashes[r.Endpoint()]; ok {
		return bucketKey(h, res), h
	}
	return bucketKey(r.Endpoint(), res), ""
}

func (f *fallback) bucket(key string, now time.Time) *fbBucket {
	b := f.buckets[key]
	if b == nil {
		b = &fbBucket{idleFrom: now}
		f.buckets[key] = b
	}
	return b
}

// try admits r when the fallback limits allow it. Otherwise it returns a
// wait: its duration (negative: until a release) and what blocks it.
func (f *fallback) try(r protocols.Route, res string, now time.Time) (*fbBucket, string, bool, waitFor) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sweep(now)
	key, _ := f.key(r, res)
	if now.Before(f.bannedUntil) {
		return nil, key, false, waitFor{d: f.bannedUntil.Sub(now), global: true}
	}
	if !r.Exempt && now.Before(f.pausedUntil) {
		return nil, key, false, waitFor{d: f.pausedUntil.Sub(now), global: true}
	}
	b := f.bucket(key, now)
	if now.Before(b.pausedUntil) {
		return nil, key, false, waitFor{d: b.pausedUntil.Sub(now), key: key}
	}
	if b.inFlight > 0 {
		return nil, key, false, waitFor{d: -1, key: key}
	}
	blind := !b.known || !now.Before(b.resetAt)
	if !blind && !b.unlimited && (b.remaining <= 0 || b.used >= max(1, b.limit/f.share)) {
		return nil, key, false, waitFor{d: b.resetAt.Sub(now), key: key}
	}
	token := !r.Exempt && f.limit > 0
	if token && now.Before(f.quietUntil) {
		return nil, key, false, waitFor{d: f.quietUntil.Sub(now), global: true}
	}
	if token {
		f.trim(now)
		if f.inUse+len(f.returns) >= f.limit {
			if len(f.returns) > 0 {
				return nil, key, false, waitFor{d: f.returns[0].Sub(now), global: true}
			}
			return nil, key, false, waitFor{d: -1, global: true}
		}
		f.inUse++
	}
	if blind {
		b.known, b.used = false, 0
	} else if !b.unlimited {
		b.remaining--
	}
	b.used++
	b.inFlight++
	b.idleFrom = now
	return b, key, token, waitFor{}
}

func (f *fallback) trim(now time.Time) {
	i := 0
	for i < len(f.returns) && !now.Before(f.returns[i]) {
		i++
	}
	f.returns = f.returns[i:]
}

// takeShared counts a permit this process took through Redis: its
// global token, and its slot in the local bucket of key, so that a switch
// to the fallback limits sees what is still in flight.
func (f *fallback) takeShared(key string, token bool, now time.Time) *fbBucket {
	f.mu.Lock()
	defer f.mu.Unlock()
	if token {
		f.inUse++
	}
	b := f.bucket(key, now)
	b.inFlight++
	b.idleFrom = now
	return b
}

// quiet keeps the fallback from granting global tokens until until. The
// limiter calls it when it falls back: the tokens other processes spent in
// the current window are unknown, so the first fallback window starts
// when that one has surely ended.
func (f *fallback) quiet(until time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if until.After(f.quietUntil) {
		f.quietUntil = until
	}
}

// finish records the end of a permit: b is its local bucket, token whether it held a global token, info the response
// (nil when cancelled).
func (f *fallback) finish(r protocols.Route, res string, b *fbBucket, token bool, info *protocols.RateLimitInfo, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if b != nil {
		b.inFlight--
	}
	if token {
		f.inUse--
		if info != nil {
			f.returns = append(f.returns, now.Add(time.Second))
		}
	}
	if info != nil {
		f.learn(r, res, b, *info, now)
	}
}

// learn applies a response to the local knowledge. f.mu is held.
func (f *fallback) learn(r protocols.Route, res string, own *fbBucket, info protocols.RateLimitInfo, now time.Time) {
	if info.Limited() {
		switch info.Scope {
		case protocols.ScopeGlobal:
			if t := now.Add(info.RetryAfter); t.After(f.pausedUntil) {
				f.pausedUntil = t
			}
			return
		case protocols.ScopeCloudflare:
			d := info.RetryAfter
			if d <= 0 {
				d = f.cfPause
			}
			if t := now.Add(d); t.After(f.bannedUntil) {
				f.bannedUntil = t
			}
			return
		}
	}
	key, _ := f.key(r, res)
	if info.Bucket != "" {
		f.hashes[r.Endpoint()] = info.Bucket
		key = bucketKey(info.Bucket, res)
	}
	b := f.bucket(key, now)
	if own != nil && own != b {
		own.idleFrom = now
	}
	if info.Limited() {
		if t := now.Add(info.RetryAfter); t.After(b.pausedUntil) {
			b.pausedUntil = t
		}
	}
	switch {
	case info.HasLimit:
		b.known, b.unlimited = true, false
		b.limit, b.remaining = info.Limit, info.Remaining
		b.resetAt = now.Add(info.ResetAfter)
	case info.Status >= http.StatusOK && info.Status < http.StatusMultipleChoices && info.Bucket == "":
		b.unlimited = true
	}
	b.idleFrom = now
}

// pendingTokens returns how long each token this process holds or
// returns soon will keep counting in the global window, measured from now.
// A token in flight counts one second from now: at the latest, its
// request reached Discord now.
func (f *fallback) pendingTokens(now time.Time) []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.trim(now)
	var out []time.Duration
	for _, t := range f.returns {
		out = append(out, t.Sub(now))
	}
	for range f.inUse {
		out = append(out, time.Second)
	}
	return out
}

// sweep drops buckets idle for f.idle, at most once per f.idle. f.mu is
// held.
func (f *fallback) sweep(now time.Time) {
	if now.Before(f.nextSweep) {
		return
	}
	f.nextSweep = now.Add(f.idle)
	for k, b := range f.buckets {
		until := b.idleFrom
		if b.resetAt.After(until) {
			until = b.resetAt
		}
		if b.pausedUntil.After(until) {
			until = b.pausedUntil
		}
		if b.inFlight == 0 && !now.Before(until.Add(f.idle)) {
			delete(f.buckets, k)
		}
	}
}
