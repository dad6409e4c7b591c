-- Apply one decided event to one conversation, atomically and at most once.
--
-- KEYS[1] conversation hash      KEYS[2] seen (event id -> received_at)
-- KEYS[3..6] queues new, open, pending, resolved (wa_id -> last activity)
-- KEYS[7] tags set  KEYS[8] topics set  KEYS[9] notes list  KEYS[10] messages hash
-- ARGV[1] event id   ARGV[2] received_at   ARGV[3] expected version ("0": none yet)
-- ARGV[4] wa_id      ARGV[5] "write" (new state follows) or "mark" (decided, no change)
-- ARGV[6..11] queue, assignee, last_activity, opened_at, last_customer, first_response
--             ("" deletes the field)
-- ARGV[12..] effects, in (name, value) pairs: tag, topic, note (JSON), status (wamid=status)
--
-- Returns "duplicate" (the id was decided before: nothing changes), "conflict" (the
-- version moved, e.g. the sweeper resolved it: the engine re-reads and decides again),
-- or "ok".
local conv, seen = KEYS[1], KEYS[2]
if redis.call('ZSCORE', seen, ARGV[1]) then
  return 'duplicate'
end
local version = tonumber(redis.call('HGET', conv, 'v') or '0')
if version ~= tonumber(ARGV[3]) then
  return 'conflict'
end
redis.call('ZADD', seen, ARGV[2], ARGV[1])
if ARGV[5] == 'mark' then
  return 'ok'
end

local queue_key = { new = KEYS[3], open = KEYS[4], pending = KEYS[5], resolved = KEYS[6] }
local wa_id, queue, activity = ARGV[4], ARGV[6], ARGV[8]
local old_queue = redis.call('HGET', conv, 'q')
if old_queue and old_queue ~= queue then
  redis.call('ZREM', queue_key[old_queue], wa_id)
end
redis.call('ZADD', queue_key[queue], activity, wa_id)

local fields = { 'q', 'a', 'la', 'oa', 'lc', 'fr' }
local set = { 'v', version + 1 }
for i, name in ipairs(fields) do
  local value = ARGV[5 + i]
  if value == '' then
    redis.call('HDEL', conv, name)
  else
    set[#set + 1] = name
    set[#set + 1] = value
  end
end
redis.call('HSET', conv, unpack(set))

-- Delivery statuses only move forward, and only on messages we sent.
local rank = { sent = 1, delivered = 2, read = 3, failed = 4 }
for i = 12, #ARGV, 2 do
  local effect, value = ARGV[i], ARGV[i + 1]
  if effect == 'tag' then
    redis.call('SADD', KEYS[7], value)
  elseif effect == 'topic' then
    redis.call('SADD', KEYS[8], value)
  elseif effect == 'note' then
    redis.call('RPUSH', KEYS[9], value)
  elseif effect == 'status' then
    local sep = string.find(value, '=', 1, true)
    local wamid, status = string.sub(value, 1, sep - 1), string.sub(value, sep + 1)
    local current = redis.call('HGET', KEYS[10], wamid)
    if current and (rank[status] or 0) > (rank[current] or 0) then
      redis.call('HSET', KEYS[10], wamid, status)
    end
  end
end
return 'ok'
