-- confirm: a live hold becomes a booking; confirming a booking again returns it.
-- ARGV[1] token
-- Rule: a hold whose time ran out is never confirmed (its unit is already free again). A hold
-- on a slot closed since it was granted is still confirmed.
-- Returns {'booked', slot, applicant} or {'err', 'expired' | 'unknown'}.
local now = now_ms()
reclaim(now, RECLAIM_BUDGET)
local token = ARGV[1]
local booking = redis.call('HGET', BOOKINGS, token)
if booking then
  local slot, applicant = string.match(booking, '^(%d+) (%d+)$')
  return {'booked', tonumber(slot), applicant}
end
local rec = redis.call('HGET', HOLDS, token)
if not rec then
  if redis.call('ZSCORE', LAPSED, token) then
    return {'err', 'expired'}
  end
  return {'err', 'unknown'}
end
local _, _, exp = string.match(rec, '^(%d+) (%d+) (%d+)$')
if tonumber(exp) <= now then
  drop_hold(token, rec)
  remember_lapsed(token, now)
  return {'err', 'expired'}
end
local slot, applicant = drop_hold(token, rec)
redis.call('HINCRBY', BOOKED, slot, 1)
redis.call('HSET', BOOKINGS, token, slot .. ' ' .. applicant)
refresh_open(slot)
return {'booked', tonumber(slot), applicant}
