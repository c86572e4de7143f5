-- The per-applicant limit, across branches. KEYS[1] = {ns:a:A}: ZSET token -> until when it
-- counts (ms since the Unix epoch; 'inf' for a booking). Entries that ran out are dropped
-- first, so a lapsed hold gives its count back by time alone.
-- ARGV[1] op: 'take' (ARGV[3] counts-until offset ms, ARGV[4] limit) | 'book' | 'drop'
-- ARGV[2] token
-- Rule: the count is taken before a hold is made and given back only after it ended, so the
-- limit is never exceeded; a crash between the steps can only leave a count too high for a
-- while (a 'take' runs out by itself; a 'book' left without its booking stays until the token
-- is dropped).
-- Returns, for take: {1, until_ms} taken (or already held), {0} at the limit; for book: 1 if
-- the token counted (now as a booking), 0 if it had run out; for drop: 1.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local token = ARGV[2]
if ARGV[1] == 'take' then
  local until_ms = now + tonumber(ARGV[3])
  if redis.call('ZSCORE', KEYS[1], token) then
    return {1, until_ms}
  end
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
    return {0}
  end
  redis.call('ZADD', KEYS[1], string.format('%.0f', until_ms), token)
  return {1, until_ms}
end
if ARGV[1] == 'book' then
  if not redis.call('ZSCORE', KEYS[1], token) then
    return 0
  end
  redis.call('ZADD', KEYS[1], 'inf', token)
  return 1
end
redis.call('ZREM', KEYS[1], token)
return 1
