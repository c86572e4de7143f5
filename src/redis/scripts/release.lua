-- release: a live hold or a booking gives its unit back, to the part it came from.
-- ARGV[1] token
-- Returns {'released', 'hold' | 'booking', applicant} or {'err', 'unknown'}.
local now = now_ms()
reclaim(now, RECLAIM_BUDGET)
local token = ARGV[1]
local rec = redis.call('HGET', HOLDS, token)
if rec then
  local _, applicant = drop_hold(token, rec)
  return {'released', 'hold', applicant}
end
local booking = redis.call('HGET', BOOKINGS, token)
if booking then
  local slot, applicant, part = booking_fields(booking)
  give_back(slot, part, BOOKED) -- first: see drop_hold
  redis.call('HDEL', BOOKINGS, token)
  return {'released', 'booking', applicant}
end
return {'err', 'unknown'}
