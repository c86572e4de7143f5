-- One call of the room, after advancing it to the server's now.
-- ARGV[1] op: 'join' (ARGV[2] visitor, ARGV[3] new token; to take back a place a store lost:
--   ARGV[4] its token and ARGV[5] its sequence number, checked by the caller's signature) |
--   'entry_of' (ARGV[2] visitor) |
--   'poll' | 'peek' | 'claim' | 'finish' (ARGV[2] token) | 'stats' | 'waiting' |
--   'set' (ARGV[2], ARGV[3], ... field and value pairs: rate, burst, max_active (positive
--   integers), paused, closed (0 or 1); anything else is an error and nothing is written)
-- Rules: FIFO admission at the rate; exact positions; a refresh keeps the place (a returning
-- visitor gets the same ticket or pass); a full line changes nothing; live passes never
-- exceed max_active.
-- Returns an entry (see the prelude), {'done'}, {'none'}, {'err', reason [, retry_after_us]},
-- the number waiting, or the stats.
local now = now_us()
advance(now)
local op = ARGV[1]
if op == 'join' or op == 'entry_of' then
  local known = redis.call('HGET', VISITORS, ARGV[2])
  if known then
    if redis.call('HEXISTS', TICKETS, known) == 1 then
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
  local waiting = redis.call('ZCARD', LINE)
  if waiting >= cfg('max_waiting') then
    local owed = (waiting + 1) * MILLION - st('credit')
    return {'err', 'full', math.max(1000000, math.ceil(owed / cfg('rate')))}
  end
  local token, seq = ARGV[3], nil
  local old = ARGV[4]
  -- A place is taken back only if the store knows nothing of its token (lost, not ended),
  -- and its text (ARGV[6], its issue time in seconds) is younger, by more than the nodes'
  -- clock skew, than every ended token forgotten to keep ENDED bounded: a text that old might
  -- name one of those, which must never come back at its old place.
  local young = old and old ~= '' and
      tonumber(ARGV[6] or '0') * MILLION > st('ended_evicted_us') + PLACE_SKEW_US
  if young and not redis.call('ZSCORE', ENDED, old)
      and redis.call('HEXISTS', PASSES, old) == 0 and redis.call('HEXISTS', TICKETS, old) == 0 then
    token, seq = old, tonumber(ARGV[5])
    if seq > st('seq') then
      redis.call('HSET', STATE, 'seq', ARGV[5])
    end
  else
    seq = redis.call('HINCRBY', STATE, 'seq', 1)
  end
  redis.call('ZADD', LINE, seq, token)
  redis.call('HSET', TICKETS, token, ARGV[2])
  redis.call('HSET', VISITORS, ARGV[2], token)
  check_in(token, now)
  admit(now)
  return entry(token)
end
if op == 'poll' or op == 'peek' or op == 'claim' or op == 'finish' then
  local token = ARGV[2]
  local waiting = redis.call('HEXISTS', TICKETS, token) == 1
  local rec = redis.call('HGET', PASSES, token)
  if op == 'poll' and waiting then
    check_in(token, now)
  elseif op == 'claim' and rec then
    local visitor, admitted, expires, claimed = string.match(rec, '^(%d+) (%d+) (%d+) (%d)$')
    if claimed == '0' then
      redis.call('HSET', PASSES, token, visitor .. ' ' .. admitted .. ' ' .. expires .. ' 1')
      redis.call('ZADD', LAPSES, expires, token) -- already text
    end
  elseif op == 'claim' and waiting then
    return {'err', 'not_admitted'}
  elseif op == 'finish' and (rec or waiting) then
    local visitor
    if rec then
      visitor = string.match(rec, '^(%d+) ')
      redis.call('HDEL', PASSES, token)
      redis.call('ZREM', LAPSES, token)
    else
      visitor = redis.call('HGET', TICKETS, token)
      redis.call('ZREM', LINE, token)
      redis.call('ZREM', DEADLINES, token)
      redis.call('HDEL', TICKETS, token)
      redis.call('HINCRBY', STATE, 'left_total', 1)
    end
    forget(token, now, true)
    if redis.call('HGET', VISITORS, visitor) == token then
      redis.call('HDEL', VISITORS, visitor)
    end
    admit(now)
    return {'done'}
  end
  local found = entry(token)
  if found then
    return found
  end
  local ended = redis.call('ZSCORE', ENDED, token)
  if ended and tonumber(ended) > 0 then
    return {'err', 'expired'}
  end
  return {'err', 'unknown'}
end
if op == 'set' then
  local allowed = {rate = '^[1-9]%d*$', burst = '^[1-9]%d*$', max_active = '^[1-9]%d*$',
                   paused = '^[01]$', closed = '^[01]$'}
  if #ARGV < 3 or #ARGV % 2 == 0 then
    return {'err', 'bad_setting'}
  end
  for i = 2, #ARGV, 2 do
    local pattern = allowed[ARGV[i]]
    if not pattern or not string.match(ARGV[i + 1], pattern) or #ARGV[i + 1] > 10 then
      return {'err', 'bad_setting'}
    end
  end
  for i = 2, #ARGV, 2 do
    redis.call('HSET', CFG, ARGV[i], ARGV[i + 1])
  end
  admit(now)
  return {'done'}
end
if op == 'waiting' then
  return redis.call('ZCARD', LINE)
end
if op == 'stats' then
  local waiting = redis.call('ZCARD', LINE)
  return {
    waiting, redis.call('HLEN', PASSES), st('admitted_total'), st('dropped_total'),
    st('left_total'), cfg('paused'), cfg('closed'), now, cfg('rate'), cfg('burst'),
    cfg('max_active'), cfg('max_waiting'), eta_us(waiting)
  }
end
return redis.error_reply('unknown room op')
