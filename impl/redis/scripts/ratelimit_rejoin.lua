-- ratelimit_rejoin.lua: after an outage, count the global tokens a process
-- spent on its own (fallback) in the shared window, so the others see
-- them.
--
-- KEYS[1] ret   ARGV[1] now ms or ""   ARGV[2] slack ms
-- ARGV[3..] pairs of (id, when the token comes back, in ms from now)
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local slack = tonumber(ARGV[2])
local longest = 0
for i = 3, #ARGV, 2 do
  local d = tonumber(ARGV[i + 1])
  redis.call('ZADD', KEYS[1], now + d, ARGV[i])
  if d > longest then longest = d end
end
if #ARGV > 2 then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < longest + slack then redis.call('PEXPIRE', KEYS[1], longest + slack) end
end
return 1
