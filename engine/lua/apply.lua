-- Apply decided events, each atomically and at most once. One call carries a run of
-- one channel's events (all their keys share the channel's hash tag), in order: one
-- round trip for hundreds of transitions.
--
-- ARGV[1] the number of events, ARGV[2] B, the number of dedupe sets, ARGV[3] the day
-- of the first of them, ARGV[4] how long a set is kept after its day ends (seconds);
-- then per event: its key count, its argument count, and its
-- arguments. KEYS[1..B] are the dedupe window's sets of decided event-id digests, one
-- per day of receipt, oldest first; the events' keys follow, one event after another.
--
-- An event's keys: [1] conversation hash; for a "write" also [2] the queue the engine
-- read it in (its new queue when it had none), [3] its new queue (sorted sets of wa_id
-- -> last activity in ms), then one key per effect.
-- An event's arguments: [1] the digest of its id, [2] its day of receipt, [3] expected
-- version ("0": none yet), [4] wa_id, [5] "write" (new state follows) or "mark"
-- (decided, unchanged), [6..11] queue, assignee, last_activity, opened_at,
-- last_customer, first_response (times in ms; "" deletes the field), [12..] effects as
-- (name, value) pairs: tag and topic (a set member), note (a JSON list item), status
-- ("wamid=status", on the messages hash).
--
-- Returns one answer per event: "duplicate" (decided before: nothing changed),
-- "conflict" (the version moved, e.g. the sweeper resolved it: the engine reads and
-- decides again), or "ok". A matching version guarantees that key [2] is the queue the
-- conversation is in.

local FIELDS = { 'q', 'a', 'la', 'oa', 'lc', 'fr' }
-- Delivery statuses only move forward, and only on messages we sent.
local RANK = { sent = 1, delivered = 2, read = 3, failed = 4 }
local BUCKETS, FIRST_DAY = tonumber(ARGV[2]), tonumber(ARGV[3])
local touched = {}

local function bucket(day)
  return math.max(1, math.min(BUCKETS, tonumber(day) - FIRST_DAY + 1))
end

local function apply_one(key, arg)
  local conv = KEYS[key]
  local seen = bucket(ARGV[arg + 1])
  -- The same record applied again (a batch retried after its answer was lost) is in
  -- its own day's set. A re-delivery on another day was refused by load.lua, and one
  -- decided meanwhile by another engine moved the version: checking the other days'
  -- sets here too would cost nine lookups an event for nothing.
  if redis.call('SISMEMBER', KEYS[seen], ARGV[arg]) == 1 then
    return 'duplicate'
  end
  local version = tonumber(redis.call('HGET', conv, 'v') or '0')
  if version ~= tonumber(ARGV[arg + 2]) then
    return 'conflict'
  end
  redis.call('SADD', KEYS[seen], ARGV[arg])
  touched[seen] = true
  if ARGV[arg + 4] == 'mark' then
    return 'ok'
  end

  local wa_id, from_queue, to_queue = ARGV[arg + 3], KEYS[key + 1], KEYS[key + 2]
  if from_queue ~= to_queue then
    redis.call('ZREM', from_queue, wa_id)
  end
  redis.call('ZADD', to_queue, ARGV[arg + 7], wa_id)

  local set = { 'v', version + 1 }
  for i, name in ipairs(FIELDS) do
    local value = ARGV[arg + 4 + i]
    if value == '' then
      redis.call('HDEL', conv, name)
    else
      set[#set + 1] = name
      set[#set + 1] = value
    end
  end
  redis.call('HSET', conv, unpack(set))
  return 'ok'
end

local function apply_effects(key, arg, last)
  local effect_key = key + 2
  for i = arg + 11, last, 2 do
    local effect, value = ARGV[i], ARGV[i + 1]
    effect_key = effect_key + 1
    if effect == 'tag' or effect == 'topic' then
      redis.call('SADD', KEYS[effect_key], value)
    elseif effect == 'note' then
      redis.call('RPUSH', KEYS[effect_key], value)
    elseif effect == 'status' then
      local sep = string.find(value, '=', 1, true)
      local wamid, status = string.sub(value, 1, sep - 1), string.sub(value, sep + 1)
      local current = redis.call('HGET', KEYS[effect_key], wamid)
      if current and (RANK[status] or 0) > (RANK[current] or 0) then
        redis.call('HSET', KEYS[effect_key], wamid, status)
      end
    end
  end
end

local answers = {}
local key, pos = BUCKETS + 1, 5
for event = 1, tonumber(ARGV[1]) do
  local key_count, arg_count = tonumber(ARGV[pos]), tonumber(ARGV[pos + 1])
  local arg = pos + 2
  answers[event] = apply_one(key, arg)
  if answers[event] == 'ok' and ARGV[arg + 4] == 'write' then
    apply_effects(key, arg, arg + arg_count - 1)
  end
  key = key + key_count
  pos = arg + arg_count
end
-- Each day's set lives until DEDUPE_RETENTION_S after its day ends.
for b in pairs(touched) do
  redis.call('EXPIREAT', KEYS[b], (FIRST_DAY + b) * 86400 + tonumber(ARGV[4]))
end
return answers
