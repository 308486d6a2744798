"""The `scheduler` store, live-state side: each config's schedule status and next run time.

Keys (all built here, nothing else touches them):
- `schedule_state:{config_id}`: a hash with `status` and `next_run_at` (ISO 8601, UTC).
  A config with no hash is `inactive`.
- `schedule_status:{status}`: a set of config ids per status other than `inactive`, so the
  API can filter a listing by status without reading every hash. `inactive` = in no set.

Every status change must update the hash and the sets together, in one transaction:
use `queue_set_state`/`set_state` and `queue_forget`/`forget`, never raw commands.
(The schedules issue adds the schedule entries themselves to this module.)
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from backend.services.redis.keys import key

Status = Literal["inactive", "active", "paused", "completed"]
STATUSES: tuple[Status, ...] = get_args(Status)
# `inactive` has no set: it is the absence of state.
INDEXED_STATUSES: tuple[Status, ...] = tuple(s for s in STATUSES if s != "inactive")


@dataclass(frozen=True)
class LiveState:
    status: Status = "inactive"
    next_run_at: datetime | None = None


def _state_key(config_id: int) -> str:
    return key("schedule_state", config_id)


def _status_key(status: Status) -> str:
    return key("schedule_status", status)


def _decode(raw: dict[str, str]) -> LiveState:
    status = raw.get("status", "inactive")
    if status not in STATUSES:
        raise ValueError(f"unknown schedule status {status!r} in Redis")
    next_run = raw.get("next_run_at")
    return LiveState(
        status=status,  # type: ignore[arg-type]  # checked against STATUSES above
        next_run_at=datetime.fromisoformat(next_run) if next_run else None,
    )


async def read_states(redis: Redis, config_ids: list[int]) -> dict[int, LiveState]:
    """The live state of each config, in one round trip whatever the number of ids."""
    if not config_ids:
        return {}
    async with redis.pipeline(transaction=False) as pipe:
        for config_id in config_ids:
            pipe.hgetall(_state_key(config_id))
        raws = await pipe.execute()
    return {config_id: _decode(raw) for config_id, raw in zip(config_ids, raws, strict=True)}


async def read_state(redis: Redis, config_id: int) -> LiveState:
    return (await read_states(redis, [config_id]))[config_id]


async def ids_with_status(redis: Redis, status: Status) -> set[int]:
    """Configs in `status`; for `inactive`, the configs in ANY other status (to exclude)."""
    if status == "inactive":
        members = await redis.sunion([_status_key(s) for s in INDEXED_STATUSES])
    else:
        members = await redis.smembers(_status_key(status))
    return {int(member) for member in members}


def queue_set_state(pipe: Pipeline, config_id: int, state: LiveState) -> None:
    """Queue a status change on a transactional pipeline: hash and sets move together."""
    name = _state_key(config_id)
    for status in INDEXED_STATUSES:
        if status != state.status:
            pipe.srem(_status_key(status), config_id)
    pipe.delete(name)
    if state.status == "inactive":
        return
    pipe.sadd(_status_key(state.status), config_id)
    pipe.hset(name, "status", state.status)
    if state.next_run_at is not None:
        pipe.hset(name, "next_run_at", state.next_run_at.isoformat())


async def set_state(redis: Redis, config_id: int, state: LiveState) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        queue_set_state(pipe, config_id, state)
        await pipe.execute()


def queue_forget(pipe: Pipeline, config_id: int) -> None:
    queue_set_state(pipe, config_id, LiveState())


async def forget(redis: Redis, config_id: int) -> None:
    """Drop a config's live state (it becomes `inactive`), e.g. when it is deleted."""
    async with redis.pipeline(transaction=True) as pipe:
        queue_forget(pipe, config_id)
        await pipe.execute()
