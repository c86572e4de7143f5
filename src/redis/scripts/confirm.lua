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
  local slot, applicant = booking_fields(booking)
  return {'booked', tonumber(slot), applicant}
end
local rec = redis.call('HGET', HOLDS, token)
if not rec then
  if redis.call('ZSCORE', LAPSED, token) then
    return {'err', 'expired'}
  end
  return {'err', 'unknown'}
end
local _, _, exp = hold_fields(rec)
if tonumber(exp) <= now then
  drop_hold(token, rec)
  remember_lapsed(token, now)
  return {'err', 'expired'}
end
-- The unit stays taken, from the same part: the booking carries the hold's channel and
-- from-quota flag, so that a cancellation gives it back where it came from.
-- The count first: see drop_hold.
local slot = hold_fields(rec)
redis.call('HINCRBY', BOOKED, slot, 1)
redis.call('HINCRBY', HELD, slot, -1)
local _, applicant, part = unhold(token, rec)
redis.call('HSET', BOOKINGS, token, with_part(slot .. ' ' .. applicant, part))
refresh_open(slot)
return {'booked', tonumber(slot), applicant}
