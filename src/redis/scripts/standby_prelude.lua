-- The standby line of one branch, shared by every branch script (after branch_prelude.lua,
-- which declares `serve` and `reclaim_offers` so that give_back and reclaim can call them).
-- A request is named by its token RT, under which its applicant's count stands on the
-- applicant's shard; a request over several branches waits in the line of each.
-- SBLINE  ZSET RT -> number: the requests waiting here, in first-come order (the number comes
--         from one counter for the whole book)
-- SBREQ   HASH RT -> "number applicant first last" of each waiting request
-- OFFERS  HASH RT -> "slot applicant expires_ms": a unit of `slot` kept for the request,
--         counted in HELD, until its applicant claims it as a hold or it lapses
-- OFFEXP  ZSET RT -> expires_ms of each offer
-- SBIDX   ZSET of text: where each waiting request's range lies, to find the earliest one
--         covering a slot (below)
-- Rule: a unit that becomes free to reserve in a slot a waiting request covers is kept for the
-- earliest such request in the script that frees it, so no reservation can take it first, and
-- no waiting request ever covers a slot with room (`join` refuses one while it would).
-- HOLD_TTL_MS (an offer lasts as long as a hold) and MAX_LINE (requests waiting here at most)
-- are the book's settings, written into the header.

-- The fields of an SBREQ record: number, applicant, first, last.
local function request_fields(text)
  local number, applicant, first, last = string.match(text or '', '^(%d+) (%d+) (%d+) (%d+)$')
  return tonumber(number), applicant, tonumber(first), tonumber(last)
end

-- The fields of an OFFERS record: slot, applicant, expires_ms (as text).
local function offer_fields(text)
  return string.match(text, '^(%d+) (%d+) (%d+)$')
end

-- SBIDX, a sorted set by text (every score 0), finds the earliest request covering a slot in
-- O(log n): a request's range is cut into aligned buckets of 16^level slots (level 0 to 8,
-- so 16^8 = 2^32 covers every slot), at most 15 at each end per level, and each bucket is one
-- member: the level (1 hex digit), the bucket (8), the request's number (12), its token. The
-- members of one bucket sort by number; a slot lies in one bucket per level, so the earliest
-- request covering it is the least of 9 first members.
local LEVELS = 9

local function bucket_text(level, bucket)
  return string.format('%x%08x', level, bucket)
end

-- Calls f(bucket text) for each bucket of the range first..=last.
local function cover(first, last, f)
  local lo, hi, size = first, last + 1, 1
  for level = 0, LEVELS - 1 do
    if lo >= hi then
      return
    end
    local up = size * 16
    while lo % up ~= 0 and lo + size <= hi do
      f(bucket_text(level, lo / size))
      lo = lo + size
    end
    while hi % up ~= 0 and hi - size >= lo do
      hi = hi - size
      f(bucket_text(level, hi / size))
    end
    size = up
  end
end

-- Adds ('add') or removes the index members of request RT (its number and range).
local function index(op, rt, number, first, last)
  local suffix = string.format('%012x', number) .. rt
  cover(first, last, function(bucket)
    if op == 'add' then
      redis.call('ZADD', SBIDX, 0, bucket .. suffix)
    else
      redis.call('ZREM', SBIDX, bucket .. suffix)
    end
  end)
end

-- The token of the earliest waiting request covering slot `s`, or nil.
local function earliest_covering(s)
  local best, size = nil, 1
  for level = 0, LEVELS - 1 do
    local bucket = bucket_text(level, math.floor(s / size))
    local found = redis.call('ZRANGEBYLEX', SBIDX, '[' .. bucket, '(' .. bucket .. 'g',
      'LIMIT', 0, 1)
    local rest = found[1] and string.sub(found[1], 10)
    if rest and (not best or rest < best) then
      best = rest
    end
    size = size * 16
  end
  return best and string.sub(best, 13)
end

-- Adds request RT to this branch's line.
local function add_waiting(rt, number, applicant, first, last)
  redis.call('ZADD', SBLINE, number, rt)
  redis.call('HSET', SBREQ, rt, number .. ' ' .. applicant .. ' ' .. first .. ' ' .. last)
  index('add', rt, tonumber(number), tonumber(first), tonumber(last))
end

-- Takes request RT out of this branch's line. Returns its applicant, or nil if it did not wait.
local function remove_waiting(rt)
  local number, applicant, first, last = request_fields(redis.call('HGET', SBREQ, rt))
  if not number then
    return nil
  end
  index('remove', rt, number, first, last)
  redis.call('ZREM', SBLINE, rt)
  redis.call('HDEL', SBREQ, rt)
  return applicant
end

-- Keeps units of `slot` for the earliest waiting requests covering it while the slot has room
-- (open, and held + booked below CAP); each such request leaves the line with its offer.
-- Returns how many units were kept. O(log requests) per unit.
serve = function(slot)
  if redis.call('ZCARD', SBLINE) == 0 or not is_open_slot(slot) then
    return 0
  end
  local room = tonumber(redis.call('HGET', CAP, slot)) - count(HELD, slot) - count(BOOKED, slot)
  local s = tonumber(slot)
  local kept, expires = 0, nil
  while room > 0 do
    local rt = earliest_covering(s)
    local applicant = rt and remove_waiting(rt)
    if not applicant then
      break
    end
    expires = expires or int(now_ms() + HOLD_TTL_MS)
    redis.call('HINCRBY', HELD, slot, 1) -- first: see drop_hold
    redis.call('HSET', OFFERS, rt, slot .. ' ' .. applicant .. ' ' .. expires)
    redis.call('ZADD', OFFEXP, expires, rt)
    room = room - 1
    kept = kept + 1
  end
  return kept
end

-- Takes request RT's offer here out of the books, its unit given back (to the next covering
-- request first). Returns whether there was one.
local function decline(rt)
  local offer = redis.call('HGET', OFFERS, rt)
  if not offer then
    return false
  end
  local slot = offer_fields(offer)
  give_back(slot, '', HELD)
  redis.call('HDEL', OFFERS, rt)
  redis.call('ZREM', OFFEXP, rt)
  return true
end

-- Request RT's offer here while it is live, or nil. One whose time ran out but that no reclaim
-- reached yet (a backlog of lapsed holds took the budget) is passed on now, as it lapsed: it is
-- never claimed nor reported.
local function live_offer(rt, now)
  local offer = redis.call('HGET', OFFERS, rt)
  if not offer then
    return nil
  end
  local _, _, expires = offer_fields(offer)
  if tonumber(expires) and tonumber(expires) <= now then
    decline(rt)
    return nil
  end
  return offer
end

-- Passes on the offers whose time ran out, at most `budget` of them. Returns how many.
reclaim_offers = function(now, budget)
  if budget <= 0 then
    return 0
  end
  local due = redis.call('ZRANGEBYSCORE', OFFEXP, '-inf', now, 'LIMIT', 0, budget)
  for _, rt in ipairs(due) do
    if not decline(rt) then
      redis.call('ZREM', OFFEXP, rt)
    end
  end
  return #due
end
