"""The chaos soak (tests/support/soak.py): SOAK_SECONDS (45 here, `make soak` 180) of
schedules and run-now calls while a random worker or scheduler is SIGKILLed every 5-10 s.
At the end, from the sink, the database and the history: no task id executed twice, every
sent fire and every run now has exactly one record, nothing left in flight, and every fire
that did not run is accounted `missed`. The counts are printed as one table."""

import os
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support import soak_report
from tests.support.http_sink import HttpSink, http_sink
from tests.support.soak import Soak
from tests.support.worker_process import AMQP_URL

pytestmark = [pytest.mark.e2e, pytest.mark.soak]

SECONDS = float(os.environ.get("SOAK_SECONDS", "45"))


@pytest.fixture
async def queue() -> AsyncIterator[str]:
    """The soak's own queues (and exchange), deleted afterwards."""
    name = f"{os.environ['RABBITMQ_QUEUE']}-soak"
    yield name
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        for queue_name in (name, f"{name}.dead_letter", f"{name}.delay"):
            await channel.queue_delete(queue_name)
        await channel.exchange_delete(name)


@pytest.fixture
async def sink() -> AsyncIterator[HttpSink]:
    async with http_sink() as server:
        yield server


async def test_chaos_soak_keeps_every_promise(
    queue: str,
    sink: HttpSink,
    redis: Redis,
    sessionmaker: async_sessionmaker[AsyncSession],
    superuser_headers: dict[str, str],
    tmp_path: Path,
    session: AsyncSession,
) -> None:
    soak = Soak(
        seconds=SECONDS, redis=redis, sink=sink, logs=tmp_path, headers=superuser_headers,
        queue=queue,
    )  # fmt: skip
    seen = await soak.run()
    report = await soak_report.build(seen, sink=sink, redis=redis, sessionmaker=sessionmaker)
    print(f"\nchaos soak, {SECONDS:g} s:\n{report.table()}")
    assert report.counts["fires sent"] > 0
    assert report.counts["run now accepted"] > 0
    assert report.counts["scheduler kills"] + report.counts["worker kills"] > 0
    assert not report.violations, "\n".join(report.violations[:30])
