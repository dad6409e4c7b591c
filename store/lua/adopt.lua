-- Count conversations assigned before the routing indexes were kept (store/routing.py,
-- `open_pool`): each whose hash still holds the queue and assignee the caller read, and
-- that its assignee's set does not list yet, joins that set and its assignee's held
-- count (and load, when Open). Idempotent: one already listed is left alone, so a
-- conversation the engine changed meanwhile is counted once, by whichever came first.
--
-- KEYS[1] the channel's load set, KEYS[2] its held set; then per conversation its hash
-- and its assignee's set. ARGV: per conversation its id, the queue and the assignee read.
-- Returns how many it counted.
local counted = 0
for i = 0, (#KEYS - 2) / 2 - 1 do
  local conv, set = KEYS[3 + 2 * i], KEYS[4 + 2 * i]
  local id, queue, assignee = ARGV[1 + 3 * i], ARGV[2 + 3 * i], ARGV[3 + 3 * i]
  local now = redis.call('HMGET', conv, 'q', 'a')
  if now[1] == queue and now[2] == assignee and not redis.call('ZSCORE', set, id) then
    redis.call('ZADD', set, 0, id)
    redis.call('ZINCRBY', KEYS[2], 1, assignee)
    if queue == 'open' then
      redis.call('ZINCRBY', KEYS[1], 1, assignee)
    end
    counted = counted + 1
  end
end
return counted
