-- The sweeper's compare-and-set: resolve conversations that are still due.
--
-- KEYS[1] the queue swept (new or pending)   KEYS[2] the resolved queue
-- KEYS[3..] the candidates' conversation hashes
-- ARGV[1] queue name swept   ARGV[2] cutoff in ms (last activity at or below it is due)
-- ARGV[3..] per candidate, in KEYS order: wa_id, the last activity (ms) the sweep saw
--
-- A candidate is resolved only if it is still in that queue with the same last activity
-- (nobody touched it since the sweep selected it) and that activity is at or before the
-- cutoff. Two sweepers racing resolve each conversation once: the second sees it
-- resolved. Returns, per resolved one: wa_id, its former assignee ("" if none), opened_at.
local resolved = {}
local cutoff = tonumber(ARGV[2])
for i = 3, #KEYS do
  local conv = KEYS[i]
  local wa_id = ARGV[3 + (i - 3) * 2]
  local seen_activity = ARGV[4 + (i - 3) * 2]
  local state = redis.call('HMGET', conv, 'q', 'la', 'a', 'oa', 'v')
  local activity = tonumber(state[2] or '')
  if state[1] == ARGV[1] and activity == tonumber(seen_activity) and activity <= cutoff then
    redis.call('ZREM', KEYS[1], wa_id)
    redis.call('ZADD', KEYS[2], state[2], wa_id)
    redis.call('HDEL', conv, 'a')
    redis.call('HSET', conv, 'q', 'resolved', 'v', tonumber(state[5] or '0') + 1)
    resolved[#resolved + 1] = wa_id
    resolved[#resolved + 1] = state[3] or ''
    resolved[#resolved + 1] = state[4] or ''
  end
end
return resolved
