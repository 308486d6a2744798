"""The scheduler waits out a Redis outage (a failover takes seconds): a fire sent while Redis
went away still gets its bookkeeping once Redis is back, and that bookkeeping, run again
after a reply lost with the connection, is not done twice.

The outage is a redis-server of the test's own (the shared Redis is untouched), stopped
after a SAVE and started again on the same port and folder: back with the same data.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from backend.config import get_settings
from backend.scheduler.source import TaskhubScheduleSource
from backend.services import schedule_entries
from backend.services.redis import scheduler as schedule_state
from backend.services.redis.keys import create_client
from tests.support.fires import first_entry, kinds, started
from tests.support.redis_server import RedisServer


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    server = RedisServer(tmp_path)
    await server.start()
    try:
        yield server
    finally:
        server.kill()


async def test_post_send_books_the_fire_once_redis_is_back(
    own_redis: RedisServer, session: AsyncSession, caplog: pytest.LogCaptureFixture
) -> None:
    settings = get_settings().model_copy(
        update={"redis_url": own_redis.url, "redis_outage_wait_seconds": 60}
    )
    redis = create_client(own_redis.url)
    source = TaskhubScheduleSource(settings)
    try:
        config = await started(session, redis, now=datetime.now(UTC))
        task = await first_entry(redis, config.id)
        await source.pre_send(task)  # claimed; the message is "published" now
        await redis.save()
        own_redis.kill()  # Redis goes away between the publish and the bookkeeping

        caplog.set_level(logging.WARNING, logger="backend.redis_retry")
        booking = asyncio.create_task(source.post_send(task))
        deadline = time.monotonic() + 30
        while "Redis unreachable" not in caplog.text:  # the retries have begun
            assert not booking.done(), booking  # failing, it would be done
            assert time.monotonic() < deadline, "post_send never retried"
            await asyncio.sleep(0.05)
        await own_redis.start()  # back, with the claim and the schedule

        await asyncio.wait_for(booking, timeout=30)
        await redis.connection_pool.disconnect()  # the test's own connection died with it

        assert await kinds(redis, config.id) == ["started", "fired"]
        queued = [entry for entry, _ in await schedule_state.queued_entries(redis, config.id)]
        assert task.schedule_id not in queued
        assert len(queued) == schedule_entries.QUEUE_DEPTH  # the next occurrence queued
        _, _, fire_ms = schedule_state.parse_schedule_id(task.schedule_id)
        [claim] = await schedule_state.claim_values(
            redis, config.id, [schedule_state.from_ms(fire_ms)]
        )
        assert schedule_state.is_recorded(claim)
    finally:
        await source.shutdown()
        await redis.aclose()


async def test_after_fire_run_again_after_a_lost_reply_books_the_fire_once(
    session: AsyncSession, redis: Redis
) -> None:
    """The transaction ran but its reply was lost: run again, it finds the entry gone and
    its claim recorded, and writes no second `fired` event nor counts the fire twice."""
    config = await started(session, redis, now=datetime.now(UTC))
    entry_id, fire_at = (await schedule_state.queued_entries(redis, config.id))[0]
    claim_key = schedule_state.claim_key(config.id, schedule_state.to_ms(fire_at))
    await redis.set(claim_key, schedule_state.SENT + "a:1")
    now = fire_at + timedelta(milliseconds=50)

    await schedule_entries.after_fire(redis, entry_id, task_id="t", owner="a:1", now=now)
    once = await schedule_state.queued_entries(redis, config.id)
    await schedule_entries.after_fire(redis, entry_id, task_id="t", owner="a:1", now=now)

    assert await kinds(redis, config.id) == ["started", "fired"]
    assert (await schedule_state.read_state(redis, config.id)).fired == 1
    assert await schedule_state.queued_entries(redis, config.id) == once
    assert entry_id not in [entry for entry, _ in once]
    assert await redis.get(claim_key) == schedule_state.RECORDED + "a:1"
