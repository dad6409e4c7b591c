-- The sweeper's compare-and-set: resolve conversations that are still due.
--
-- KEYS[1] the queue swept (new or pending)   KEYS[2] the resolved queue
-- KEYS[3] the report hash of the sweep's day   KEYS[4..] the candidates' conversations
-- ARGV[1] queue name swept   ARGV[2] cutoff in ms (last activity at or below it is due)
-- ARGV[3] how long the report hash is kept after its last write (seconds)
-- ARGV[4..] per candidate, in KEYS order: wa_id, the last activity (ms) and the cycle's
-- start (ms) the sweep saw, and the report field of its resolution time
--
-- A candidate is resolved only if it is still in that queue with the same last activity
-- and cycle (nobody touched it since the sweep selected it) and that activity is at or
-- before the cutoff. Two sweepers racing resolve each conversation once: the second
-- sees it resolved. The day's report counts each resolution in the same step. Returns,
-- per resolved one: wa_id, its former assignee ("" if none).
local resolved = {}
local cutoff = tonumber(ARGV[2])
for i = 4, #KEYS do
  local conv = KEYS[i]
  local arg = 4 + (i - 4) * 4
  local wa_id, seen_activity, seen_opened = ARGV[arg], ARGV[arg + 1], ARGV[arg + 2]
  local state = redis.call('HMGET', conv, 'q', 'la', 'a', 'oa', 'v')
  local activity = tonumber(state[2] or '')
  if state[1] == ARGV[1] and activity == tonumber(seen_activity)
      and state[4] == seen_opened and activity <= cutoff then
    redis.call('ZREM', KEYS[1], wa_id)
    redis.call('ZADD', KEYS[2], state[2], wa_id)
    redis.call('HDEL', conv, 'a')
    redis.call('HSET', conv, 'q', 'resolved', 'v', tonumber(state[5] or '0') + 1)
    redis.call('HINCRBY', KEYS[3], 'resolved', 1)
    redis.call('HINCRBY', KEYS[3], 'auto_resolved', 1)
    redis.call('HINCRBY', KEYS[3], ARGV[arg + 3], 1)
    resolved[#resolved + 1] = wa_id
    resolved[#resolved + 1] = state[3] or ''
  end
end
if #resolved > 0 then
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[3]))
end
return resolved
