-- ratelimit_acquire.lua: admit one request of a route, or say how long to
-- wait. Atomic: the bucket slot and the global token are taken together
-- or not at all, so a request never holds a global token while its bucket
-- waits.
--
-- KEYS[1] epoch   string, missing after Redis lost its data
-- KEYS[2] routes  hash endpoint -> X-RateLimit-Bucket
-- KEYS[3] global  hash pause, ban, q (quarantine end), all in ms
-- KEYS[4] held    zset permit id -> lease end (global tokens in flight)
-- KEYS[5] ret     zset permit id -> when the token comes back
-- ARGV[1] now in ms, or "" for Redis TIME
-- ARGV[2] key prefix of bucket keys ("cordkit:{ns}:rl:")
-- ARGV[3] endpoint   ARGV[4] resource (sanitised)   ARGV[5] exempt 0/1
-- ARGV[6] global limit (<= 0: none)   ARGV[7] limit during quarantine
-- ARGV[8] permit id   ARGV[9] lease ms   ARGV[10] idle ms   ARGV[11] slack ms
--
-- Bucket keys are derived here from the route mapping, so that the mapping
-- and the bucket are read in one atomic step. They share the namespace's
-- hash tag, so they live in the same cluster slot as KEYS.
--
-- Returns {ok, wait_ms, bucket_key, bucket_hash, reason, fresh}: ok is 1
-- when admitted; wait_ms is -1 when only a release can help; reason is
-- "ban", "pause", "bucket" or "global"; fresh is 1 when Redis had lost
-- its data and a quarantine window started.
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local prefix, ep, res = ARGV[2], ARGV[3], ARGV[4]
local exempt = ARGV[5] == '1'
local limit, qcap = tonumber(ARGV[6]), tonumber(ARGV[7])
local id, lease, idle, slack = ARGV[8], tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local day = 86400000

local fresh = 0
if redis.call('EXISTS', KEYS[1]) == 0 then
  -- Redis lost its data (or sat idle for a day): the tokens other
  -- processes spent in the last window are unknown, so the next window
  -- only grants the quarantine limit.
  fresh = 1
  redis.call('SET', KEYS[1], now, 'PX', day)
  redis.call('HSET', KEYS[3], 'q', now + 1000)
  redis.call('PEXPIRE', KEYS[3], 1000 + slack)
else
  redis.call('PEXPIRE', KEYS[1], day)
end

local g = redis.call('HMGET', KEYS[3], 'pause', 'ban', 'q')
local gpause, ban, q = tonumber(g[1]) or 0, tonumber(g[2]) or 0, tonumber(g[3]) or 0

local hash = redis.call('HGET', KEYS[2], ep)
local bkey
if hash then bkey = hash else bkey = ep; hash = '' end
if res ~= '' then bkey = bkey .. ' ' .. res end

if now < ban then
  return {0, ban - now, bkey, hash, 'ban', fresh}
end
if not exempt and now < gpause then
  return {0, gpause - now, bkey, hash, 'pause', fresh}
end

-- The bucket, as the reference bucket decides.
local bk, fk = prefix .. 'b:' .. bkey, prefix .. 'f:' .. bkey
local b = redis.call('HMGET', bk, 'known', 'unl', 'rem', 'reset', 'pause')
local known, unl = b[1] == '1', b[2] == '1'
local rem, reset, bpause = tonumber(b[3]) or 0, tonumber(b[4]) or 0, tonumber(b[5]) or 0
if now < bpause then
  return {0, bpause - now, bkey, hash, 'bucket', fresh}
end
redis.call('ZREMRANGEBYSCORE', fk, '-inf', now)
local take
if unl then
  take = 'unl'
elseif redis.call('ZCARD', fk) > 0 then
  local first = redis.call('ZRANGE', fk, 0, 0, 'WITHSCORES')
  return {0, tonumber(first[2]) - now, bkey, hash, 'bucket', fresh}
elseif not known or now >= reset then
  take = 'blind'
elseif rem > 0 then
  take = 'rem'
else
  return {0, reset - now, bkey, hash, 'bucket', fresh}
end

-- The global token.
if not exempt and limit > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
  local cap = limit
  if now < q and qcap < cap then cap = qcap end
  if redis.call('ZCARD', KEYS[4]) + redis.call('ZCARD', KEYS[5]) >= cap then
    local w = -1
    local r = redis.call('ZRANGE', KEYS[5], 0, 0, 'WITHSCORES')
    if r[2] then w = tonumber(r[2]) - now end
    local h = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
    if h[2] and (w < 0 or tonumber(h[2]) - now < w) then w = tonumber(h[2]) - now end
    if now < q and (w < 0 or q - now < w) then w = q - now end
    return {0, w, bkey, hash, 'global', fresh}
  end
  redis.call('ZADD', KEYS[4], now + lease, id)
  redis.call('PEXPIRE', KEYS[4], lease + slack)
end

if take == 'blind' then
  if known then redis.call('HSET', bk, 'known', '0') end
elseif take == 'rem' then
  redis.call('HINCRBY', bk, 'rem', -1)
end
if take ~= 'blind' or known then
  local until_ = math.max(reset, bpause, now)
  redis.call('PEXPIRE', bk, until_ - now + idle)
end
redis.call('ZADD', fk, now + lease, id)
redis.call('PEXPIRE', fk, lease + slack)
return {1, 0, bkey, hash, '', fresh}
