-- A page's rows in one command and one reply: 50 pipelined HMGETs cost the API process
-- several times more to send and parse. The keys share the channel's slot.
-- KEYS: per row its conversation hash, then its log. ARGV: the hash fields.
-- Returns per row {its fields, its last log line or false}.
local rows = {}
for i = 1, #KEYS, 2 do
  rows[#rows + 1] = { redis.call('HMGET', KEYS[i], unpack(ARGV)),
                      redis.call('LINDEX', KEYS[i + 1], -1) }
end
return rows
