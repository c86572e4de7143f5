-- release: a live hold or a booking gives its unit back.
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
  local slot, applicant = string.match(booking, '^(%d+) (%d+)$')
  redis.call('HINCRBY', BOOKED, slot, -1)
  redis.call('HDEL', BOOKINGS, token)
  refresh_open(slot)
  return {'released', 'booking', applicant}
end
return {'err', 'unknown'}
