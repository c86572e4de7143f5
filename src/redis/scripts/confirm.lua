-- confirm: a live hold becomes a booking; confirming a booking again returns it.
-- ARGV[1] token
-- Rule: a hold whose time ran out is never confirmed (its unit is already free again).
-- Returns {'booked', slot, applicant} or {'err', 'expired' | 'unknown'}.
local now = now_ms()
reclaim(now, 10000)
local token = ARGV[1]
local booking = redis.call('HGET', KEYS[7], token)
if booking then
  local slot, applicant = string.match(booking, '^(%d+) (%d+)$')
  return {'booked', tonumber(slot), applicant}
end
local rec = redis.call('HGET', KEYS[5], token)
if not rec then
  if redis.call('ZSCORE', KEYS[9], token) then
    return {'err', 'expired'}
  end
  return {'err', 'unknown'}
end
local _, _, exp = string.match(rec, '^(%d+) (%d+) (%d+)$')
if tonumber(exp) <= now then
  drop_hold(token, rec)
  redis.call('ZADD', KEYS[9], int(now), token)
  return {'err', 'expired'}
end
local slot, applicant = drop_hold(token, rec)
redis.call('HINCRBY', KEYS[3], slot, 1)
redis.call('HSET', KEYS[7], token, slot .. ' ' .. applicant)
refresh_open(slot)
return {'booked', tonumber(slot), applicant}
