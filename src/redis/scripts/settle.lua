-- settle: what a token counted against an applicant's limit stands for on its branch, so that
-- a count left behind by a call that failed half-way can be given back.
-- ARGV[1] token   ARGV[2] how long a fence lasts, ms (longer than any count of a reservation
-- in progress can still let a hold be made)
-- Rule: a token with neither a live hold nor a booking here is fenced before its count may be
-- given back: no hold is made under it afterwards, so a reservation still in progress under
-- it is refused instead of making a hold that no count covers.
-- Returns 'hold' (a live hold, or a standby request waiting or offered a unit here), 'booking'
-- or 'gone' (now fenced).
local now = now_ms()
reclaim(now, RECLAIM_BUDGET)
redis.call('ZREMRANGEBYSCORE', FENCED, '-inf', now)
local token = ARGV[1]
if redis.call('HEXISTS', HOLDS, token) == 1 then
  return 'hold'
end
if redis.call('HEXISTS', BOOKINGS, token) == 1 then
  return 'booking'
end
-- A standby request's own count, while it waits here or an offer here is kept for it.
if redis.call('ZSCORE', SBLINE, token) or redis.call('HEXISTS', OFFERS, token) == 1 then
  return 'hold'
end
redis.call('ZADD', FENCED, int(now + tonumber(ARGV[2])), token)
return 'gone'
