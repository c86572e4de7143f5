-- The per-applicant limit, across branches. COUNTS = {ns:a:A}: ZSET token -> until when it
-- counts (ms since the Unix epoch; 'inf' for a booking). Entries that ran out are dropped
-- first, so a lapsed hold gives its count back by time alone.
-- ARGV[1] op: 'take' (ARGV[3] counts-until offset ms, ARGV[4] limit, ARGV[5] hold ttl ms) |
--   'book' | 'drop' | the standby request's ops, below
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
-- The standby request (STANDBY = {ns:a:A}:standby, a string): "w RT number first last
-- branch..." while it waits in the lines of its branches, "g T RT ..." once the unit one of
-- them kept was given to it as the hold T (the lines of its other branches not yet left),
-- "h T RT ..." once they were. Its count stands under RT while it waits, under T once given.
local sb = redis.call('GET', STANDBY)
local state, held = string.match(sb or '', '^(%a) (%x+)')
local waits = state == 'w' and held == token -- the request `token` waits
if op == 'get' then
  return sb or ''
end
if op == 'line' then
  -- ARGV[3] the request's text after its token: the request's count was taken under `token`
  -- (a 'take'); a request already waiting wins (the caller gives its own count back). One
  -- that was given its hold is over: the new request takes its place.
  if state == 'w' then
    return {'has', sb}
  end
  if not redis.call('ZSCORE', COUNTS, token) then
    return {'gone'}
  end
  redis.call('SET', STANDBY, 'w ' .. token .. ' ' .. ARGV[3])
  return {'ok'}
end
if op == 'stand' then
  -- The request waits in every line: its count lasts while it does (no 'take' runs out).
  if not waits or not redis.call('ZSCORE', COUNTS, token) then
    return 0
  end
  redis.call('ZADD', COUNTS, 'XX', 'inf', token)
  return 1
end
if op == 'swap' then
  -- ARGV[3] the hold token T, ARGV[4] until when T counts (offset ms): the request's count
  -- becomes the hold's, and the request "given". Returns 1 (a retry too), 0 when the stored
  -- request is not this one waiting, -1 when its count is gone.
  local t = ARGV[3]
  if (state == 'g' or state == 'h') and held == t then
    return 1
  end
  if not waits then
    return 0 -- not this request waiting: read it again
  end
  if not redis.call('ZSCORE', COUNTS, token) then
    return -1 -- its count was settled: the request is over
  end
  redis.call('ZREM', COUNTS, token)
  redis.call('ZADD', COUNTS, string.format('%.0f', now + tonumber(ARGV[4])), t)
  redis.call('SET', STANDBY, 'g ' .. t .. ' ' .. string.sub(sb, 3))
  return 1
end
if op == 'mark' then
  -- The lines of the request's other branches were left.
  if state == 'g' and held == token then
    redis.call('SET', STANDBY, 'h' .. string.sub(sb, 2))
  end
  return 1
end
if op == 'unline' then
  -- The waiting request `token` ends without a hold: it and its count go.
  if not waits then
    return 0
  end
  redis.call('DEL', STANDBY)
  redis.call('ZREM', COUNTS, token)
  return 1
end
if op == 'forget' then
  -- The hold `token` standby gave ended (or never was): the request is over.
  if (state == 'g' or state == 'h') and held == token then
    redis.call('DEL', STANDBY)
  end
  return 1
end
return redis.error_reply('unknown applicant op')
