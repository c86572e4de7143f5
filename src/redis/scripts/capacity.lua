-- set_capacity: the units a slot offers (creating the slot). Lowering it below what is held and
-- booked keeps those, and grants nothing until it fits again.
-- ARGV[1] slot   ARGV[2] capacity
-- Returns {capacity, held, booked}.
local now = now_ms()
reclaim(now, 10000)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
refresh_open(ARGV[1])
return state(ARGV[1])
