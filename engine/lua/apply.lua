-- Apply decided events, each atomically and at most once. One call carries a run of
-- one channel's events (all their keys share the channel's hash tag), in order: one
-- round trip for hundreds of transitions.
--
-- ARGV[1] the number of events, ARGV[2] B, the number of dedupe sets, ARGV[3] the day
-- of the first of them, ARGV[4] how long a set is kept after its day ends (seconds),
-- ARGV[5] how long a report hash is kept after its last write (seconds), ARGV[6] how
-- many messages a conversation's log keeps, ARGV[7] how long an action's result is
-- kept, ARGV[8] how long an unclaimed wake-up is kept; then per event: its key count,
-- its argument count, and its arguments. KEYS[1..B] are the dedupe window's sets of decided event-id digests, one
-- per day of receipt, oldest first; the events' keys follow, one event after another.
--
-- An event's keys: [1] conversation hash; for a "write" also [2] the queue the engine
-- read it in (its new queue when it had none), [3] its new queue (sorted sets of wa_id
-- -> last activity in ms); then one key per record (for a "mark", from [2]).
-- An event's arguments: [1] the digest of its id, [2] its day of receipt, [3] expected
-- version ("0": none yet), [4] wa_id, [5] "write" (new state follows) or "mark"
-- (decided, unchanged), [6..11] queue, assignee, last_activity, opened_at,
-- last_customer, first_response (times in ms; "" deletes the field); then records as
-- (operation, value) pairs (from [6] for a "mark"): tag and topic (a set member), note
-- (a JSON list item), status ("wamid=status", on the messages hash, only forward and
-- only for a wamid Parley sent), error ("wamid=code title" of a failed one), log (a JSON line
-- of the capped recent-messages list), count (a report hash field to increment), result
-- (an action's outcome, a string), wake (pushed for the API blocked on it) and outbox
-- (a reply for the sender, on the channel's stream).
--
-- Returns one answer per event: "duplicate" (decided before: nothing changed),
-- "conflict" (the version moved, e.g. the sweeper resolved it: the engine reads and
-- decides again), or "ok". A matching version guarantees that key [2] is the queue the
-- conversation is in.

local FIELDS = { 'q', 'a', 'la', 'oa', 'lc', 'fr' }
-- Delivery statuses only move forward, and only on messages we sent.
local RANK = { sent = 1, delivered = 2, read = 3, failed = 4 }
local BUCKETS, FIRST_DAY = tonumber(ARGV[2]), tonumber(ARGV[3])
local REPORT_TTL, LOG_LENGTH = tonumber(ARGV[5]), tonumber(ARGV[6])
local RESULT_TTL, WAKE_TTL = tonumber(ARGV[7]), tonumber(ARGV[8])
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

local function apply_records(first_key, first, last)
  local key = first_key
  for i = first, last, 2 do
    local op, value, target = ARGV[i], ARGV[i + 1], KEYS[key]
    key = key + 1
    if op == 'tag' or op == 'topic' then
      redis.call('SADD', target, value)
    elseif op == 'note' then
      redis.call('RPUSH', target, value)
    elseif op == 'status' then
      local sep = string.find(value, '=', 1, true)
      local wamid, status = string.sub(value, 1, sep - 1), string.sub(value, sep + 1)
      local current = redis.call('HGET', target, wamid)
      if current and (RANK[status] or 0) > (RANK[current] or 0) then
        redis.call('HSET', target, wamid, status)
      end
    elseif op == 'error' then
      local sep = string.find(value, '=', 1, true)
      local wamid = string.sub(value, 1, sep - 1)
      if redis.call('HEXISTS', target, wamid) == 1 then
        redis.call('HSET', target, 'x:' .. wamid, string.sub(value, sep + 1))
      end
    elseif op == 'log' then
      redis.call('RPUSH', target, value)
      redis.call('LTRIM', target, -LOG_LENGTH, -1)
    elseif op == 'count' then
      redis.call('HINCRBY', target, value, 1)
      redis.call('EXPIRE', target, REPORT_TTL)
    elseif op == 'result' then
      redis.call('SET', target, value, 'EX', RESULT_TTL)
    elseif op == 'outbox' then
      redis.call('XADD', target, '*', 'm', value)
    elseif op == 'wake' then
      redis.call('RPUSH', target, value)
      redis.call('EXPIRE', target, WAKE_TTL)
    end
  end
end

local answers = {}
local key, pos = BUCKETS + 1, 9
for event = 1, tonumber(ARGV[1]) do
  local key_count, arg_count = tonumber(ARGV[pos]), tonumber(ARGV[pos + 1])
  local arg = pos + 2
  answers[event] = apply_one(key, arg)
  if answers[event] == 'ok' then
    if ARGV[arg + 4] == 'write' then
      apply_records(key + 3, arg + 11, arg + arg_count - 1)
    else
      apply_records(key + 1, arg + 5, arg + arg_count - 1)
    end
  end
  key = key + key_count
  pos = arg + arg_count
end
-- Each day's set lives until DEDUPE_RETENTION_S after its day ends.
for b in pairs(touched) do
  redis.call('EXPIREAT', KEYS[b], (FIRST_DAY + b) * 86400 + tonumber(ARGV[4]))
end
return answers
