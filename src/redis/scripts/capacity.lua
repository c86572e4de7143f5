-- set_capacity, close_slot and the channel quotas.
-- ARGV[1] op: 'set' (ARGV[2] slot, ARGV[3] capacity): the units a slot offers (creating the
--   slot, or opening a closed one). Lowering it below what is held and booked keeps those, and
--   grants nothing until it fits again; a slot with quotas is refused a capacity below their
--   sum. Returns {capacity, held, booked} as plain reservations see it.
-- | 'close' (ARGV[2] slot): takes an open slot out of readings and refuses new holds, keeping
--   its holds, bookings and quotas (a hold granted while open can still be confirmed). Returns
--   the counts before, or {} for a slot never opened.
-- | 'quota' (ARGV[2] slot, ARGV[3] channel, ARGV[4] quota): keeps units of an open slot for a
--   channel. Returns {capacity, held, booked}.
-- | 'open' (ARGV[2] slot): every quota of an open slot becomes 0 (what the channels left
--   unused is open to all). Returns {capacity, held, booked}.
-- | 'open_range' (ARGV[2] first, ARGV[3] last): 'open' for every open slot of the range that
--   keeps a quota, at most RANGE_MAX of them looked at. Returns {opened, next}: the call goes
--   on from `next` (past `last` once done).
-- A change that frees units (a capacity raised, a quota lowered or opened) keeps them for the
-- standby requests covering the slot first (serve).
-- Errors: {'err', 'unknown_slot'} (never opened, or closed), {'err', 'quotas', sum, capacity}
-- (the quotas would exceed the capacity). Nothing changes on an error.
local now = now_ms()
reclaim(now, RECLAIM_BUDGET)
local op, slot = ARGV[1], ARGV[2]
if op == 'close' then
  local before = counts_of(slot)
  if #before == 0 or redis.call('SISMEMBER', CLOSED, slot) == 1 then
    return before
  end
  redis.call('HSET', CAP, slot, 0)
  redis.call('SADD', CLOSED, slot)
  refresh_open(slot)
  return before
end
if op == 'set' then
  local q = quotas_of(slot)
  local capacity = tonumber(ARGV[3])
  if q and kept_of(q) > capacity then
    return {'err', 'quotas', kept_of(q), capacity}
  end
  redis.call('SREM', CLOSED, slot)
  if q then
    q.capacity = capacity
    save_quotas(slot, q)
  else
    redis.call('HSET', CAP, slot, capacity)
  end
  serve(slot)
  refresh_open(slot)
  return state(slot)
end

-- Every quota of slot `s` (its quotas `q`) becomes 0.
local function open_quotas(s, q)
  for _, c in ipairs(q.channels) do
    c[2] = 0
  end
  save_quotas(s, q)
  serve(s)
  refresh_open(s)
end

if op == 'open_range' then
  local first, last = tonumber(ARGV[2]), tonumber(ARGV[3])
  local found = redis.call('ZRANGEBYSCORE', KEPT, first, last, 'LIMIT', 0, RANGE_MAX)
  local opened = 0
  for _, s in ipairs(found) do
    if is_open_slot(s) then
      open_quotas(s, quotas_of(s))
      opened = opened + 1
    end
  end
  if #found < RANGE_MAX then
    return {opened, last + 1}
  end
  return {opened, tonumber(found[#found]) + 1}
end
if not is_open_slot(slot) then
  return {'err', 'unknown_slot'}
end
local q = quotas_of(slot)
if op == 'quota' then
  local channel, quota = tonumber(ARGV[3]), tonumber(ARGV[4])
  if not q then
    q = {capacity = tonumber(redis.call('HGET', CAP, slot)), channels = {}}
  end
  local c = channel_in(q, channel)
  local sum = kept_of(q) - c[2] + quota
  if sum > q.capacity then
    return {'err', 'quotas', sum, q.capacity}
  end
  c[2] = quota
  save_quotas(slot, q)
  serve(slot)
  refresh_open(slot)
  return state(slot)
end
if op == 'open' then
  if q and kept_of(q) > 0 then
    open_quotas(slot, q)
  end
  return state(slot)
end
return redis.error_reply('unknown capacity op')
