"""Redis restarted under a running worker and scheduler: with AOF (as docker-compose runs it)
the schedules keep firing afterwards and every config's schedule status is intact."""

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aio_pika
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.services import schedules
from backend.services.redis import scheduler as schedule_state
from tests.support import processes
from tests.support.factories import create_config
from tests.support.redis_server import RedisServer
from tests.support.runs import records
from tests.support.worker_process import AMQP_URL, Worker

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        shutil.which("redis-server") is None, reason="needs the redis-server binary"
    ),
]


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    server = RedisServer(tmp_path, appendonly=True)
    await server.start()
    yield server
    server.stop()


@pytest.fixture
def own_services(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The processes this test starts use its Redis and its own queue."""
    queue = f"{os.environ['RABBITMQ_QUEUE']}-redis-restart"
    env = {"REDIS_URL": redis_server.url, "RABBITMQ_QUEUE": queue, "RABBITMQ_EXCHANGE": queue}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


async def delete_queue(name: str) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        for queue in (name, f"{name}.dead_letter", f"{name}.delay"):
            await channel.queue_delete(queue)
        await channel.exchange_delete(name)


async def test_schedules_keep_firing_after_a_redis_restart(
    redis_server: RedisServer,
    own_services: dict[str, str],
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    redis = Redis.from_url(redis_server.url, decode_responses=True)
    active = await create_config(session, scheduler_type="interval", schedule_config={"seconds": 2})
    paused = await create_config(session, scheduler_type="interval", schedule_config={"seconds": 2})
    worker = Worker(tmp_path / "worker.log")
    scheduler = None
    try:
        scheduler = processes.start_scheduler("redis-restart", **own_services)
        await worker.start()  # the scheduler starts meanwhile: each takes seconds
        await schedules.apply_action(redis, active, "start")
        await schedules.apply_action(redis, paused, "start")
        await schedules.apply_action(redis, paused, "pause")
        before = {c.id: await schedule_state.read_state(redis, c.id) for c in (active, paused)}
        await processes.eventually(
            lambda: records(sessionmaker, active.id), lambda r: len(r) >= 2, timeout=30
        )

        redis_server.stop()
        await asyncio.sleep(1)  # a second of outage: the processes see refused connections
        await redis_server.start()
        restarted_at = datetime.now(UTC)
        await redis.aclose()  # its pooled connections died with the server
        redis = Redis.from_url(redis_server.url, decode_responses=True)

        after = {c.id: await schedule_state.read_state(redis, c.id) for c in (active, paused)}
        assert after[active.id].status == "active"
        assert after[paused.id].status == "paused"
        assert after[active.id].generation == before[active.id].generation
        assert after[paused.id] == before[paused.id]

        async def runs_since_restart() -> list:
            return [
                r for r in await records(sessionmaker, active.id) if r.started_at > restarted_at
            ]

        fresh = await processes.eventually(runs_since_restart, lambda r: len(r) >= 2, timeout=40)
        assert all(r.is_success for r in fresh)
        assert all(r.trigger == "scheduled" for r in fresh)
        assert await records(sessionmaker, paused.id) == []
        assert (await schedule_state.read_state(redis, active.id)).status == "active"
    finally:
        if scheduler is not None:
            processes.stop(scheduler)
        worker.stop()
        await redis.aclose()
        await delete_queue(own_services["RABBITMQ_QUEUE"])
