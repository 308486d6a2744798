"""The `timeout` store: runs queued or in flight, with their deadlines, and each config's lock.

Keys (all under the prefix):
- `timeout:run:{task_id}`   hash: config_id, trigger, task_type, state (queued|running),
                            queued_at, started_at, deadline, attempt (epoch seconds)
- `timeout:deadlines`       sorted set: task ids of started runs by deadline; the reaper
                            records the ones past it as lost
- `timeout:config:{id}`     sorted set: a config's started runs by deadline; the overlap lock
                            (entries past their deadline no longer count, so a lost run cannot
                            hold it forever)
- `timeout:attempt:{task_id}:{attempt}`  the execution claim of one attempt, taken with the
                            in-flight mark: a second delivery of that attempt (a broker
                            redelivery, a fire sent again after its scheduler died) finds it and
                            is dropped; it outlives the run by QUEUED_RUN_TTL_SECONDS, so a
                            copy still waiting in the queue after the run ended is caught too
"""

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError

from backend.services.redis.keys import key

QUEUED, RUNNING = "queued", "running"

# What start() made of a delivery: it runs, or it is refused (overlap), or it is a second
# delivery of an attempt that already started (or finished) and must not run again.
Admission = Literal["started", "overlap", "duplicate"]


def _run_key(task_id: str) -> str:
    return key("timeout", "run", task_id)


def _deadlines_key() -> str:
    return key("timeout", "deadlines")


def _attempt_key(task_id: str, attempt: int) -> str:
    return key("timeout", "attempt", task_id, attempt)


def _config_key(config_id: int | None) -> str:
    # Runs without a config (kicked by hand outside the API) share no lock with anything.
    return key("timeout", "config", "-" if config_id is None else config_id)


@dataclass(frozen=True)
class LiveRun:
    task_id: str
    config_id: int | None
    trigger: str
    state: str
    attempt: int
    task_type: str
    queued_at: datetime | None
    started_at: datetime | None
    deadline: datetime | None

    @classmethod
    def from_hash(cls, task_id: str, fields: dict[str, str]) -> "LiveRun":
        return cls(
            task_id=task_id,
            config_id=int(fields["config_id"]) if fields.get("config_id") else None,
            trigger=fields.get("trigger", "manual"),
            state=fields.get("state", QUEUED),
            attempt=int(fields.get("attempt", 0)),
            # Written when a worker starts the run; "unknown" for entries from before that.
            task_type=fields.get("task_type") or "unknown",
            queued_at=_when(fields.get("queued_at")),
            started_at=_when(fields.get("started_at")),
            deadline=_when(fields.get("deadline")),
        )


def _when(epoch: str | None) -> datetime | None:
    return datetime.fromtimestamp(float(epoch), UTC) if epoch else None


# Keep the lock key alive until its latest deadline, then let Redis drop it.
_EXPIRE_LOCK = """
local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
if last[2] then redis.call('EXPIREAT', KEYS[3], math.ceil(tonumber(last[2])) + 1) end
"""

# KEYS: run, deadlines, config lock, attempt claim. ARGV: task_id, now, deadline, exclusive,
# ttl, fields... The attempt claim comes first: a copy of a run already started (or refused)
# must neither run nor touch the live state its first delivery owns.
_START = f"""
if not redis.call('SET', KEYS[4], ARGV[2], 'NX', 'EX', tonumber(ARGV[5])) then
  return 'duplicate'
end
local task_id, now, deadline = ARGV[1], ARGV[2], tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. now)
if ARGV[4] == '1' then
  local others = redis.call('ZCARD', KEYS[3])
  if redis.call('ZSCORE', KEYS[3], task_id) then others = others - 1 end
  if others > 0 then
    redis.call('DEL', KEYS[1])  -- a refused run ends here: drop its `queued` marker
    return 'overlap'
  end
end
redis.call('ZADD', KEYS[3], deadline, task_id)
{_EXPIRE_LOCK}
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
redis.call('ZADD', KEYS[2], deadline, task_id)
return 'started'
"""

# KEYS: run, deadlines, config lock. ARGV: task_id, attempt, deadline.
_REQUEUE = f"""
if redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'state', '{QUEUED}', 'deadline', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
{_EXPIRE_LOCK}
return 1
"""

# KEYS: deadlines. ARGV: now, lease_until, limit. Bumping the score is the claim: another
# reaper sees these entries again only after the lease, by when they are recorded and gone.
_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
return due
"""


# Redis names a cached script by its SHA-1 (an identifier, not a security measure).
_SHA1 = {
    script: hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()
    for script in (_START, _REQUEUE, _CLAIM)
}


async def _run_script(redis: Redis, script: str, keys: list[str], *args: str | int | float) -> Any:
    """EVALSHA (40 bytes on the hot path, not the script); EVAL loads it when Redis lacks it."""
    try:
        return await redis.evalsha(_SHA1[script], len(keys), *keys, *args)  # type: ignore[misc]
    except NoScriptError:
        return await redis.eval(script, len(keys), *keys, *args)  # type: ignore[misc]


async def mark_queued(
    redis: Redis, *, task_id: str, config_id: int, trigger: str, ttl: int
) -> None:
    """Written before the run is sent, so its state can be read until a worker starts it."""
    fields: dict[str, str | int | float] = {
        "config_id": config_id,
        "trigger": trigger,
        "state": QUEUED,
        "attempt": 0,
        "queued_at": time.time(),
    }
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(_run_key(task_id), mapping=fields)  # type: ignore[arg-type]
        pipe.expire(_run_key(task_id), ttl)
        await pipe.execute()


async def forget(redis: Redis, task_id: str) -> None:
    await redis.delete(_run_key(task_id))


async def start(
    redis: Redis,
    *,
    task_id: str,
    config_id: int | None,
    trigger: str,
    attempt: int,
    started_at: float,
    task_type: str = "",
    deadline: float,
    exclusive: bool,
    ttl: int,
) -> Admission:
    """Mark an attempt in flight, once: a second delivery of the same task id and attempt is
    a `duplicate`; with `exclusive`, the run is refused (`overlap`) while another run of its
    config is in flight. `ttl` keeps the marks (the attempt claim too) past the deadline."""
    fields = {
        "config_id": "" if config_id is None else config_id,
        "trigger": trigger,
        "task_type": task_type,
        "state": RUNNING,
        "attempt": attempt,
        "started_at": started_at,
        "deadline": deadline,
    }
    flat = [item for pair in fields.items() for item in pair]
    keys = [
        _run_key(task_id),
        _deadlines_key(),
        _config_key(config_id),
        _attempt_key(task_id, attempt),
    ]
    args = [task_id, time.time(), deadline, int(exclusive), ttl, *flat]
    admission: Admission = await _run_script(redis, _START, keys, *args)
    return admission


async def requeue(
    redis: Redis, *, task_id: str, config_id: int | None, attempt: int, deadline: float
) -> bool:
    """Between retries the run stays live (and keeps its lock) until the next attempt's start.

    A no-op when the next attempt has already started (it then owns the entry).
    """
    keys = [_run_key(task_id), _deadlines_key(), _config_key(config_id)]
    return bool(await _run_script(redis, _REQUEUE, keys, task_id, attempt, deadline))


def queue_finish_many(pipe: Pipeline, runs: Sequence[tuple[str, int | None]]) -> None:
    """The removal of finished runs (task id, config id): a few commands for any number."""
    if not runs:
        return
    by_config: dict[int | None, list[str]] = {}
    for task_id, config_id in runs:
        by_config.setdefault(config_id, []).append(task_id)
    pipe.zrem(_deadlines_key(), *(task_id for task_id, _ in runs))
    for config_id, task_ids in by_config.items():
        pipe.zrem(_config_key(config_id), *task_ids)
    pipe.delete(*(_run_key(task_id) for task_id, _ in runs))


async def claim_due(redis: Redis, *, lease_seconds: float, limit: int = 100) -> list[LiveRun]:
    """Claim started runs past their deadline for this reaper, for `lease_seconds`."""
    now = time.time()
    task_ids = await _run_script(redis, _CLAIM, [_deadlines_key()], now, now + lease_seconds, limit)
    if not task_ids:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for task_id in task_ids:
            pipe.hgetall(_run_key(task_id))
        hashes = await pipe.execute()
    claimed = list(zip(task_ids, hashes, strict=True))
    # A run that finished between the claim and this read left nothing to record.
    gone = [task_id for task_id, fields in claimed if not fields]
    if gone:
        await redis.zrem(_deadlines_key(), *gone)
    return [LiveRun.from_hash(task_id, fields) for task_id, fields in claimed if fields]


async def get(redis: Redis, task_id: str) -> LiveRun | None:
    fields: dict[str, str] = await redis.hgetall(_run_key(task_id))  # type: ignore[assignment]
    return LiveRun.from_hash(task_id, fields) if fields else None


async def count_in_flight(redis: Redis) -> int:
    return int(await redis.zcard(_deadlines_key()))


async def deadlines(redis: Redis, *, limit: int = 100) -> list[tuple[str, datetime]]:
    """The runs in flight with their deadlines, earliest first."""
    found = cast(
        list[tuple[str, float]],
        await redis.zrange(_deadlines_key(), 0, limit - 1, withscores=True),
    )
    return [(task_id, datetime.fromtimestamp(score, UTC)) for task_id, score in found]
