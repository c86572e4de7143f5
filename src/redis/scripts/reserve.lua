-- reserve: one hold for an applicant, on one slot or on the earliest slot with room.
-- ARGV[1] mode: 'slot' (ARGV[2] is the slot) or 'earliest' (slots ARGV[2]..=ARGV[3])
-- ARGV[4] applicant   ARGV[5] token of the new hold   ARGV[6] hold ttl in ms
-- ARGV[7] latest expiry allowed, ms (the applicant's count outlives the hold), 0: none
-- ARGV[8] 'peek': only return the applicant's live hold here, if any
-- ARGV[9] channel (mode 'slot' only; '' for none): taken from the channel's quota while it has
--   units left there and the slot as a whole has room, else from the open part
-- Rule: never overbook: a hold is granted only while held + booked < capacity; an expired hold
-- never blocks (reclaimed first); a retried reserve returns the applicant's live hold; a
-- closed slot is as one never opened.
-- Returns {'held', token, slot, expires_ms} or {'err', reason}.
local now = now_ms()
reclaim(now, RECLAIM_BUDGET)
local mode, applicant, token = ARGV[1], ARGV[4], ARGV[5]
local first, last = tonumber(ARGV[2]), tonumber(ARGV[3])
-- Any of the applicant's live holds here in the range is the answer (a retry, whatever the
-- applicant's limit: never a second unit for the same request).
local listed = holds_of(applicant)
for _, existing in ipairs(listed) do
  local rec = redis.call('HGET', HOLDS, existing)
  if rec then
    local slot, _, exp = hold_fields(rec)
    if tonumber(slot) >= first and tonumber(slot) <= last then
      return {'held', existing, tonumber(slot), tonumber(exp)}
    end
  end
end
if ARGV[8] == 'peek' then
  -- At the applicant's limit: a slot that does not exist is still the first thing to say (a
  -- closed one exists: the limit is, as in-process).
  if (mode == 'slot' and redis.call('HEXISTS', CAP, ARGV[2]) == 0)
      or (mode ~= 'slot' and redis.call('HLEN', CAP) == 0) then
    return {'err', 'unknown_slot'}
  end
  return {'err', 'none'}
end
local exp = now + tonumber(ARGV[6])
-- A fenced token's count was given back: a hold under it would not be counted.
if (tonumber(ARGV[7]) > 0 and exp > tonumber(ARGV[7])) or redis.call('ZSCORE', FENCED, token) then
  return {'err', 'stale'}
end
local slot
local part = ''
if mode == 'slot' then
  slot = ARGV[2]
  if not is_open_slot(slot) then
    return {'err', 'unknown_slot'}
  end
  local taken = count(HELD, slot) + count(BOOKED, slot)
  local q = (ARGV[9] or '') ~= '' and quotas_of(slot)
  local c = q and channel_in(q, tonumber(ARGV[9]))
  if c and c[3] < c[2] then
    -- From the quota: the slot as a whole must have room (rule 1 after a lowering); CAP rises
    -- with the count, so the open part stays as it was.
    if taken >= q.capacity then
      return {'err', 'full'}
    end
    c[3] = c[3] + 1
    part = ARGV[9] .. ' 1'
  elseif tonumber(redis.call('HGET', CAP, slot)) <= taken then
    return {'err', 'full'}
  elseif c then
    part = ARGV[9] .. ' 0'
  end
  if c then
    c[4] = c[4] + 1
    save_quotas(slot, q)
  end
else
  if redis.call('HLEN', CAP) == 0 then
    return {'err', 'unknown_slot'} -- a branch with no slot at all, as in the in-process book
  end
  local found = redis.call('ZRANGEBYSCORE', OPEN, first, last, 'LIMIT', 0, 1)
  if #found == 0 then
    return {'err', 'none_available'}
  end
  slot = found[1]
end
redis.call('HINCRBY', HELD, slot, 1)
redis.call('HSET', HOLDS, token, with_part(slot .. ' ' .. applicant .. ' ' .. int(exp), part))
redis.call('ZADD', EXP, int(exp), token)
table.insert(listed, token)
redis.call('HSET', HOLDER, applicant, table.concat(listed, ' '))
refresh_open(slot)
return {'held', token, tonumber(slot), exp}
