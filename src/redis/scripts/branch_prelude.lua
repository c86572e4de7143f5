-- Shared by every script on one branch (prepended to each). Every key is under the branch's
-- hash tag {ns:b:B}, so a script runs atomically on the one shard that owns the branch.
-- KEYS[1] cap      HASH slot -> capacity (a slot exists once it has a capacity)
-- KEYS[2] held     HASH slot -> live holds
-- KEYS[3] booked   HASH slot -> bookings
-- KEYS[4] open     ZSET slots with room (held + booked < capacity), score = slot
-- KEYS[5] holds    HASH token -> "slot applicant expires_ms"
-- KEYS[6] exp      ZSET token -> expires_ms of each live hold
-- KEYS[7] bookings HASH token -> "slot applicant"
-- KEYS[8] holder   HASH applicant -> token of its live hold at this branch
-- KEYS[9] lapsed   ZSET token -> when its hold lapsed (the newest 100 000), to tell "expired"
--                  from "unknown"
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

-- Keeps `open` true to the counts of one slot.
local function refresh_open(slot)
  local cap = redis.call('HGET', KEYS[1], slot)
  if cap and tonumber(cap) > count(KEYS[2], slot) + count(KEYS[3], slot) then
    redis.call('ZADD', KEYS[4], slot, slot)
  else
    redis.call('ZREM', KEYS[4], slot)
  end
end

-- Ends the hold `token` (its record `rec`): its unit goes back to the slot.
local function drop_hold(token, rec)
  local slot, applicant = string.match(rec, '^(%d+) (%d+) ')
  redis.call('HINCRBY', KEYS[2], slot, -1)
  redis.call('HDEL', KEYS[5], token)
  redis.call('ZREM', KEYS[6], token)
  if redis.call('HGET', KEYS[8], applicant) == token then
    redis.call('HDEL', KEYS[8], applicant)
  end
  refresh_open(slot)
  return slot, applicant
end

-- Reclaims the holds whose time ran out, at most `budget` of them (bounded work per call; the
-- rest on the next calls, or by sweep). Returns how many.
local function reclaim(now, budget)
  local due = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', now, 'LIMIT', 0, budget)
  for _, token in ipairs(due) do
    local rec = redis.call('HGET', KEYS[5], token)
    if rec then
      drop_hold(token, rec)
    else
      redis.call('ZREM', KEYS[6], token)
    end
    redis.call('ZADD', KEYS[9], int(now), token)
  end
  if #due > 0 then
    redis.call('ZREMRANGEBYRANK', KEYS[9], 0, -100001)
  end
  return #due
end

local function state(slot)
  local cap = redis.call('HGET', KEYS[1], slot)
  if not cap then
    return {}
  end
  return {tonumber(cap), count(KEYS[2], slot), count(KEYS[3], slot)}
end

