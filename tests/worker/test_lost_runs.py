"""A worker killed mid-run: its run ends in exactly one failed record, written by the reaper."""

import asyncio
import time
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.config import get_settings
from backend.models import TaskExecution
from backend.resources import Resources
from backend.services import runs
from backend.services.redis import timeout as live_runs
from backend.worker.reaper import LOST_ERROR, reap_once
from tests.support.factories import create_config
from tests.support.processes import eventually
from tests.support.runs import events, records
from tests.support.worker_process import Worker

pytestmark = pytest.mark.e2e


async def test_sigkilled_worker_gives_one_lost_record(
    app: FastAPI,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    logs = tmp_path_factory.mktemp("lost")
    doomed = await Worker(logs / "doomed.log").start()
    try:
        config = await create_config(session, parameters={"seconds": 30}, timeout_seconds=3)
        queued = await runs.kick(
            broker=app.state.broker,
            redis=redis,
            settings=get_settings(),
            config=config,
            trigger="manual",
        )

        async def running_for_a_second() -> bool:
            # The message is acked right after the run is marked running; a kill in between
            # (a few ms) has RabbitMQ redeliver it, and the survivor drops the copy as a
            # duplicate (its attempt is claimed), leaving the run to the reaper all the same.
            # This test is about the reaper, so it kills well inside the task body.
            live = await live_runs.get(redis, queued.task_id)
            if live is None or live.state != "running" or live.started_at is None:
                return False
            return (datetime.now(UTC) - live.started_at).total_seconds() >= 1

        await eventually(running_for_a_second)
    finally:
        doomed.kill()
    started = time.monotonic()

    # Acked when received, the message is not redelivered: a fresh worker's reaper records it.
    survivor = await Worker(logs / "survivor.log").start()
    try:

        async def recorded() -> list[TaskExecution]:
            return await records(sessionmaker, config.id)

        await eventually(recorded, timeout=15)
    finally:
        survivor.stop()
    [record] = await records(sessionmaker, config.id)
    assert record.task_id == queued.task_id
    assert record.is_success is False
    assert record.error_message == LOST_ERROR
    assert time.monotonic() - started < 15
    assert len(await events(redis, config.id, "lost")) == 1
    assert await live_runs.get(redis, queued.task_id) is None
    assert survivor.log_count(f"ID: {queued.task_id}") == 0  # never ran a second time


async def test_two_reapers_record_a_lost_run_once(
    app: FastAPI, session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    config = await create_config(session)
    resources: Resources = app.state.resources
    now = time.time()
    await live_runs.start(
        resources.redis,
        live_runs.Start(
            task_id="lost-" + str(config.id),
            config_id=config.id,
            trigger="scheduled",
            attempt=2,
            scheduled_for=datetime(2026, 12, 1, 6, tzinfo=UTC),
            started_at=now - 10,
            deadline=now - 1,
            overlap="allow",
            ttl=60,
        ),
    )
    settings = get_settings()
    counts = await asyncio.gather(*(reap_once(resources, settings) for _ in range(4)))
    assert sum(counts) == 1
    [record] = await records(sessionmaker, config.id)
    assert (record.trigger, record.attempts, record.is_success) == ("scheduled", 2, False)
    assert record.scheduled_for == datetime(2026, 12, 1, 6, tzinfo=UTC)  # the fire it was for
    assert 9 < record.duration_seconds < 12
    assert await reap_once(resources, settings) == 0
