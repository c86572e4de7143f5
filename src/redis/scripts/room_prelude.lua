-- Shared by the room's calls (prepended to the call script, after the header the Rust side
-- writes: the key names below, in this order, and the constants EVENT_BUDGET, ENDED_KEPT and
-- PLACE_SKEW_US).
-- Every key is under the room's hash tag {ns:room}: the line is one ordered structure, so the
-- room lives on one shard.
-- CFG       HASH rate, burst, max_active, max_waiting, checkin_us, pass_ttl_us,
--                claim_us (0: no claims), paused, closed
-- STATE     HASH credit (admissions owed, in millionths), last_us, seq,
--                admitted_total, dropped_total, left_total, ended_evicted_us
-- LINE      ZSET token -> sequence number (FIFO: rank + 1 is the place in line)
-- DEADLINES ZSET token -> check-in deadline (us) of each waiting visitor
-- VISITORS  HASH visitor -> token (waiting or admitted)
-- TICKETS   HASH token -> visitor, of each waiting visitor
-- PASSES    HASH token -> "visitor admitted_us expires_us claimed"
-- LAPSES    ZSET token -> when the pass lapses (its claim deadline while unclaimed)
-- ENDED     ZSET token -> when it lapsed (minus when, if finished; the newest ENDED_KEPT),
--                to tell "expired" and to refuse taking an ended place back
-- Time is the server's (TIME) in microseconds since the Unix epoch (exact in Lua's doubles).
-- The admission rate is exact integer arithmetic: `credit` counts millionths of an admission;
-- each microsecond adds `rate` of them, so one admission is owed every 1e6 / rate us.

local MILLION = 1000000

-- An exact integer as text (Lua's own number-to-text keeps 14 digits; times here have 16).
local function int(v)
  return string.format('%.0f', v)
end

local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * MILLION + tonumber(t[2])
end

local function cfg(field)
  return tonumber(redis.call('HGET', CFG, field) or '0')
end

local function st(field)
  return tonumber(redis.call('HGET', STATE, field) or '0')
end

-- Remembers an ended token: lapsed (score: when) or finished by its holder (score: minus
-- when), so a poll says "expired" only for the first, and a place is never taken back by either.
-- Past ENDED_KEPT, the lowest are forgotten, and STATE's ended_evicted_us keeps the latest
-- time among them, so that no place text issued before it can take a place back.
local function forget(token, now, finished)
  redis.call('ZADD', ENDED, int(finished and -now or now), token)
  local over = redis.call('ZCARD', ENDED) - ENDED_KEPT
  if over > 0 then
    local gone = redis.call('ZRANGE', ENDED, 0, over - 1, 'WITHSCORES')
    local latest = st('ended_evicted_us')
    for i = 2, #gone, 2 do
      latest = math.max(latest, math.abs(tonumber(gone[i])))
    end
    redis.call('HSET', STATE, 'ended_evicted_us', int(latest))
    redis.call('ZREMRANGEBYRANK', ENDED, 0, over - 1)
  end
end

-- Passes past their time (or unclaimed past their claim deadline) lapse.
local function lapse_passes(now)
  local due = redis.call('ZRANGEBYSCORE', LAPSES, '-inf', now, 'LIMIT', 0, EVENT_BUDGET)
  for _, token in ipairs(due) do
    local rec = redis.call('HGET', PASSES, token)
    if rec then
      local visitor = string.match(rec, '^(%d+) ')
      redis.call('HDEL', PASSES, token)
      if redis.call('HGET', VISITORS, visitor) == token then
        redis.call('HDEL', VISITORS, visitor)
      end
    end
    redis.call('ZREM', LAPSES, token)
    forget(token, now)
  end
end

-- Waiting visitors silent past their deadline leave the line.
local function lapse_waiting(now)
  local due = redis.call('ZRANGEBYSCORE', DEADLINES, '-inf', now, 'LIMIT', 0, EVENT_BUDGET)
  for _, token in ipairs(due) do
    local visitor = redis.call('HGET', TICKETS, token)
    redis.call('ZREM', LINE, token)
    redis.call('ZREM', DEADLINES, token)
    redis.call('HDEL', TICKETS, token)
    if visitor and redis.call('HGET', VISITORS, visitor) == token then
      redis.call('HDEL', VISITORS, visitor)
    end
    redis.call('HINCRBY', STATE, 'dropped_total', 1)
    forget(token, now)
  end
end

-- Admits from the front of the line what the rate, the burst and max_active allow.
-- Rule: admissions in any window of length T <= burst + rate * T (credit never exceeds the
-- burst while nothing is owed to waiting visitors).
local function admit(now)
  local rate, burst = cfg('rate'), cfg('burst')
  local last = st('last_us')
  local credit = st('credit')
  local waiting = redis.call('ZCARD', LINE)
  if cfg('paused') == 1 then
    redis.call('HSET', STATE, 'last_us', int(now))
    return
  end
  local elapsed = math.max(0, now - last)
  -- What can ever be spent is bounded by the line plus the burst: cap the elapsed time so
  -- the products stay exact integers.
  local cap = math.floor(((waiting + burst) * MILLION) / rate) + 1
  credit = credit + math.min(elapsed, cap) * rate
  local room = math.max(0, cfg('max_active') - redis.call('HLEN', PASSES))
  local n = math.min(math.floor(credit / MILLION), waiting, room, EVENT_BUDGET)
  if n > 0 then
    local front = redis.call('ZRANGE', LINE, 0, n - 1)
    local ttl, claim = cfg('pass_ttl_us'), cfg('claim_us')
    -- Checked before the first write: an entry of the line with no visitor (written by
    -- something else) is taken out of the line, not admitted half-way.
    local visitors = {}
    for i, token in ipairs(front) do
      visitors[i] = redis.call('HGET', TICKETS, token)
    end
    for i, token in ipairs(front) do
      if not visitors[i] then
        redis.call('ZREM', LINE, token)
        redis.call('ZREM', DEADLINES, token)
        n = n - 1
        waiting = waiting - 1
      end
    end
    for i, token in ipairs(front) do
      local visitor = visitors[i]
      if visitor then
        local expires = now + ttl
        redis.call('HSET', PASSES, token, visitor .. ' ' .. int(now) .. ' ' .. int(expires) .. ' ' .. (claim > 0 and 0 or 1))
        redis.call('ZADD', LAPSES, int((claim > 0) and math.min(now + claim, expires) or expires), token)
        redis.call('ZREM', LINE, token)
        redis.call('ZREM', DEADLINES, token)
        redis.call('HDEL', TICKETS, token)
      end
    end
    redis.call('HINCRBY', STATE, 'admitted_total', n)
    credit = credit - n * MILLION
    waiting = waiting - n
  end
  -- Credit beyond the burst is kept only while it is owed to visitors still in line that the
  -- budget left for the next call.
  if waiting == 0 or n < math.min(waiting, EVENT_BUDGET) then
    credit = math.min(credit, burst * MILLION)
  end
  redis.call('HSET', STATE, 'credit', int(credit), 'last_us', int(now))
end

local function advance(now)
  lapse_passes(now)
  lapse_waiting(now)
  admit(now)
end

-- The expected wait, in microseconds, of the visitor at `position` (the rate alone).
local function eta_us(position)
  local owed = position * MILLION - st('credit')
  if owed <= 0 then
    return 0
  end
  return math.ceil(owed / cfg('rate'))
end

-- The answer for a token: {'admitted', token, visitor, expires_us, claimed} |
-- {'waiting', token, position, eta_us, seq} | nil
local function entry(token)
  local rec = redis.call('HGET', PASSES, token)
  if rec then
    local visitor, _, expires, claimed = string.match(rec, '^(%d+) (%d+) (%d+) (%d)$')
    local lapses = redis.call('ZSCORE', LAPSES, token)
    return {'admitted', token, visitor, tonumber(lapses or expires), tonumber(claimed)}
  end
  local rank = redis.call('ZRANK', LINE, token)
  if not rank then
    return nil
  end
  local position = rank + 1
  return {'waiting', token, position, eta_us(position), tonumber(redis.call('ZSCORE', LINE, token))}
end

local function check_in(token, now)
  redis.call('ZADD', DEADLINES, int(now + cfg('checkin_us')), token)
end

