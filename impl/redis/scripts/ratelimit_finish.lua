-- ratelimit_finish.lua: finish a permit: Complete(info) or Cancel.
--
-- KEYS[1] routes   KEYS[2] global   KEYS[3] held   KEYS[4] ret
-- ARGV[1] now in ms, or "" for Redis TIME
-- ARGV[2] key prefix of bucket keys   ARGV[3] permit id
-- ARGV[4] the permit's bucket key ("" when unknown: for "release", it is
--         then found from the endpoint and resource)
-- ARGV[5] the hash that bucket key was built from ("" for a route key)
-- ARGV[6] token 0/1: the permit holds a global token
-- ARGV[7] mode: "complete"; "cancel" (token back at once); "release"
--         (slot freed, token back one second from now: a permit whose
--         outcome is unknown)
-- ARGV[8] endpoint   ARGV[9] resource (sanitised)
-- ARGV[10] status   ARGV[11] X-RateLimit-Bucket   ARGV[12] has limit 0/1
-- ARGV[13] limit   ARGV[14] remaining   ARGV[15] reset after ms
-- ARGV[16] scope   ARGV[17] retry after ms   ARGV[18] Cloudflare pause ms
-- ARGV[19] idle ms   ARGV[20] slack ms   ARGV[21] pub/sub channel ("" none)
-- ARGV[22] sender id
--
-- Publishes, when ARGV[21] is set, one message: the sender id, then one
-- line per bucket key that may admit again ("k <key>"), and "g" when a
-- global token came back at once.
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local prefix, id, pkey, phash = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local token, mode = ARGV[6] == '1', ARGV[7]
local idle, slack = tonumber(ARGV[19]), tonumber(ARGV[20])
local msg = {ARGV[22]}

if pkey == '' and mode == 'release' and ARGV[8] ~= '' then
  -- An acquire whose reply was lost: find the bucket it would have used.
  pkey = redis.call('HGET', KEYS[1], ARGV[8]) or ARGV[8]
  if ARGV[9] ~= '' then pkey = pkey .. ' ' .. ARGV[9] end
end
if pkey ~= '' then
  if redis.call('ZREM', prefix .. 'f:' .. pkey, id) == 1 or mode ~= 'release' then
    table.insert(msg, 'k ' .. pkey)
  end
end

if mode ~= 'complete' then
  if token and redis.call('ZREM', KEYS[3], id) == 1 then
    if mode == 'cancel' then
      table.insert(msg, 'g')
    else
      redis.call('ZADD', KEYS[4], now + 1000, id)
      redis.call('PEXPIRE', KEYS[4], 1000 + slack)
    end
  end
  if ARGV[21] ~= '' and #msg > 1 then
    redis.call('PUBLISH', ARGV[21], table.concat(msg, '\n'))
  end
  return 1
end

local ep, res = ARGV[8], ARGV[9]
local status, hash, haslimit = tonumber(ARGV[10]), ARGV[11], ARGV[12] == '1'
local limit, remaining, resetAfter = tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15])
local scope, retry, cfpause = ARGV[16], tonumber(ARGV[17]), tonumber(ARGV[18])

-- learn applies the response to the bucket at key k, as the reference
-- bucket's learn does.
local function learn(k)
  local bk = prefix .. 'b:' .. k
  if status == 429 then
    if scope == 'user' or scope == 'shared' then
      local p = tonumber(redis.call('HGET', bk, 'pause')) or 0
      if now + retry > p then redis.call('HSET', bk, 'pause', now + retry) end
    else
      return -- global and Cloudflare 429s say nothing about the bucket
    end
  end
  if haslimit then
    redis.call('HSET', bk, 'known', '1', 'unl', '0', 'limit', limit, 'rem', remaining, 'reset', now + resetAfter)
  elseif status >= 200 and status < 300 and hash == '' then
    redis.call('HSET', bk, 'unl', '1')
  end
  local b = redis.call('HMGET', bk, 'reset', 'pause')
  local until_ = math.max(tonumber(b[1]) or 0, tonumber(b[2]) or 0, now)
  if redis.call('EXISTS', bk) == 1 then
    redis.call('PEXPIRE', bk, until_ - now + idle)
  end
end

if hash ~= '' then
  local tkey = hash
  if res ~= '' then tkey = hash .. ' ' .. res end
  if tkey ~= pkey then
    -- The response names a bucket other routes may share: teach it, so
    -- that nobody reaches it blind.
    learn(tkey)
    table.insert(msg, 'k ' .. tkey)
  end
  if redis.call('HGET', KEYS[1], ep) ~= hash then
    redis.call('HSET', KEYS[1], ep, hash)
  end
  redis.call('PEXPIRE', KEYS[1], 86400000)
end
if pkey ~= '' and not (phash ~= '' and hash ~= '' and hash ~= phash) then
  learn(pkey)
end

if token then
  redis.call('ZREM', KEYS[3], id)
  redis.call('ZADD', KEYS[4], now + 1000, id)
  redis.call('PEXPIRE', KEYS[4], 1000 + slack)
end

if status == 429 and (scope == 'global' or scope == 'cloudflare') then
  local field, d = 'pause', retry
  if scope == 'cloudflare' then
    field = 'ban'
    if d <= 0 then d = cfpause end
  end
  local cur = tonumber(redis.call('HGET', KEYS[2], field)) or 0
  if now + d > cur then
    redis.call('HSET', KEYS[2], field, now + d)
    local ttl = redis.call('PTTL', KEYS[2])
    if ttl < d + slack then redis.call('PEXPIRE', KEYS[2], d + slack) end
  end
end

if ARGV[21] ~= '' and #msg > 1 then
  redis.call('PUBLISH', ARGV[21], table.concat(msg, '\n'))
end
return 1
