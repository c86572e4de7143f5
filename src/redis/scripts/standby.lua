-- standby: one branch's part of a standby request RT (ARGV[2]).
-- ARGV[1] op:
-- 'join' (ARGV[3] number, ARGV[4] applicant, ARGV[5] first, ARGV[6] last, ARGV[7] '1' on the
--   request's first branch, whose fence a settled count leaves): puts the request in this
--   branch's line, unless a unit it covers is free to reserve. Returns {'joined', waiting here}
--   (also for a request already waiting here), {'offered'} (it was kept a unit here already),
--   {'err', 'free', slot}, {'err', 'full'} (MAX_LINE wait here), {'err', 'stale'} (fenced).
-- 'peek': {'waiting', waiting here} | {'offer', slot, expires_ms} | {'gone'}.
-- 'claim' (ARGV[3] the hold token, ARGV[4] fence ms): turns the request's offer into a live
--   hold under that token, for its expiry as offered (the unit stays held). Returns {'held',
--   token, slot, expires_ms} (also for a claim made before), {'booked'} (its hold is a booking
--   now), or {'gone'}: no offer, or the token fenced (a kept unit is then passed on); the
--   token is then fenced, so no hold is ever made under it and its count may be given back.
-- 'leave': takes the request out of the line here, and passes on a unit kept for it. Returns
--   'waiting', 'offer' or 'none' (what it had here).
local now = now_ms()
reclaim(now, RECLAIM_BUDGET)
local op, rt = ARGV[1], ARGV[2]
if op == 'join' then
  if ARGV[7] == '1' and redis.call('ZSCORE', FENCED, rt) then
    return {'err', 'stale'}
  end
  if redis.call('ZSCORE', SBLINE, rt) then
    return {'joined', redis.call('ZCARD', SBLINE)}
  end
  if redis.call('HEXISTS', OFFERS, rt) == 1 then
    return {'offered'}
  end
  if redis.call('ZCARD', SBLINE) >= MAX_LINE then
    return {'err', 'full'}
  end
  local free = redis.call('ZRANGEBYSCORE', OPEN, ARGV[5], ARGV[6], 'LIMIT', 0, 1)
  if #free > 0 then
    return {'err', 'free', tonumber(free[1])}
  end
  add_waiting(rt, ARGV[3], ARGV[4], ARGV[5], ARGV[6])
  return {'joined', redis.call('ZCARD', SBLINE)}
end
if op == 'peek' then
  if redis.call('ZSCORE', SBLINE, rt) then
    return {'waiting', redis.call('ZCARD', SBLINE)}
  end
  local offer = live_offer(rt, now)
  if offer then
    local slot, _, expires = offer_fields(offer)
    return {'offer', tonumber(slot), tonumber(expires)}
  end
  return {'gone'}
end
if op == 'claim' then
  local token = ARGV[3]
  local rec = redis.call('HGET', HOLDS, token)
  if rec then
    local slot, _, exp = hold_fields(rec)
    return {'held', token, tonumber(slot), tonumber(exp)}
  end
  if redis.call('HEXISTS', BOOKINGS, token) == 1 then
    return {'booked'}
  end
  redis.call('ZREMRANGEBYSCORE', FENCED, '-inf', now)
  local offer = live_offer(rt, now)
  if offer and not redis.call('ZSCORE', FENCED, token) then
    local slot, applicant, exp = offer_fields(offer)
    redis.call('HDEL', OFFERS, rt)
    redis.call('ZREM', OFFEXP, rt)
    redis.call('HSET', HOLDS, token, slot .. ' ' .. applicant .. ' ' .. exp)
    redis.call('ZADD', EXP, exp, token)
    local listed = holds_of(applicant)
    table.insert(listed, token)
    redis.call('HSET', HOLDER, applicant, table.concat(listed, ' '))
    return {'held', token, tonumber(slot), tonumber(exp)}
  end
  -- A fenced token's count was given back: the request is over, and a unit kept for it goes
  -- on now rather than when its offer lapses.
  decline(rt)
  redis.call('ZADD', FENCED, int(now + tonumber(ARGV[4])), token)
  return {'gone'}
end
if op == 'leave' then
  local had = 'none'
  if remove_waiting(rt) then
    had = 'waiting'
  end
  if decline(rt) then
    had = 'offer'
  end
  return had
end
return redis.error_reply('unknown standby op')
