-- read: a slot's counts, a hold or a booking by token, after reclaiming what lapsed.
-- ARGV[1] 'slot' (ARGV[2] slot) | 'range' (slots ARGV[2]..=ARGV[3], at most 4 096) |
--         'hold' (ARGV[2] token) | 'booking' (ARGV[2] token) | 'sweep' (ARGV[2] budget)
-- Returns {capacity, held, booked} or {} | {slot, capacity, held, booked, slot, ...} of the
--         open slots in the range | {slot, applicant, expires_ms} or {} | {slot, applicant}
--         or {} | the number of holds reclaimed.
local now = now_ms()
if ARGV[1] == 'sweep' then
  return reclaim(now, tonumber(ARGV[2]))
end
reclaim(now, 10000)
if ARGV[1] == 'slot' then
  return state(ARGV[2])
end
if ARGV[1] == 'range' then
  local out = {}
  local first = tonumber(ARGV[2])
  for slot = first, math.min(tonumber(ARGV[3]), first + 4095) do
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
if ARGV[1] == 'hold' then
  local rec = redis.call('HGET', KEYS[5], ARGV[2])
  if not rec then
    return {}
  end
  local slot, applicant, exp = string.match(rec, '^(%d+) (%d+) (%d+)$')
  return {tonumber(slot), applicant, tonumber(exp)}
end
local booking = redis.call('HGET', KEYS[7], ARGV[2])
if not booking then
  return {}
end
local slot, applicant = string.match(booking, '^(%d+) (%d+)$')
return {tonumber(slot), applicant}
