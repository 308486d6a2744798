"""The `history` store: per config, a capped list of schedule events, newest first."""

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from backend.services.redis.keys import key

DEFAULT_CAP = 100

EVENTS = frozenset(
    {
        "created", "updated", "deleted",
        "started", "paused", "resumed", "stopped", "reloaded", "completed", "auto_paused",
        "fired", "send_failed", "skipped", "buffered", "missed", "duplicate", "backfill",
        "succeeded", "failed", "timed_out", "retrying", "lost", "cancelled",
    }
)  # fmt: skip


def _events_key(config_id: int) -> str:
    return key("history", config_id)


def _encode(event: str, at: datetime | None, data: dict[str, Any]) -> str:
    if event not in EVENTS:
        raise ValueError(f"unknown history event {event!r}")
    stamp = (at or datetime.now(UTC)).isoformat()
    return json.dumps({"event": event, "at": stamp, **data}, default=str)


def queue_append(
    pipe: Pipeline,
    config_id: int,
    event: str,
    *,
    at: datetime | None = None,
    cap: int = DEFAULT_CAP,
    **data: Any,
) -> None:
    """Add the append to a pipeline the caller already runs (one round trip for several)."""
    name = _events_key(config_id)
    pipe.lpush(name, _encode(event, at, data))
    pipe.ltrim(name, 0, cap - 1)


def queue_append_many(
    pipe: Pipeline,
    config_id: int,
    events: Sequence[tuple[str, dict[str, Any]]],
    *,
    cap: int = DEFAULT_CAP,
) -> None:
    """Append events (oldest first, stamped now) to one config's history: two commands."""
    if not events:
        return
    name = _events_key(config_id)
    pipe.lpush(name, *(_encode(event, None, data) for event, data in events))
    pipe.ltrim(name, 0, cap - 1)


async def append(
    redis: Redis,
    config_id: int,
    event: str,
    *,
    at: datetime | None = None,
    cap: int = DEFAULT_CAP,
    **data: Any,
) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        queue_append(pipe, config_id, event, at=at, cap=cap, **data)
        await pipe.execute()


async def read(
    redis: Redis, config_id: int, *, limit: int = 100, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """One page of events, newest first, and the total held."""
    name = _events_key(config_id)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.lrange(name, offset, offset + limit - 1)
        pipe.llen(name)
        raw, total = await pipe.execute()
    return [json.loads(item) for item in raw], total
