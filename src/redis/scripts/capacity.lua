-- set_capacity and close_slot.
-- ARGV[1] op: 'set' (ARGV[2] slot, ARGV[3] capacity): the units a slot offers (creating the
--   slot, or opening a closed one). Lowering it below what is held and booked keeps those, and
--   grants nothing until it fits again. Returns {capacity, held, booked}.
-- | 'close' (ARGV[2] slot): takes an open slot out of readings and refuses new holds, keeping
--   its holds and bookings (a hold granted while open can still be confirmed). Returns the
--   counts before, or {} for a slot never opened.
local now = now_ms()
reclaim(now, RECLAIM_BUDGET)
local slot = ARGV[2]
if ARGV[1] == 'close' then
  local before = counts_of(slot)
  if #before == 0 or redis.call('SISMEMBER', CLOSED, slot) == 1 then
    return before
  end
  redis.call('HSET', CAP, slot, 0)
  redis.call('SADD', CLOSED, slot)
  refresh_open(slot)
  return before
end
redis.call('SREM', CLOSED, slot)
redis.call('HSET', CAP, slot, ARGV[3])
refresh_open(slot)
return state(slot)
