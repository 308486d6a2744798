"""Records under faults: PostgreSQL unreachable when a run ends, shutdown, a crash before the
batch was written. Each ends in exactly one record per run."""

import asyncio
import os
from pathlib import Path

import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.config import get_settings
from backend.models import TaskConfig, TaskExecution
from backend.services import runs
from backend.services.redis import timeout as live_runs
from backend.worker.reaper import LOST_ERROR
from tests.support.factories import create_config
from tests.support.processes import eventually
from tests.support.runs import events, records
from tests.support.tcp_proxy import TcpProxy
from tests.support.worker_process import Worker

pytestmark = pytest.mark.e2e

RETRY_LOG = "run records failed"


async def kick(app: FastAPI, redis: Redis, config: TaskConfig) -> str:
    queued = await runs.kick(
        broker=app.state.broker,
        redis=redis,
        settings=get_settings(),
        config=config,
        trigger="manual",
    )
    return queued.task_id


async def recorded(
    sessionmaker: async_sessionmaker[AsyncSession], config_id: int, count: int, timeout: float = 15
) -> list[TaskExecution]:
    async def probe() -> list[TaskExecution] | None:
        found = await records(sessionmaker, config_id)
        return found if len(found) >= count else None

    return await eventually(probe, timeout=timeout)


async def executed(worker: Worker, task_id: str) -> None:
    async def probe() -> bool:
        return worker.log_count(f"ID: {task_id}") == 1

    await eventually(probe)


@pytest.fixture
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("record-faults")


async def test_record_lands_once_the_database_is_back(
    app: FastAPI,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    logs: Path,
) -> None:
    proxy = await TcpProxy("127.0.0.1", 5432).start()
    through_proxy = make_url(os.environ["DATABASE_URL"]).set(host="127.0.0.1", port=proxy.port)
    worker = Worker(
        logs / "worker.log",
        env={
            "DATABASE_URL": through_proxy.render_as_string(hide_password=False),
            "RECORD_RETRY_MAX_SECONDS": "0.5",
        },
    )
    await worker.start()
    try:
        config = await create_config(session, parameters={"seconds": 0})
        # A first run, so the worker's record buffer holds an open connection when it is cut.
        first = await kick(app, redis, config)
        await recorded(sessionmaker, config.id, 1)

        proxy.cut()
        second = await kick(app, redis, config)
        await executed(worker, second)

        async def retried() -> bool:
            return worker.log_count(RETRY_LOG) >= 3 and proxy.refused >= 2

        await eventually(retried, timeout=15)
        # The run has ended, its record cannot be written: it stays in flight, not lost.
        live = await live_runs.get(redis, second)
        assert live is not None
        assert live.state == "running"
        assert [r.task_id for r in await records(sessionmaker, config.id)] == [first]
        assert await events(redis, config.id, "lost") == []

        proxy.restore()
        found = await recorded(sessionmaker, config.id, 2)
    finally:
        # Off the event loop: the proxy runs on it and must relay the worker's goodbyes.
        await asyncio.to_thread(worker.stop)
        await proxy.close()
    assert [r.task_id for r in found] == [first, second]
    assert found[1].is_success is True
    assert found[1].result == {"slept_seconds": 0.0, "message": None}
    assert [e["task_id"] for e in await events(redis, config.id, "succeeded")] == [second, first]
    assert await events(redis, config.id, "lost") == []
    assert await live_runs.get(redis, second) is None
    assert len(await records(sessionmaker, config.id)) == 2


async def test_shutdown_writes_the_buffered_records(
    app: FastAPI,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    logs: Path,
) -> None:
    # A batch gathered for a minute: only the shutdown flush can write it within the test.
    worker = Worker(logs / "worker.log", env={"RECORD_FLUSH_SECONDS": "60"})
    await worker.start()
    try:
        config = await create_config(session, parameters={"seconds": 0})
        task_ids = [await kick(app, redis, config) for _ in range(3)]
        for task_id in task_ids:
            await executed(worker, task_id)
        assert await records(sessionmaker, config.id) == []
    finally:
        worker.stop()
    found = await records(sessionmaker, config.id)
    assert sorted(r.task_id for r in found) == sorted(task_ids)
    assert all(r.is_success for r in found)
    assert len(await events(redis, config.id, "succeeded")) == 3
    for task_id in task_ids:
        assert await live_runs.get(redis, task_id) is None


async def test_worker_killed_before_writing_its_batch_gives_one_lost_record(
    app: FastAPI,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    logs: Path,
) -> None:
    doomed = Worker(logs / "doomed.log", env={"RECORD_FLUSH_SECONDS": "60"})
    await doomed.start()
    try:
        config = await create_config(session, parameters={"seconds": 0}, timeout_seconds=1)
        task_id = await kick(app, redis, config)
        await executed(doomed, task_id)
    finally:
        doomed.kill()
    # The run finished but its record was only buffered: it is still in flight, and a
    # reaper records it as lost after its deadline (start + 1 s timeout + 1 s grace).
    survivor = await Worker(logs / "survivor.log").start()
    try:
        [record] = await recorded(sessionmaker, config.id, 1)
    finally:
        survivor.stop()
    assert record.task_id == task_id
    assert record.is_success is False
    assert record.error_message == LOST_ERROR
    assert len(await events(redis, config.id, "lost")) == 1
    assert await events(redis, config.id, "succeeded") == []
    assert len(await records(sessionmaker, config.id)) == 1
