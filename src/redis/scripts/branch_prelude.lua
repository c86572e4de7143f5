-- Shared by every script on one branch (prepended to each, after the header the Rust side
-- writes: the key names below, in this order, and the constants RECLAIM_BUDGET, LAPSED_KEPT
-- and RANGE_MAX). Every key is under the branch's hash tag {ns:b:B}, so a script runs
-- atomically on the one shard that owns the branch.
-- CAP      HASH slot -> capacity (a slot exists once it has a capacity; a closed one has 0)
-- HELD     HASH slot -> live holds
-- BOOKED   HASH slot -> bookings
-- OPEN     ZSET slots with room (held + booked < capacity), score = slot
-- HOLDS    HASH token -> "slot applicant expires_ms[ channel from_quota]"
-- EXP      ZSET token -> expires_ms of each live hold
-- BOOKINGS HASH token -> "slot applicant[ channel from_quota]" (a record with no channel, as
--          every record written before channels existed, took its unit from the open part)
-- HOLDER   HASH applicant -> the tokens of its live holds at this branch, space-separated (at
--          most its limit, 1024)
-- LAPSED   ZSET token -> when its hold lapsed (the newest LAPSED_KEPT), to tell "expired"
--          from "unknown"
-- CLOSED   SET  slots closed by close_slot (capacity 0, not shown, no new holds) until
--          set_capacity opens them again
-- FENCED   ZSET token -> until when no hold is ever made under it (its applicant's count was
--          given back while it stood for nothing here: settle.lua)
-- QUOTAS   HASH slot -> "capacity channel quota from_quota taken ..." of a slot with channel
--          quotas (from its first set_channel_quota on): its whole capacity, then per channel,
--          by channel number, the units kept for it, those it took from them, and all it took.
--          CAP then holds the open part plus what is taken: capacity - sum(max(quota -
--          from_quota, 0)) (0 while closed), so every plain path reads CAP alone.
-- KEPT     ZSET slots whose quotas add up to more than 0, score = slot (open_channel_quotas_in)
-- SBLINE, SBREQ, OFFERS, OFFEXP, SBIDX: the standby line (standby_prelude.lua)
-- Time is the server's (TIME), in milliseconds since the Unix epoch; holds expire by time here,
-- never by key expiry.

-- An exact integer as text (Lua's own number-to-text keeps only 14 digits).
local function int(v)
  return string.format('%.0f', v)
end

-- Defined in standby_prelude.lua: serve(slot) keeps units a slot has free for the standby
-- requests covering it; reclaim_offers(now, budget) passes on the offers that lapsed.
local serve, reclaim_offers

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function count(key, slot)
  return tonumber(redis.call('HGET', key, slot) or '0')
end

-- Keeps OPEN true to the counts of one slot.
local function refresh_open(slot)
  local cap = redis.call('HGET', CAP, slot)
  if cap and tonumber(cap) > count(HELD, slot) + count(BOOKED, slot) then
    redis.call('ZADD', OPEN, slot, slot)
  else
    redis.call('ZREM', OPEN, slot)
  end
end

-- The tokens of the applicant's live holds at this branch (HOLDER's list), in a table.
local function holds_of(applicant)
  local out = {}
  for t in string.gmatch(redis.call('HGET', HOLDER, applicant) or '', '%S+') do
    table.insert(out, t)
  end
  return out
end

-- Takes `token` out of the applicant's list of live holds.
local function unlist(applicant, token)
  local kept = {}
  for _, t in ipairs(holds_of(applicant)) do
    if t ~= token then
      table.insert(kept, t)
    end
  end
  if #kept == 0 then
    redis.call('HDEL', HOLDER, applicant)
  else
    redis.call('HSET', HOLDER, applicant, table.concat(kept, ' '))
  end
end

-- A hold record: slot, applicant, expires_ms (numbers as text) and its part: '' (the open
-- part) or 'channel from_quota' (from_quota '1' or '0'). A record written before channels
-- existed has no part: the open part.
local function hold_fields(rec)
  local slot, applicant, exp, rest = string.match(rec, '^(%d+) (%d+) (%d+)(.*)$')
  return slot, applicant, exp, string.match(rest or '', '^ (%d+ [01])$') or ''
end

-- A booking record: slot, applicant and its part, as a hold's.
local function booking_fields(rec)
  local slot, applicant, rest = string.match(rec, '^(%d+) (%d+)(.*)$')
  return slot, applicant, string.match(rest or '', '^ (%d+ [01])$') or ''
end

-- A record's text with its part (none for the open part).
local function with_part(text, part)
  if part == '' then
    return text
  end
  return text .. ' ' .. part
end

-- The quotas of a slot, or nil: {capacity = C, channels = {{channel, quota, from_quota,
-- taken}, ...}} by channel number.
local function quotas_of(slot)
  local text = redis.call('HGET', QUOTAS, slot)
  if not text then
    return nil
  end
  local n = {}
  for v in string.gmatch(text, '%d+') do
    table.insert(n, tonumber(v))
  end
  local q = {capacity = n[1] or 0, channels = {}}
  for i = 2, #n - 3, 4 do
    table.insert(q.channels, {n[i], n[i + 1], n[i + 2], n[i + 3]})
  end
  return q
end

-- Units kept for the channels and not used yet: sum(max(quota - from_quota, 0)).
local function unused(q)
  local sum = 0
  for _, c in ipairs(q.channels) do
    sum = sum + math.max(c[2] - c[3], 0)
  end
  return sum
end

-- The sum of the quotas still kept.
local function kept_of(q)
  local sum = 0
  for _, c in ipairs(q.channels) do
    sum = sum + c[2]
  end
  return sum
end

-- The counts of `channel` in `q`, created at zero (in channel order) if new.
local function channel_in(q, channel)
  for i, c in ipairs(q.channels) do
    if c[1] == channel then
      return c
    elseif c[1] > channel then
      local new = {channel, 0, 0, 0}
      table.insert(q.channels, i, new)
      return new
    end
  end
  local new = {channel, 0, 0, 0}
  table.insert(q.channels, new)
  return new
end

-- Writes a slot's quotas back, and CAP to match: the open part plus what is taken (0 while the
-- slot is closed).
local function save_quotas(slot, q)
  local parts = {tostring(q.capacity)}
  for _, c in ipairs(q.channels) do
    table.insert(parts, c[1] .. ' ' .. c[2] .. ' ' .. c[3] .. ' ' .. c[4])
  end
  redis.call('HSET', QUOTAS, slot, table.concat(parts, ' '))
  if kept_of(q) > 0 then
    redis.call('ZADD', KEPT, slot, slot)
  else
    redis.call('ZREM', KEPT, slot)
  end
  if redis.call('SISMEMBER', CLOSED, slot) == 1 then
    redis.call('HSET', CAP, slot, 0)
  else
    redis.call('HSET', CAP, slot, math.max(q.capacity - unused(q), 0))
  end
end

-- Gives one unit of `slot` back to the part it came from: `field` is HELD or BOOKED. A unit
-- taken from a channel's quota goes back to that quota while the channel is within it (CAP goes
-- down with the count), and to the open part once the quotas were opened or lowered below what
-- the channel took.
-- A unit that reaches the open part goes to the earliest standby request covering the slot, if
-- one waits (serve).
local function give_back(slot, part, field)
  redis.call('HINCRBY', field, slot, -1)
  local channel, from_quota = string.match(part, '^(%d+) ([01])$')
  local q = channel and quotas_of(slot)
  if q then
    local c = channel_in(q, tonumber(channel))
    c[4] = math.max(c[4] - 1, 0)
    if from_quota == '1' then
      c[3] = math.max(c[3] - 1, 0)
    end
    save_quotas(slot, q)
  end
  serve(slot)
  refresh_open(slot)
end

-- Takes the hold `token` (its record `rec`) off the books without giving its unit back (a
-- confirmation keeps the unit). Returns its slot, applicant and part.
local function unhold(token, rec)
  local slot, applicant, _, part = hold_fields(rec)
  redis.call('HDEL', HOLDS, token)
  redis.call('ZREM', EXP, token)
  unlist(applicant, token)
  return slot, applicant, part
end

-- Ends the hold `token` (its record `rec`): its unit goes back to the part it came from. The
-- count first: a server at its maxmemory refuses that write (HINCRBY may grow memory) before
-- any other, so the script fails whole instead of running on (Redis lets a script that has
-- written go on).
local function drop_hold(token, rec)
  local slot, applicant, _, part = hold_fields(rec)
  give_back(slot, part, HELD)
  unhold(token, rec)
  return slot, applicant
end

-- Remembers that `token` lapsed at `now`, keeping the newest LAPSED_KEPT.
local function remember_lapsed(token, now)
  redis.call('ZADD', LAPSED, int(now), token)
  redis.call('ZREMRANGEBYRANK', LAPSED, 0, -(LAPSED_KEPT + 1))
end

-- Reclaims the holds whose time ran out, at most `budget` of them (bounded work per call; the
-- rest on the next calls, or by sweep). Returns how many.
local function reclaim(now, budget)
  local due = redis.call('ZRANGEBYSCORE', EXP, '-inf', now, 'LIMIT', 0, budget)
  for _, token in ipairs(due) do
    local rec = redis.call('HGET', HOLDS, token)
    if rec then
      drop_hold(token, rec)
    else
      redis.call('ZREM', EXP, token)
    end
    redis.call('ZADD', LAPSED, int(now), token)
  end
  if #due > 0 then
    redis.call('ZREMRANGEBYRANK', LAPSED, 0, -(LAPSED_KEPT + 1))
  end
  return #due + reclaim_offers(now, budget - #due)
end

-- Whether a slot exists and is not closed.
local function is_open_slot(slot)
  return redis.call('HEXISTS', CAP, slot) == 1 and redis.call('SISMEMBER', CLOSED, slot) == 0
end

-- {capacity, held, booked} of an existing slot (closed or not), or {}.
local function counts_of(slot)
  local cap = redis.call('HGET', CAP, slot)
  if not cap then
    return {}
  end
  return {tonumber(cap), count(HELD, slot), count(BOOKED, slot)}
end

-- {capacity, held, booked} of an open slot, or {} (never opened, or closed).
local function state(slot)
  if redis.call('SISMEMBER', CLOSED, slot) == 1 then
    return {}
  end
  return counts_of(slot)
end

