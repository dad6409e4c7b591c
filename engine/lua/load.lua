-- Read what the engine needs to decide a batch of one channel's events, in one call.
--
-- KEYS[1] the channel's settings hash   KEYS[2..B+1] the dedupe window's sets of
-- decided event-id digests, one per day   KEYS[B+2..] conversation hashes
-- ARGV[1] B, the number of dedupe sets   ARGV[2..] the digests of the batch's event ids
--
-- Returns { settings as a flat field/value list, per digest 1 (decided before) or 0,
--           then per conversation its q, a, la, oa, lc, fr, v (nil where unset) }.
local buckets = tonumber(ARGV[1])
local seen = {}
for i = 2, #ARGV do
  seen[i - 1] = 0
end
for b = 2, buckets + 1 do
  if redis.call('EXISTS', KEYS[b]) == 1 then
    for i = 2, #ARGV do
      if seen[i - 1] == 0 and redis.call('SISMEMBER', KEYS[b], ARGV[i]) == 1 then
        seen[i - 1] = 1
      end
    end
  end
end
local reply = { redis.call('HGETALL', KEYS[1]), seen }
for i = buckets + 2, #KEYS do
  reply[#reply + 1] = redis.call('HMGET', KEYS[i], 'q', 'a', 'la', 'oa', 'lc', 'fr', 'v')
end
return reply
