-- Shared by every script of one room (prepended to each). Every key is under the room's hash
-- tag {ns:room}: the line is one ordered structure, so the room lives on one shard.
-- KEYS[1] cfg       HASH rate, burst, max_active, max_waiting, checkin_us, pass_ttl_us,
--                        claim_us (0: no claims), paused, closed
-- KEYS[2] state     HASH credit (admissions owed, in millionths), last_us, seq,
--                        admitted_total, dropped_total, left_total
-- KEYS[3] line      ZSET token -> sequence number (FIFO: rank + 1 is the place in line)
-- KEYS[4] deadlines ZSET token -> check-in deadline (us) of each waiting visitor
-- KEYS[5] visitors  HASH visitor -> token (waiting or admitted)
-- KEYS[6] tickets   HASH token -> visitor, of each waiting visitor
-- KEYS[7] passes    HASH token -> "visitor admitted_us expires_us claimed"
-- KEYS[8] lapses    ZSET token -> when the pass lapses (its claim deadline while unclaimed)
-- KEYS[9] ended     ZSET token -> when it lapsed (minus when, if finished; the newest
--                   100 000), to tell "expired" and to refuse taking an ended place back
-- Time is the server's (TIME) in microseconds since the Unix epoch (exact in Lua's doubles).
-- The admission rate is exact integer arithmetic: `credit` counts millionths of an admission;
-- each microsecond adds `rate` of them, so one admission is owed every 1e6 / rate us.

local MILLION = 1000000
local BUDGET = 4096 -- events handled per call at most; the rest on the next calls

-- An exact integer as text (Lua's own number-to-text keeps 14 digits; times here have 16).
local function int(v)
  return string.format('%.0f', v)
end

local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * MILLION + tonumber(t[2])
end

local function cfg(field)
  return tonumber(redis.call('HGET', KEYS[1], field) or '0')
end

local function st(field)
  return tonumber(redis.call('HGET', KEYS[2], field) or '0')
end

-- Remembers an ended token: lapsed (score: when) or finished by its holder (score: minus
-- when), so a poll says "expired" only for the first, and a place is never taken back by either.
local function forget(token, now, finished)
  redis.call('ZADD', KEYS[9], int(finished and -now or now), token)
  redis.call('ZREMRANGEBYRANK', KEYS[9], 0, -100001)
end

-- Passes past their time (or unclaimed past their claim deadline) lapse.
local function lapse_passes(now)
  local due = redis.call('ZRANGEBYSCORE', KEYS[8], '-inf', now, 'LIMIT', 0, BUDGET)
  for _, token in ipairs(due) do
    local rec = redis.call('HGET', KEYS[7], token)
    if rec then
      local visitor = string.match(rec, '^(%d+) ')
      redis.call('HDEL', KEYS[7], token)
      if redis.call('HGET', KEYS[5], visitor) == token then
        redis.call('HDEL', KEYS[5], visitor)
      end
    end
    redis.call('ZREM', KEYS[8], token)
    forget(token, now)
  end
end

-- Waiting visitors silent past their deadline leave the line.
local function lapse_waiting(now)
  local due = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, BUDGET)
  for _, token in ipairs(due) do
    local visitor = redis.call('HGET', KEYS[6], token)
    redis.call('ZREM', KEYS[3], token)
    redis.call('ZREM', KEYS[4], token)
    redis.call('HDEL', KEYS[6], token)
    if visitor and redis.call('HGET', KEYS[5], visitor) == token then
      redis.call('HDEL', KEYS[5], visitor)
    end
    redis.call('HINCRBY', KEYS[2], 'dropped_total', 1)
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
  local waiting = redis.call('ZCARD', KEYS[3])
  if cfg('paused') == 1 then
    redis.call('HSET', KEYS[2], 'last_us', int(now))
    return
  end
  local elapsed = math.max(0, now - last)
  -- What can ever be spent is bounded by the line plus the burst: cap the elapsed time so
  -- the products stay exact integers.
  local cap = math.floor(((waiting + burst) * MILLION) / rate) + 1
  credit = credit + math.min(elapsed, cap) * rate
  local room = math.max(0, cfg('max_active') - redis.call('HLEN', KEYS[7]))
  local n = math.min(math.floor(credit / MILLION), waiting, room, BUDGET)
  if n > 0 then
    local front = redis.call('ZRANGE', KEYS[3], 0, n - 1)
    local ttl, claim = cfg('pass_ttl_us'), cfg('claim_us')
    for _, token in ipairs(front) do
      local visitor = redis.call('HGET', KEYS[6], token)
      local expires = now + ttl
      redis.call('HSET', KEYS[7], token, visitor .. ' ' .. int(now) .. ' ' .. int(expires) .. ' ' .. (claim > 0 and 0 or 1))
      redis.call('ZADD', KEYS[8], int((claim > 0) and math.min(now + claim, expires) or expires), token)
      redis.call('ZREM', KEYS[3], token)
      redis.call('ZREM', KEYS[4], token)
      redis.call('HDEL', KEYS[6], token)
    end
    redis.call('HINCRBY', KEYS[2], 'admitted_total', n)
    credit = credit - n * MILLION
    waiting = waiting - n
  end
  -- Credit beyond the burst is kept only while it is owed to visitors still in line that the
  -- budget left for the next call.
  if waiting == 0 or n < math.min(waiting, BUDGET) then
    credit = math.min(credit, burst * MILLION)
  end
  redis.call('HSET', KEYS[2], 'credit', int(credit), 'last_us', int(now))
end

local function advance(now)
  lapse_passes(now)
  lapse_waiting(now)
  admit(now)
end

-- The answer for a token: {'admitted', token, visitor, expires_us, claimed} |
-- {'waiting', token, position, eta_us, seq} | nil
local function entry(token)
  local rec = redis.call('HGET', KEYS[7], token)
  if rec then
    local visitor, _, expires, claimed = string.match(rec, '^(%d+) (%d+) (%d+) (%d)$')
    local lapses = redis.call('ZSCORE', KEYS[8], token)
    return {'admitted', token, visitor, tonumber(lapses or expires), tonumber(claimed)}
  end
  local rank = redis.call('ZRANK', KEYS[3], token)
  if not rank then
    return nil
  end
  local position = rank + 1
  local owed = position * MILLION - st('credit')
  local eta = 0
  if owed > 0 then
    eta = math.ceil(owed / cfg('rate'))
  end
  return {'waiting', token, position, eta, tonumber(redis.call('ZSCORE', KEYS[3], token))}
end

local function check_in(token, now)
  redis.call('ZADD', KEYS[4], int(now + cfg('checkin_us')), token)
end

