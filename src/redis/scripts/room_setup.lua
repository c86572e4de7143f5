-- Writes the room's settings when it has none yet (the first node to connect), and returns
-- the settings in force: every node then runs with the same ones. Keys as in the prelude
-- (named by the header the Rust side writes).
-- ARGV: rate, burst, max_active, max_waiting, checkin_us, pass_ttl_us, claim_us
-- Returns {rate, burst, max_active, max_waiting, checkin_us, pass_ttl_us, claim_us}.
local fields = {'rate', 'burst', 'max_active', 'max_waiting', 'checkin_us', 'pass_ttl_us', 'claim_us'}
if redis.call('HEXISTS', CFG, 'rate') == 0 then
  for i, f in ipairs(fields) do
    redis.call('HSET', CFG, f, ARGV[i])
  end
  redis.call('HSET', CFG, 'paused', 0, 'closed', 0)
  local t = redis.call('TIME')
  redis.call('HSET', STATE, 'credit', ARGV[2] .. '000000', 'last_us', t[1] .. string.format('%06d', tonumber(t[2])))
end
local out = {}
for i, f in ipairs(fields) do
  out[i] = tonumber(redis.call('HGET', CFG, f))
end
return out
