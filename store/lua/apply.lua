-- Apply decided events, each atomically and at most once. One call carries a run of
-- one channel's events (all their keys share the channel's hash tag), in order: one
-- round trip for hundreds of transitions. Packed by engine/protocol.py (ApplyCall):
-- change both together.
--
-- ARGV[1] the call's settings as JSON: events (how many), sets (B, the dedupe sets),
-- first_day (the day of the first set), dedupe_ttl (how long a set is kept after its day
-- ends), report_ttl, log_length, result_ttl, wake_ttl, feed_length, fields (the state fields written
-- by a "write", in order), score and snooze (the positions in fields of the last activity
-- and of the end of a snooze: the queue sets' score is the later of the two), version (the version field), ranks (delivery status -> rank), day_s.
-- KEYS[1..B] the dedupe window's sets of decided event-id digests, one per day of
-- receipt, oldest first; KEYS[B+1] the channel's alias hash; then each event's keys.
--
-- Per event, ARGV: its key count, its argument count, then [1] the digest of its id,
-- [2] its day of receipt, [3] the version it was decided on ("0": none yet), [4] the
-- customer's id (the member in the queue sets), [5] "write" (a new state follows) or
-- "mark" (decided, state unchanged), [6] C, its alias claims, then C (alias, expected
-- value or "", customer) triples, then for a "write" one value per state field ("" deletes
-- it), then its records as (operation, a, b, c) quadruples.
-- Its keys: [1] the conversation hash; for a "write" [2] the queue it was in (its new
-- queue when it had none) and [3] its new queue (sorted sets of ids by last activity in
-- ms); then one key per record.
--
-- Records: sadd a; rpush a; log a (keep the last log_length); count a (HINCRBY 1,
-- kept report_ttl from the call); result a (kept result_ttl); wake a (kept wake_ttl); outbox a (XADD);
-- fetch a (XADD, a media fetch job); feed a b (XADD, the stream capped at about
-- feed_length; with b "known", only if the event's status record found its message);
-- status a b (set field a to status b if a is there and b ranks higher); detail a b c
-- (set field b to c if field a is there); put a b (HSET); seed a b (HSETNX); drop a
-- (HDEL; put and drop on the event's own conversation hash are written with its state,
-- in one HSET and one HDEL); dropif a b (HDEL a if it holds b); name a / unname a (ZADD 0 / ZREM: the
-- name index, searched by prefix); zadd a b (ZADD score b, member a: the timer set, the
-- routing pool and indexes); zrem a (ZREM); zmax a b (ZADD GT: the later
-- score wins, whatever the order partitions are applied in); zincr a b (ZINCRBY b on member a, removed
-- once at 0 or below: an agent's load).
--
-- Returns one answer per event: "duplicate" (decided before: nothing changed),
-- "conflict" (the version moved, or an alias no longer holds what the engine read: it
-- reads and decides again), or "ok". A matching version guarantees that key [2] is the
-- queue the conversation is in.

local config = cjson.decode(ARGV[1])
local BUCKETS, FIRST_DAY = config.sets, config.first_day
local FIELDS, VERSION, RANK = config.fields, config.version, config.ranks
local ALIASES = KEYS[BUCKETS + 1]
local touched = {}
local reports = {} -- report keys counted in: their expiry is set once, at the end
local fields = {} -- the event's conversation hash fields to write (write_fields)

local function bucket(day)
  return math.max(1, math.min(BUCKETS, tonumber(day) - FIRST_DAY + 1))
end

-- Whether each of the `count` alias claims from ARGV[first] on (alias, expected value,
-- customer) still finds its expected value.
local function claims_hold(first, count)
  for claim = first, first + 3 * (count - 1), 3 do
    if (redis.call('HGET', ALIASES, ARGV[claim]) or '') ~= ARGV[claim + 1] then
      return false
    end
  end
  return true
end

-- Checks, then writes the state; the position of the event's first record argument, or
-- nil and the answer when it is not applied.
local function apply_one(key, arg)
  local conv = KEYS[key]
  local seen = bucket(ARGV[arg + 1])
  -- The same record applied again (a batch retried after its answer was lost) is in
  -- its own day's set. A re-delivery on another day was refused by load.lua, and one
  -- decided meanwhile by another engine moved the version: checking the other days'
  -- sets here too would cost nine lookups an event for nothing.
  -- Added first, taken back on a conflict (rare): one call an event instead of a
  -- SISMEMBER and then a SADD.
  if redis.call('SADD', KEYS[seen], ARGV[arg]) == 0 then
    return nil, 'duplicate'
  end
  touched[seen] = true
  local version = tonumber(redis.call('HGET', conv, VERSION) or '0')
  local claims = tonumber(ARGV[arg + 5])
  if version ~= tonumber(ARGV[arg + 2]) or not claims_hold(arg + 6, claims) then
    redis.call('SREM', KEYS[seen], ARGV[arg])
    return nil, 'conflict'
  end
  local claim = arg + 6
  for _ = 1, claims do
    redis.call('HSET', ALIASES, ARGV[claim], ARGV[claim + 2])
    claim = claim + 3
  end
  if ARGV[arg + 4] == 'mark' then
    return claim, 'ok'
  end

  local id, from_queue, to_queue = ARGV[arg + 3], KEYS[key + 1], KEYS[key + 2]
  if from_queue ~= to_queue then
    redis.call('ZREM', from_queue, id)
  end
  fields[VERSION] = version + 1
  for i, name in ipairs(FIELDS) do
    fields[name] = ARGV[claim + i - 1]
  end
  local score = tonumber(ARGV[claim + config.score - 1])
  local snoozed = ARGV[claim + config.snooze - 1]
  if snoozed ~= '' and tonumber(snoozed) > score then
    score = tonumber(snoozed)
  end
  redis.call('ZADD', to_queue, score, id)
  return claim + #FIELDS, 'ok'
end

-- The event's fields of its conversation hash (its state's, and its records' put and
-- drop on that hash), written by one HSET and one HDEL: most of a state's optional
-- fields are empty, and a call from Lua costs more than the work it does.
local function write_fields(conv)
  local set, gone = {}, {}
  for name, value in pairs(fields) do
    if value == '' then
      gone[#gone + 1] = name
    else
      set[#set + 1] = name
      set[#set + 1] = value
    end
  end
  if #gone > 0 then
    redis.call('HDEL', conv, unpack(gone))
  end
  if #set > 0 then
    redis.call('HSET', conv, unpack(set))
  end
end

local function apply_records(conv, key, first, last)
  -- Whether the last status record named a message Parley sent: a status of a wamid it
  -- never sent writes nothing, and publishes nothing either ("feed" with b "known").
  local known = true
  for i = first, last, 4 do
    local op, a, b, c, target = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], KEYS[key]
    key = key + 1
    if op == 'sadd' then
      redis.call('SADD', target, a)
    elseif op == 'rpush' then
      redis.call('RPUSH', target, a)
    elseif op == 'log' then
      if redis.call('RPUSH', target, a) > config.log_length then
        redis.call('LTRIM', target, -config.log_length, -1)
      end
    elseif op == 'count' then
      redis.call('HINCRBY', target, a, 1)
      reports[target] = true
    elseif op == 'result' then
      redis.call('SET', target, a, 'EX', config.result_ttl)
    elseif op == 'wake' then
      redis.call('RPUSH', target, a)
      redis.call('EXPIRE', target, config.wake_ttl)
    elseif op == 'outbox' then
      redis.call('XADD', target, '*', 'm', a)
    elseif op == 'fetch' then
      redis.call('XADD', target, '*', 'j', a)
    elseif op == 'feed' then
      if b ~= 'known' or known then
        redis.call('XADD', target, 'MAXLEN', '~', config.feed_length, '*', 'c', a)
      end
    elseif op == 'status' then
      local current = redis.call('HGET', target, a)
      known = current and true or false
      if current and (RANK[b] or 0) > (RANK[current] or 0) then
        redis.call('HSET', target, a, b)
      end
    elseif op == 'detail' then
      if redis.call('HEXISTS', target, a) == 1 then
        redis.call('HSET', target, b, c)
      end
    elseif (op == 'put' or op == 'drop') and target == conv then
      fields[a] = b  -- written with the state (write_fields); '' deletes
    elseif op == 'put' then
      redis.call('HSET', target, a, b)
    elseif op == 'seed' then
      redis.call('HSETNX', target, a, b)
    elseif op == 'drop' then
      redis.call('HDEL', target, a)
    elseif op == 'dropif' then
      if redis.call('HGET', target, a) == b then
        redis.call('HDEL', target, a)
      end
    elseif op == 'name' then
      redis.call('ZADD', target, 0, a)
    elseif op == 'unname' or op == 'zrem' then
      redis.call('ZREM', target, a)
    elseif op == 'zadd' then
      redis.call('ZADD', target, b, a)
    elseif op == 'zmax' then
      redis.call('ZADD', target, 'GT', b, a)
    elseif op == 'zincr' then
      if tonumber(redis.call('ZINCRBY', target, b, a)) <= 0 then
        redis.call('ZREM', target, a)
      end
    end
  end
end

local answers = {}
local key, pos = BUCKETS + 2, 2
for event = 1, config.events do
  local key_count, arg_count = tonumber(ARGV[pos]), tonumber(ARGV[pos + 1])
  local arg = pos + 2
  local records, answer = apply_one(key, arg)
  answers[event] = answer
  if records then
    local first_record_key = key + 1
    if ARGV[arg + 4] == 'write' then
      first_record_key = key + 3
    end
    apply_records(KEYS[key], first_record_key, records, arg + arg_count - 1)
    write_fields(KEYS[key])
  end
  fields = {}
  key = key + key_count
  pos = arg + arg_count
end
for target in pairs(reports) do
  redis.call('EXPIRE', target, config.report_ttl)
end
-- Each day's set lives until dedupe_ttl after its day ends.
for b in pairs(touched) do
  redis.call('EXPIREAT', KEYS[b], (FIRST_DAY + b) * config.day_s + config.dedupe_ttl)
end
return answers
