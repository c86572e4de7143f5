-- reserve: one hold for an applicant, on one slot or on the earliest slot with room.
-- ARGV[1] mode: 'slot' (ARGV[2] is the slot) or 'earliest' (slots ARGV[2]..=ARGV[3])
-- ARGV[4] applicant   ARGV[5] token of the new hold   ARGV[6] hold ttl in ms
-- ARGV[7] latest expiry allowed, ms (the applicant's count outlives the hold), 0: none
-- ARGV[8] 'peek': only return the applicant's live hold here, if any
-- Rule: never overbook: a hold is granted only while held + booked < capacity; an expired hold
-- never blocks (reclaimed first); a retried reserve returns the applicant's live hold.
-- Returns {'held', token, slot, expires_ms} or {'err', reason}.
local now = now_ms()
reclaim(now, 10000)
local applicant, token = ARGV[4], ARGV[5]
local first, last = tonumber(ARGV[2]), tonumber(ARGV[3])
local existing = redis.call('HGET', KEYS[8], applicant)
if existing then
  local rec = redis.call('HGET', KEYS[5], existing)
  if rec then
    local slot, _, exp = string.match(rec, '^(%d+) (%d+) (%d+)$')
    if tonumber(slot) >= first and tonumber(slot) <= last then
      return {'held', existing, tonumber(slot), tonumber(exp)}
    end
  end
end
if ARGV[8] == 'peek' then
  -- At the applicant's limit: a slot that does not exist is still the first thing to say.
  if (ARGV[1] == 'slot' and not redis.call('HGET', KEYS[1], ARGV[2]))
      or (ARGV[1] ~= 'slot' and redis.call('HLEN', KEYS[1]) == 0) then
    return {'err', 'unknown_slot'}
  end
  return {'err', 'none'}
end
local exp = now + tonumber(ARGV[6])
if tonumber(ARGV[7]) > 0 and exp > tonumber(ARGV[7]) then
  return {'err', 'stale'}
end
local slot
if ARGV[1] == 'slot' then
  slot = ARGV[2]
  local cap = redis.call('HGET', KEYS[1], slot)
  if not cap then
    return {'err', 'unknown_slot'}
  end
  if tonumber(cap) <= count(KEYS[2], slot) + count(KEYS[3], slot) then
    return {'err', 'full'}
  end
else
  if redis.call('HLEN', KEYS[1]) == 0 then
    return {'err', 'unknown_slot'} -- a branch with no slot at all, as in the in-process book
  end
  local found = redis.call('ZRANGEBYSCORE', KEYS[4], first, last, 'LIMIT', 0, 1)
  if #found == 0 then
    return {'err', 'none_available'}
  end
  slot = found[1]
end
redis.call('HINCRBY', KEYS[2], slot, 1)
redis.call('HSET', KEYS[5], token, slot .. ' ' .. applicant .. ' ' .. int(exp))
redis.call('ZADD', KEYS[6], int(exp), token)
redis.call('HSET', KEYS[8], applicant, token)
refresh_open(slot)
return {'held', token, tonumber(slot), exp}
