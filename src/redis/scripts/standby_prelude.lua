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
-- Rule: a unit that becomes free to reserve in a slot a waiting request covers is kept for the
-- earliest such request in the script that frees it, so no reservation can take it first, and
-- no waiting request ever covers a slot with room (`join` refuses one while it would).
-- HOLD_TTL_MS (an offer lasts as long as a hold) and MAX_LINE (requests waiting here at most)
-- are the book's settings, written into the header.

-- Requests looked at per ZRANGEBYSCORE while looking for the earliest covering one.
local SERVE_BATCH = 128

-- The fields of an SBREQ record: number, applicant, first, last.
local function request_fields(text)
  local number, applicant, first, last = string.match(text or '', '^(%d+) (%d+) (%d+) (%d+)$')
  return tonumber(number), applicant, tonumber(first), tonumber(last)
end

-- The fields of an OFFERS record: slot, applicant, expires_ms (as text).
local function offer_fields(text)
  return string.match(text, '^(%d+) (%d+) (%d+)$')
end

-- Keeps units of `slot` for the earliest waiting requests covering it while the slot has room
-- (open, and held + booked below CAP); each such request leaves the line with its offer.
-- Returns how many units were kept. O(requests ahead of the first covering one).
serve = function(slot)
  if redis.call('ZCARD', SBLINE) == 0 or not is_open_slot(slot) then
    return 0
  end
  local room = tonumber(redis.call('HGET', CAP, slot)) - count(HELD, slot) - count(BOOKED, slot)
  local s = tonumber(slot)
  local kept, after, expires = 0, '-inf', nil
  while room > 0 do
    local batch = redis.call('ZRANGEBYSCORE', SBLINE, after, '+inf', 'WITHSCORES',
      'LIMIT', 0, SERVE_BATCH)
    if #batch == 0 then
      break
    end
    for i = 1, #batch, 2 do
      local rt = batch[i]
      local _, applicant, first, last = request_fields(redis.call('HGET', SBREQ, rt))
      if room > 0 and first and s >= first and s <= last then
        expires = expires or int(now_ms() + HOLD_TTL_MS)
        redis.call('HINCRBY', HELD, slot, 1) -- first: see drop_hold
        redis.call('HSET', OFFERS, rt, slot .. ' ' .. applicant .. ' ' .. expires)
        redis.call('ZADD', OFFEXP, expires, rt)
        redis.call('ZREM', SBLINE, rt)
        redis.call('HDEL', SBREQ, rt)
        room = room - 1
        kept = kept + 1
      end
    end
    after = '(' .. batch[#batch]
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
