-- Mark offline, atomically, the users whose live streams have all been gone since
-- ARGV[1] (ms): a stream's heartbeat after this runs updates nobody it removed (the
-- receiver touches with ZADD XX), so a heartbeat and this can never both win.
-- Packed by store/presence.py.
--
-- KEYS[1] the sorted set of online or away users by when a stream of theirs was last
-- seen; KEYS[2] the hash of every user's availability.
-- ARGV[1] the cutoff (ms); ARGV[2] the offline record (JSON); ARGV[3] at most this many.
-- Returns the users it marked offline.
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, user in ipairs(stale) do
  redis.call('ZREM', KEYS[1], user)
  redis.call('HSET', KEYS[2], user, ARGV[2])
end
return stale
