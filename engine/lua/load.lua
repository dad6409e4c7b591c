-- Read what the engine needs to decide a batch of one channel's events, in one call.
--
-- KEYS[1] the channel's settings hash   KEYS[2] seen (event id -> received_at)
-- KEYS[3..] conversation hashes
-- ARGV[1..] the batch's event ids
--
-- Returns { settings as a flat field/value list, one score or nil per event id,
--           then per conversation its q, a, la, oa, lc, fr, v (nil where unset) }.
local reply = { redis.call('HGETALL', KEYS[1]), redis.call('ZMSCORE', KEYS[2], unpack(ARGV)) }
for i = 3, #KEYS do
  reply[#reply + 1] = redis.call('HMGET', KEYS[i], 'q', 'a', 'la', 'oa', 'lc', 'fr', 'v')
end
return reply
