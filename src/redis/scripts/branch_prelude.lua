-- Shared by every script on one branch (prepended to each, after the header the Rust side
-- writes: the key names below, in this order, and the constants RECLAIM_BUDGET, LAPSED_KEPT
-- and RANGE_MAX). Every key is under the branch's hash tag {ns:b:B}, so a script runs
-- atomically on the one shard that owns the branch.
-- CAP      HASH slot -> capacity (a slot exists once it has a capacity; a closed one has 0)
-- HELD     HASH slot -> live holds
-- BOOKED   HASH slot -> bookings
-- OPEN     ZSET slots with room (held + booked < capacity), score = slot
-- HOLDS    HASH token -> "slot applicant expires_ms"
-- EXP      ZSET token -> expires_ms of each live hold
-- BOOKINGS HASH token -> "slot applicant"
-- HOLDER   HASH applicant -> the tokens of its live holds at this branch, space-separated (at
--          most its limit, 1024)
-- LAPSED   ZSET token -> when its hold lapsed (the newest LAPSED_KEPT), to tell "expired"
--          from "unknown"
-- CLOSED   SET  slots closed by close_slot (capacity 0, not shown, no new holds) until
--          set_capacity opens them again
-- FENCED   ZSET token -> until when no hold is ever made under it (its applicant's count was
--          given back while it stood for nothing here: settle.lua)
-- Time is the server's (TIME), in milliseconds since the Unix epoch; holds expire by time here,
-- never by key expiry.

-- An exact integer as text (Lua's own number-to-text keeps only 14 digits).
local function int(v)
  return string.format('%.0f', v)
end

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

-- Ends the hold `token` (its record `rec`): its unit goes back to the slot.
local function drop_hold(token, rec)
  local slot, applicant = string.match(rec, '^(%d+) (%d+) ')
  redis.call('HINCRBY', HELD, slot, -1)
  redis.call('HDEL', HOLDS, token)
  redis.call('ZREM', EXP, token)
  unlist(applicant, token)
  refresh_open(slot)
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
  return #due
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

