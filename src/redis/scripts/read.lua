-- read: a slot's counts, the first slot with room, a hold or a booking by token, after
-- reclaiming what lapsed; or a sweep.
-- ARGV[1] 'slot' (ARGV[2] slot) | 'range' (slots ARGV[2]..=ARGV[3], at most RANGE_MAX) |
--         'first' (slots ARGV[2]..=ARGV[3]) | 'hold' (ARGV[2] token) |
--         'booking' (ARGV[2] token) | 'sweep' (ARGV[2] budget) | 'quotas' (ARGV[2] slot)
-- Returns {capacity, held, booked} or {} | {slot, capacity, held, booked, slot, ...} of the
--         open slots in the range | {'slot', s} the lowest slot with room in the range, or
--         {'none'}, or {'unknown'} for a branch with no slot at all | {slot, applicant,
--         expires_ms} or {} | {slot, applicant} or {} | the number of holds reclaimed |
--         {capacity, channel, quota, from_quota, taken, ...} or {} for a slot without quotas.
local now = now_ms()
local op = ARGV[1]
if op == 'sweep' then
  return reclaim(now, tonumber(ARGV[2]))
end
reclaim(now, RECLAIM_BUDGET)
if op == 'slot' then
  return state(ARGV[2])
end
if op == 'range' then
  local out = {}
  local first = tonumber(ARGV[2])
  for slot = first, math.min(tonumber(ARGV[3]), first + RANGE_MAX - 1) do
    local s = state(tostring(slot))
    if #s == 3 then
      table.insert(out, slot)
      table.insert(out, s[1])
      table.insert(out, s[2])
      table.insert(out, s[3])
    end
  end
  return out
end
if op == 'first' then
  if redis.call('HLEN', CAP) == 0 then
    return {'unknown'}
  end
  local found = redis.call('ZRANGEBYSCORE', OPEN, ARGV[2], ARGV[3], 'LIMIT', 0, 1)
  if #found == 0 then
    return {'none'}
  end
  return {'slot', tonumber(found[1])}
end
if op == 'hold' then
  local rec = redis.call('HGET', HOLDS, ARGV[2])
  if not rec then
    return {}
  end
  local slot, applicant, exp = hold_fields(rec)
  return {tonumber(slot), applicant, tonumber(exp)}
end
if op == 'booking' then
  local booking = redis.call('HGET', BOOKINGS, ARGV[2])
  if not booking then
    return {}
  end
  local slot, applicant = booking_fields(booking)
  return {tonumber(slot), applicant}
end
if op == 'quotas' then
  local q = quotas_of(ARGV[2])
  if not q then
    return {}
  end
  local out = {q.capacity}
  for _, c in ipairs(q.channels) do
    for _, v in ipairs(c) do
      table.insert(out, v)
    end
  end
  return out
end
return redis.error_reply('unknown read op')
