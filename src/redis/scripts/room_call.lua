-- One call of the room, after advancing it to the server's now.
-- ARGV[1] op: 'join' (ARGV[2] visitor, ARGV[3] new token; to take back a place a store lost:
--   ARGV[4] its token and ARGV[5] its sequence number, checked by the caller's signature) |
--   'entry_of' (ARGV[2] visitor) |
--   'poll' | 'peek' | 'claim' | 'finish' (ARGV[2] token) | 'stats' |
--   'set' (ARGV[2], ARGV[3], ... field and value pairs: pause/close flags and limits)
-- Rules: FIFO admission at the rate; exact positions; a refresh keeps the place (a returning
-- visitor gets the same ticket or pass); a full line changes nothing; live passes never
-- exceed max_active.
-- Returns an entry (see the prelude), {'err', reason [, retry_after_us]}, or the stats.
local now = now_us()
advance(now)
local op = ARGV[1]
if op == 'join' or op == 'entry_of' then
  local known = redis.call('HGET', KEYS[5], ARGV[2])
  if known then
    if redis.call('HEXISTS', KEYS[6], known) == 1 then
      check_in(known, now)
    end
    local found = entry(known)
    if found then
      return found
    end
  end
  if op == 'entry_of' then
    return {'none'}
  end
  if cfg('closed') == 1 then
    return {'err', 'closed'}
  end
  local waiting = redis.call('ZCARD', KEYS[3])
  if waiting >= cfg('max_waiting') then
    local owed = (waiting + 1) * MILLION - st('credit')
    return {'err', 'full', math.max(1000000, math.ceil(owed / cfg('rate')))}
  end
  local token, seq = ARGV[3], nil
  local old = ARGV[4]
  -- A place is taken back only if the store knows nothing of its token (lost, not ended).
  if old and old ~= '' and not redis.call('ZSCORE', KEYS[9], old)
      and redis.call('HEXISTS', KEYS[7], old) == 0 and redis.call('HEXISTS', KEYS[6], old) == 0 then
    token, seq = old, tonumber(ARGV[5])
    if seq > st('seq') then
      redis.call('HSET', KEYS[2], 'seq', ARGV[5])
    end
  else
    seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
  end
  redis.call('ZADD', KEYS[3], seq, token)
  redis.call('HSET', KEYS[6], token, ARGV[2])
  redis.call('HSET', KEYS[5], ARGV[2], token)
  check_in(token, now)
  admit(now)
  return entry(token)
end
if op == 'poll' or op == 'peek' or op == 'claim' or op == 'finish' then
  local token = ARGV[2]
  local waiting = redis.call('HEXISTS', KEYS[6], token) == 1
  local rec = redis.call('HGET', KEYS[7], token)
  if op == 'poll' and waiting then
    check_in(token, now)
  elseif op == 'claim' and rec then
    local visitor, admitted, expires, claimed = string.match(rec, '^(%d+) (%d+) (%d+) (%d)$')
    if claimed == '0' then
      redis.call('HSET', KEYS[7], token, visitor .. ' ' .. admitted .. ' ' .. expires .. ' 1')
      redis.call('ZADD', KEYS[8], expires, token) -- already text
    end
  elseif op == 'claim' and waiting then
    return {'err', 'not_admitted'}
  elseif op == 'finish' and (rec or waiting) then
    local visitor
    if rec then
      visitor = string.match(rec, '^(%d+) ')
      redis.call('HDEL', KEYS[7], token)
      redis.call('ZREM', KEYS[8], token)
    else
      visitor = redis.call('HGET', KEYS[6], token)
      redis.call('ZREM', KEYS[3], token)
      redis.call('ZREM', KEYS[4], token)
      redis.call('HDEL', KEYS[6], token)
      redis.call('HINCRBY', KEYS[2], 'left_total', 1)
    end
    forget(token, now, true)
    if redis.call('HGET', KEYS[5], visitor) == token then
      redis.call('HDEL', KEYS[5], visitor)
    end
    admit(now)
    return {'done'}
  end
  local found = entry(token)
  if found then
    return found
  end
  local ended = redis.call('ZSCORE', KEYS[9], token)
  if ended and tonumber(ended) > 0 then
    return {'err', 'expired'}
  end
  return {'err', 'unknown'}
end
if op == 'set' then
  for i = 2, #ARGV, 2 do
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
  admit(now)
  return {'done'}
end
-- stats
return {
  redis.call('ZCARD', KEYS[3]), redis.call('HLEN', KEYS[7]), st('admitted_total'),
  st('dropped_total'), st('left_total'), cfg('paused'), cfg('closed'), now,
  cfg('rate'), cfg('burst'), cfg('max_active')
}
