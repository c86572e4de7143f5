-- The per-applicant limit, across branches. COUNTS = {ns:a:A}: ZSET token -> until when it
-- counts (ms since the Unix epoch; 'inf' for a booking). Entries that ran out are dropped
-- first, so a lapsed hold gives its count back by time alone.
-- ARGV[1] op: 'take' (ARGV[3] counts-until offset ms, ARGV[4] limit, ARGV[5] hold ttl ms) |
--   'book' | 'drop'
-- ARGV[2] token
-- Rule: the count is taken before a hold is made and given back only after it ended, so the
-- limit is never exceeded; a crash between the steps can only leave a count too high for a
-- while (a 'take' runs out by itself; a 'book' left without its booking stays until the token
-- is dropped, which the caller does when it settles an applicant at its limit).
-- Returns, for take: {1, until_ms} taken (or taken before, with its own until_ms), {0, token...} at the limit with
-- the tokens to settle; for book: 1 if
-- the token counted (now as a booking), 0 if it had run out; for drop: 1.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', COUNTS, '-inf', now)
local op, token = ARGV[1], ARGV[2]
if op == 'take' then
  local until_ms = now + tonumber(ARGV[3])
  local counted = redis.call('ZSCORE', COUNTS, token)
  if counted == 'inf' then
    return {0} -- a booking's token: no new hold is made under it
  elseif counted then
    return {1, tonumber(counted)} -- taken before: until when it was taken then
  end
  if redis.call('ZCARD', COUNTS) >= tonumber(ARGV[4]) then
    -- At the limit: the tokens to settle, those no reservation in progress can still hold
    -- under (a booking's, or taken so long ago that no reserve would now make a hold the
    -- count covers: it counts for less than the hold ttl ARGV[5] more).
    local out = {0}
    for _, t in ipairs(redis.call('ZRANGEBYSCORE', COUNTS, '-inf', now + tonumber(ARGV[5]))) do
      table.insert(out, t)
    end
    for _, t in ipairs(redis.call('ZRANGEBYSCORE', COUNTS, 'inf', 'inf')) do
      table.insert(out, t)
    end
    return out
  end
  redis.call('ZADD', COUNTS, string.format('%.0f', until_ms), token)
  return {1, until_ms}
end
if op == 'book' then
  if not redis.call('ZSCORE', COUNTS, token) then
    return 0
  end
  redis.call('ZADD', COUNTS, 'inf', token)
  return 1
end
if op == 'drop' then
  redis.call('ZREM', COUNTS, token)
  return 1
end
return redis.error_reply('unknown applicant op')
