-- Read what the engine needs to decide a batch of one channel's events, in one call.
-- Packed and read back by engine/protocol.py (LoadCall): change both together.
--
-- KEYS[1] the channel's settings hash   KEYS[2..B+1] the dedupe window's sets of
-- decided event-id digests, one per day   KEYS[B+2] the channel's alias hash
-- KEYS[B+3..] conversation hashes
-- ARGV[1] B   ARGV[2] D, the number of digests   ARGV[3] F, the number of state fields
-- ARGV[4..F+3] the state fields   then D digests of the batch's event ids
-- then per conversation hash, in KEYS order: the alias to read with it ("" for none)
--
-- Returns { settings as a flat field/value list, per digest 1 (decided before) or 0,
--           then per conversation { its alias's value or false, its F fields } }.
local buckets, digests, nfields = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local fields = {}
for i = 1, nfields do
  fields[i] = ARGV[3 + i]
end
local first_digest = 4 + nfields
local seen = {}
for i = 1, digests do
  seen[i] = 0
end
for b = 2, buckets + 1 do
  if redis.call('EXISTS', KEYS[b]) == 1 then
    for i = 1, digests do
      if seen[i] == 0 and redis.call('SISMEMBER', KEYS[b], ARGV[first_digest + i - 1]) == 1 then
        seen[i] = 1
      end
    end
  end
end
local aliases = KEYS[buckets + 2]
local reply = { redis.call('HGETALL', KEYS[1]), seen }
local alias_arg = first_digest + digests
for i = buckets + 3, #KEYS do
  local alias = ARGV[alias_arg]
  alias_arg = alias_arg + 1
  local named = false
  if alias ~= '' then
    named = redis.call('HGET', aliases, alias)
  end
  reply[#reply + 1] = { named, redis.call('HMGET', KEYS[i], unpack(fields)) }
end
return reply
