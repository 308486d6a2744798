"""The Lua scripts of the `timeout` store (backend/services/redis/timeout.py), which passes
them its keys: each decision on a run's live state (start, overlap, cancel, requeue, let a
waiting run go, claim for the reaper) is one script, so no two of them interleave."""

import hashlib

QUEUED, RUNNING, WAITING, CANCELLED = "queued", "running", "waiting", "cancelled"

# Keep the lock key alive until its latest deadline, then let Redis drop it.
_EXPIRE_LOCK = """
local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
if last[2] then redis.call('EXPIREAT', KEYS[3], math.ceil(tonumber(last[2])) + 1) end
"""

# Asked to cancel a run (by hand, or by a newer run under `cancel_other`), in any script. A
# running run gets `cancel` (its worker polls for it and stops the task). One that has not
# started (queued, waiting, between attempts) must never start: its next attempt is claimed
# as `cancelled`, and it is due in the deadlines set at once, so a reaper writes its record.
_CANCEL_RUN = """
local function cancel_run(run, task_id, message, now, claims, ttl, deadlines)
  local found = redis.call('HMGET', run, 'state', 'attempt', 'cancel')
  local state = found[1]
  if not state then return 'gone' end
  if found[3] or state == 'cancelled' then return 'already' end
  redis.call('HSET', run, 'cancel', message)
  if state == 'running' then return 'running' end
  local next_attempt = (tonumber(found[2]) or 0) + 1
  redis.call('SET', claims .. task_id .. ':' .. next_attempt, 'cancelled', 'EX', ttl)
  redis.call('HSET', run, 'state', 'cancelled')
  redis.call('EXPIRE', run, ttl)
  redis.call('ZADD', deadlines, now, task_id)
  return state
end
"""

# KEYS: run, deadlines, config lock, attempt claim, waiting slot. ARGV: task_id, now,
# deadline, overlap, ttl, message (buffer_one), run prefix, claim prefix, cancel message,
# fields... The attempt claim comes first: a copy of a run already started (or refused) must
# neither run nor touch the live state its first delivery owns.
START = f"""{_CANCEL_RUN}
if not redis.call('SET', KEYS[4], ARGV[2], 'NX', 'EX', tonumber(ARGV[5])) then
  if redis.call('GET', KEYS[4]) == 'cancelled' then return 'cancelled' end
  return 'duplicate'
end
local task_id, now, deadline, overlap = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. now)
if overlap ~= 'allow' then
  local others = redis.call('ZCARD', KEYS[3])
  if redis.call('ZSCORE', KEYS[3], task_id) then others = others - 1 end
  if others > 0 and overlap == 'buffer_one' then
    local waiting = redis.call('HGET', KEYS[5], 'task_id')
    if not waiting or waiting == task_id then
      redis.call('DEL', KEYS[4])  -- its own delivery, once let go, claims this attempt
      redis.call('ZREM', KEYS[3], task_id)  -- let go before, it waits again (a run slipped in)
      redis.call('ZREM', KEYS[2], task_id)
      redis.call('HDEL', KEYS[1], 'resend')
      redis.call('HSET', KEYS[5], 'task_id', task_id, 'message', ARGV[6], 'since', now)
      redis.call('EXPIRE', KEYS[5], tonumber(ARGV[5]))
      redis.call('HSET', KEYS[1], unpack(ARGV, 10))
      redis.call('HSET', KEYS[1], 'state', '{WAITING}', 'attempt', 0, 'queued_at', now)
      redis.call('HDEL', KEYS[1], 'started_at', 'deadline')
      redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
      return 'buffered'
    end
  end
  if others > 0 and overlap == 'cancel_other' then
    for _, other in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
      if other ~= task_id then
        cancel_run(ARGV[7] .. other, other, ARGV[9], now, ARGV[8], tonumber(ARGV[5]), KEYS[2])
      end
    end
  elseif others > 0 then
    redis.call('DEL', KEYS[1])  -- a refused run ends here: drop its `queued` marker
    return 'overlap'
  end
end
if overlap == 'buffer_one' and redis.call('HGET', KEYS[5], 'task_id') == task_id then
  redis.call('DEL', KEYS[5])  -- it waited, and a copy of it found the way free: no longer
end
redis.call('ZADD', KEYS[3], deadline, task_id)
{_EXPIRE_LOCK}
redis.call('HDEL', KEYS[1], 'resend')
redis.call('HSET', KEYS[1], unpack(ARGV, 10))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
redis.call('ZADD', KEYS[2], deadline, task_id)
return 'started'
"""

# KEYS: run, deadlines, waiting slot, first attempt's claim. ARGV: task_id, message, now,
# claim prefix, ttl, config id of a fire sent but not started ('' for any other run). Such a
# fire has no run hash yet: claiming its first attempt is its cancel (or, taken, it started).
CANCEL = f"""{_CANCEL_RUN}
local task_id, now, ttl = ARGV[1], ARGV[3], tonumber(ARGV[5])
if redis.call('EXISTS', KEYS[1]) == 0 then
  if ARGV[6] == '' or not redis.call('SET', KEYS[4], 'cancelled', 'NX', 'EX', ttl) then
    return 'gone'
  end
  redis.call('HSET', KEYS[1], 'config_id', ARGV[6], 'trigger', 'scheduled', 'attempt', 0,
    'state', '{CANCELLED}', 'queued_at', now, 'cancel', ARGV[2])
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('ZADD', KEYS[2], now, task_id)
  return 'queued'
end
local found = cancel_run(KEYS[1], task_id, ARGV[2], now, ARGV[4], ttl, KEYS[2])
if found == 'waiting' and redis.call('HGET', KEYS[3], 'task_id') == task_id then
  redis.call('DEL', KEYS[3])
end
return found
"""

# KEYS: config lock, waiting slot, deadlines. ARGV: now, lease end, run prefix, ttl. Run in
# the transaction that removes finished runs: when the last run of the config in flight is
# gone, the waiting run is let go. It holds the lock from now on (nothing else slips in) and
# is due in the deadlines set at the lease end: its message is sent again if it has not
# started by then (the worker that let it go died before sending it).
PROMOTE = f"""
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
if redis.call('ZCARD', KEYS[1]) > 0 then return false end
local waiting = redis.call('HMGET', KEYS[2], 'task_id', 'message')
if not waiting[1] then return false end
redis.call('DEL', KEYS[2])
local run = ARGV[3] .. waiting[1]
redis.call('HSET', run, 'state', '{QUEUED}', 'resend', waiting[2], 'queued_at', ARGV[1])
redis.call('EXPIRE', run, tonumber(ARGV[4]))
redis.call('ZADD', KEYS[1], ARGV[2], waiting[1])
redis.call('EXPIREAT', KEYS[1], math.ceil(tonumber(ARGV[2])) + 1)
redis.call('ZADD', KEYS[3], ARGV[2], waiting[1])
return waiting[2]
"""

# KEYS: run, deadlines, config lock, next attempt's claim. ARGV: task_id, attempt, deadline,
# ttl, now. A run asked to cancel while its attempt failed is not requeued: its next attempt
# (already re-sent) is claimed `cancelled`, and a reaper records it.
REQUEUE = f"""
if redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[2] then return 'stale' end
if redis.call('HEXISTS', KEYS[1], 'cancel') == 1 then
  redis.call('SET', KEYS[4], 'cancelled', 'EX', tonumber(ARGV[4]))
  redis.call('HSET', KEYS[1], 'state', '{CANCELLED}')
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
  return 'cancelled'
end
redis.call('HSET', KEYS[1], 'state', '{QUEUED}', 'deadline', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
{_EXPIRE_LOCK}
return 'requeued'
"""

# KEYS: deadlines. ARGV: now, lease_until, limit. Bumping the score is the claim: another
# reaper sees these entries again only after the lease, by when they are recorded and gone.
CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
return due
"""


# Redis names a cached script by its SHA-1 (an identifier, not a security measure).
SHA1 = {
    script: hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()
    for script in (START, REQUEUE, CLAIM, CANCEL)
}
