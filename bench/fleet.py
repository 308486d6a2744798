"""Many configs at once: rows by COPY, schedules started with the schedule service's pieces.

`start_all` writes what `schedules.apply_action(..., "start")` writes for each config (state,
status set, the next QUEUE_DEPTH entries, a `started` event), but for thousands of fresh
configs in a few pipelines instead of one locked transaction each: nobody else touches them.
"""

import contextlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime

import asyncpg
from redis.asyncio import Redis

from backend.config import get_settings
from backend.models import TaskConfig
from backend.services import schedule_entries, schedules
from backend.services.redis import history
from backend.services.redis import scheduler as schedule_state
from backend.services.redis.scheduler import ScheduleState
from backend.tasks import load_all
from backend.triggers.fires import upcoming

EVERY_MINUTE = {"cron_expression": "* * * * *"}
PIPELINE_CHUNK = 500


@contextlib.contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """Point this process's Settings (key prefix, database) at one bench's isolated names."""
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings.cache_clear()


async def create_configs(
    dsn: str, n: int, *, schedule_config: dict | None = None, scheduler_type: str = "cron"
) -> list[TaskConfig]:
    """Insert n `demo.sleep` configs with one COPY; return them (detached, with ids)."""
    schedule = json.dumps(schedule_config or EVERY_MINUTE)
    parameters = json.dumps({"seconds": 0})
    rows = [
        (f"bench-{i:05d}", "demo.sleep", scheduler_type, schedule, parameters) for i in range(n)
    ]
    columns = ["name", "task_type", "scheduler_type", "schedule_config", "parameters"]
    connection = await asyncpg.connect(dsn)
    try:
        await connection.copy_records_to_table("task_configs", records=rows, columns=columns)
    finally:
        await connection.close()
    return await read_configs(dsn)


async def read_configs(dsn: str, limit: int | None = None) -> list[TaskConfig]:
    """The configs in the table (the first `limit`), detached, as the benches use them."""
    connection = await asyncpg.connect(dsn)
    try:
        fetched = await connection.fetch(
            "SELECT id, name, task_type, scheduler_type, schedule_config::text AS sc,"
            " parameters::text AS p, max_retries, timeout_seconds, priority, overlap_policy"
            " FROM task_configs ORDER BY id LIMIT $1",
            limit,
        )
    finally:
        await connection.close()
    return [
        TaskConfig(
            id=row["id"],
            name=row["name"],
            task_type=row["task_type"],
            scheduler_type=row["scheduler_type"],
            schedule_config=json.loads(row["sc"]),
            parameters=json.loads(row["p"]),
            max_retries=row["max_retries"],
            timeout_seconds=row["timeout_seconds"],
            priority=row["priority"],
            overlap_policy=row["overlap_policy"],
        )
        for row in fetched
    ]


async def start_all(
    redis: Redis, configs: list[TaskConfig], *, now: datetime | None = None
) -> None:
    """Start every (fresh, inactive) config's schedule, as the `start` action does."""
    load_all()
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    for offset in range(0, len(configs), PIPELINE_CHUNK):
        async with redis.pipeline(transaction=False) as pipe:
            for config in configs[offset : offset + PIPELINE_CHUNK]:
                plan = schedules.plan_of(config)
                fires = upcoming(
                    plan.timing(), after=now, anchor=now, count=schedule_entries.QUEUE_DEPTH
                )
                state = ScheduleState(
                    status="active",
                    next_run_at=fires[0].at,
                    generation=1,
                    anchor=now,
                    plan=plan.model_dump(),
                )
                schedule_entries.queue_fires(pipe, config.id, state, fires)
                schedule_state.queue_state(pipe, config.id, state)
                history.queue_append(pipe, config.id, "started", at=now, status="active")
            await pipe.execute()


async def delete_keys(redis: Redis, prefix: str) -> None:
    batch: list[str] = []
    async for name in redis.scan_iter(match=f"{prefix}:*", count=5000):
        batch.append(name)
        if len(batch) >= 5000:
            await redis.delete(*batch)
            batch = []
    if batch:
        await redis.delete(*batch)
