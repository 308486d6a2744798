"""A scheduler SIGKILLed between claiming a fire and RabbitMQ confirming it: a surviving replica
takes the claim over once its lease ends and sends the fire within the misfire grace. The fire
runs once (an HTTP sink counts its task body) and has one record, whether the dead replica's
message never got out (held upstream) or reached RabbitMQ unconfirmed (held downstream: the
workers drop the second copy as a `duplicate`).

The doomed replica reaches RabbitMQ through a proxy the test holds, which stops it exactly
between its claim (Redis, direct) and its publish's confirm.
"""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.services import schedule_entries, schedules
from backend.services.redis import scheduler as schedule_state
from tests.support import processes
from tests.support.factories import create_config
from tests.support.http_sink import HttpSink
from tests.support.metrics import rendered, value
from tests.support.runs import events, records
from tests.support.tcp_proxy import Direction, TcpProxy
from tests.support.worker_process import AMQP_URL, Worker

pytestmark = pytest.mark.e2e

GRACE = timedelta(seconds=30)
SCHEDULER_ENV = {"SCHEDULE_CLAIM_LEASE_SECONDS": "2", "MISFIRE_GRACE_SECONDS": "30"}


@pytest.fixture(scope="module")
async def worker(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Worker]:
    process = Worker(tmp_path_factory.mktemp("claimer") / "worker.log")
    await process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
async def sink() -> AsyncIterator[HttpSink]:
    server = await HttpSink().start()
    yield server
    await server.close()


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    broker = urlsplit(AMQP_URL)
    started = await TcpProxy(broker.hostname or "127.0.0.1", broker.port or 5672).start()
    yield started
    await started.close()


def via(proxy: TcpProxy) -> str:
    broker = urlsplit(AMQP_URL)
    return broker._replace(
        netloc=f"{broker.username}:{broker.password}@127.0.0.1:{proxy.port}"
    ).geturl()


@pytest.mark.parametrize("held", ["upstream", "downstream"])
async def test_a_fire_whose_claimer_died_is_sent_by_a_survivor_and_runs_once(
    held: Direction,
    worker: Worker,
    sink: HttpSink,
    proxy: TcpProxy,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
) -> None:
    recovered_before = value(
        rendered(), "taskhub_schedule_fires_recovered_total", task_type="http.request"
    )
    doomed = processes.start_scheduler(f"claimer-{held}", RABBITMQ_URL=via(proxy), **SCHEDULER_ENV)
    survivor = None
    path = f"/fire/{uuid.uuid4().hex}"
    try:
        await processes.scheduler_ready(doomed)
        proxy.hold(held)
        fire_at = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
        config = await create_config(
            session,
            task_type="http.request",
            parameters={"url": sink.url(path)},
            scheduler_type="date",
            schedule_config={"run_date": fire_at.isoformat()},
        )
        await schedules.apply_action(redis, config, "start")

        async def claim() -> str | None:
            [found] = await schedule_state.claim_values(redis, config.id, [fire_at])
            return found

        claimed = await processes.eventually(claim, timeout=20)
        assert not schedule_state.is_sent(claimed), claimed  # stopped before the confirm
        if held == "downstream":  # the message did reach RabbitMQ: a worker runs it
            await processes.eventually(lambda: _hits(sink, path), timeout=20)
        survivor = processes.start_scheduler(f"survivor-{held}", **SCHEDULER_ENV)
        await processes.scheduler_ready(survivor)
        processes.stop(doomed, kill=True)

        [fired] = await processes.eventually(lambda: events(redis, config.id, "fired"), timeout=30)
        [record] = await processes.eventually(lambda: records(sessionmaker, config.id), timeout=30)
        if held == "downstream":
            await processes.eventually(lambda: events(redis, config.id, "duplicate"), timeout=30)
    finally:
        processes.stop(doomed, kill=True)
        if survivor is not None:
            processes.stop(survivor)
    task_id = schedule_entries.fire_task_id(config.id, fire_at)
    assert fired["task_id"] == task_id
    assert datetime.fromisoformat(fired["at"]) - fire_at < GRACE
    assert (record.task_id, record.is_success, record.trigger) == (task_id, True, "scheduled")
    assert sink.hits[path] == 1
    assert len(await records(sessionmaker, config.id)) == 1
    dropped = await events(redis, config.id, "duplicate")
    assert len(dropped) == (1 if held == "downstream" else 0)
    assert await events(redis, config.id, "missed") == []
    assert (await schedule_state.read_state(redis, config.id)).status == "completed"
    [value_now] = await schedule_state.claim_values(redis, config.id, [fire_at])
    assert schedule_state.is_sent(value_now)
    assert "its claimer stopped before sending it" in survivor.log_path.read_text()  # type: ignore[attr-defined]
    recovered = value(
        rendered(), "taskhub_schedule_fires_recovered_total", task_type="http.request"
    )
    assert recovered - recovered_before == 1


async def _hits(sink: HttpSink, path: str) -> int:
    return sink.hits[path]
