"""The real `taskiq scheduler` process against real Redis and RabbitMQ.

A fire is observed through its `fired` history event (written right after the send) and
through the messages that reach the test's RabbitMQ queue.
"""

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.services.redis import history
from backend.services.redis import scheduler as store
from tests import processes
from tests.factories import create_config
from tests.runs_helpers import records
from tests.worker import Worker


@pytest.fixture
def scheduler() -> Iterator[None]:
    process = processes.start_scheduler()
    yield
    processes.stop(process)


async def fired(redis: Redis, config_id: int) -> list[dict]:
    events, _ = await history.read(redis, config_id, limit=100)
    return [e for e in reversed(events) if e["event"] == "fired"]


async def start(client: httpx.AsyncClient, headers: dict, config_id: int, action: str = "start"):
    response = await client.post(
        f"/api/v1/tasks/configs/{config_id}/actions/{action}", headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def fire_times(events: list[dict]) -> list[datetime]:
    return [datetime.fromisoformat(e["fire_at"]) for e in events]


def send_delays(events: list[dict]) -> list[float]:
    return [
        (datetime.fromisoformat(e["at"]) - datetime.fromisoformat(e["fire_at"])).total_seconds()
        for e in events
    ]


@pytest.mark.usefixtures("scheduler")
async def test_interval_fires_on_its_grid_and_stops_on_pause(
    client: httpx.AsyncClient, superuser_headers: dict, session: AsyncSession, redis: Redis
) -> None:
    config = await create_config(session, scheduler_type="interval", schedule_config={"seconds": 2})
    started = await start(client, superuser_headers, config.id)
    first_fire = datetime.fromisoformat(started["next_run_at"])
    events = await processes.eventually(
        lambda: fired(redis, config.id), lambda e: len(e) >= 3, timeout=15
    )
    times = sorted(fire_times(events))  # two replicas may record neighbouring fires out of order
    assert times[0] == first_fire
    assert all(b - a == timedelta(seconds=2) for a, b in pairwise(times))
    assert all(0 <= d < 1.0 for d in send_delays(events)), send_delays(events)

    await start(client, superuser_headers, config.id, "pause")
    paused_at = datetime.now(UTC)
    count = len(await fired(redis, config.id))
    await asyncio.sleep(4)  # a window in which a wrongly kept entry would have fired twice
    late = [e for e in await fired(redis, config.id) if datetime.fromisoformat(e["at"]) > paused_at]
    assert late == []
    assert len(await fired(redis, config.id)) == count


@pytest.mark.usefixtures("scheduler")
async def test_date_fires_once_then_completed(
    client: httpx.AsyncClient, superuser_headers: dict, session: AsyncSession, redis: Redis
) -> None:
    run_date = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
    config = await create_config(
        session, scheduler_type="date", schedule_config={"run_date": run_date.isoformat()}
    )
    await start(client, superuser_headers, config.id)
    events = await processes.eventually(
        lambda: fired(redis, config.id), lambda e: len(e) >= 1, timeout=15
    )
    assert fire_times(events) == [run_date]

    assert (await store.read_state(redis, config.id)).status == "completed"
    kinds = [e["event"] for e in (await history.read(redis, config.id))[0]]
    assert kinds[:2] == ["completed", "fired"]


async def drain_sent(config_id: int) -> list[str]:
    """Take this config's messages off the test queue; return their task ids."""
    import os

    import aio_pika

    connection = await aio_pika.connect(
        os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
    )
    task_ids = []
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(os.environ["RABBITMQ_QUEUE"], ensure=True)
        # The queue is this test session's own and no worker consumes it here: drain it all.
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            if str(message.headers.get("config_id")) == str(config_id):
                task_ids.append(str(message.headers["task_id"]))
    return task_ids


async def test_two_schedulers_send_each_fire_once(
    client: httpx.AsyncClient, superuser_headers: dict, session: AsyncSession, redis: Redis
) -> None:
    replicas = [processes.start_scheduler(f"replica-{i}") for i in range(2)]
    try:
        config = await create_config(
            session, scheduler_type="interval", schedule_config={"seconds": 1}
        )
        await start(client, superuser_headers, config.id)
        events = await processes.eventually(
            lambda: fired(redis, config.id), lambda e: len(e) >= 12, timeout=25
        )
        await start(client, superuser_headers, config.id, "stop")
    finally:
        for process in replicas:
            processes.stop(process)
    events = await fired(redis, config.id)
    times = sorted(fire_times(events))  # two replicas may record neighbouring fires out of order
    assert len(times) == len(set(times))
    assert all(b - a == timedelta(seconds=1) for a, b in pairwise(times))
    sent = await drain_sent(config.id)
    assert sorted(sent) == sorted(e["task_id"] for e in events)
    assert len(sent) == len(set(sent))


async def test_killed_scheduler_restarted_continues_and_coalesces_missed_fires(
    client: httpx.AsyncClient, superuser_headers: dict, session: AsyncSession, redis: Redis
) -> None:
    config = await create_config(session, scheduler_type="interval", schedule_config={"seconds": 1})
    first = processes.start_scheduler("killed")
    try:
        await start(client, superuser_headers, config.id)
        await processes.eventually(
            lambda: fired(redis, config.id), lambda e: len(e) >= 2, timeout=15
        )
    finally:
        processes.stop(first, kill=True)
    down_since = datetime.now(UTC)
    await asyncio.sleep(5)  # the outage: the three queued fires fall due with nobody to send
    restarted = processes.start_scheduler("restarted")
    try:
        before = len(await fired(redis, config.id))
        await processes.eventually(
            lambda: fired(redis, config.id), lambda e: len(e) >= before + 4, timeout=20
        )
    finally:
        processes.stop(restarted)
    events = await fired(redis, config.id)
    times = sorted(fire_times(events))  # two replicas may record neighbouring fires out of order
    assert len(times) == len(set(times)), "a fire was sent twice"
    during_outage = [
        t
        for t in times
        if down_since + timedelta(seconds=1) < t < down_since + timedelta(seconds=5)
    ]
    assert len(during_outage) <= 1, "missed fires inside the grace period are coalesced into one"
    kinds = [e["event"] for e in (await history.read(redis, config.id))[0]]
    assert "missed" in kinds


async def test_fires_older_than_grace_are_skipped_and_the_grid_kept(
    client: httpx.AsyncClient, superuser_headers: dict, session: AsyncSession, redis: Redis
) -> None:
    config = await create_config(session, scheduler_type="interval", schedule_config={"seconds": 2})
    state = await start(client, superuser_headers, config.id)
    anchor_fire = datetime.fromisoformat(state["next_run_at"])
    await asyncio.sleep(8)  # no scheduler runs: every queued fire is now older than the grace
    process = processes.start_scheduler("grace", MISFIRE_GRACE_SECONDS="1")
    try:
        events = await processes.eventually(
            lambda: fired(redis, config.id), lambda e: len(e) >= 2, timeout=15
        )
    finally:
        processes.stop(process)
    history_events, _ = await history.read(redis, config.id)
    missed = [e for e in history_events if e["event"] == "missed"]
    assert missed
    assert missed[0]["count"] == 3
    for fire in fire_times(events):
        assert (fire - anchor_fire) % timedelta(seconds=2) == timedelta(0), "grid shifted"
        assert fire > anchor_fire + timedelta(seconds=6)


async def test_reconcile_restores_entries_and_forgets_deleted_configs(
    client: httpx.AsyncClient, superuser_headers: dict, session: AsyncSession, redis: Redis
) -> None:
    kept = await create_config(session, scheduler_type="interval", schedule_config={"minutes": 10})
    deleted = await create_config(
        session, scheduler_type="interval", schedule_config={"minutes": 10}
    )
    for config in (kept, deleted):
        await start(client, superuser_headers, config.id)
    for entry_id, _ in await store.queued_entries(redis, kept.id):
        await redis.zrem(store.config_entries_key(kept.id), entry_id)  # a broken chain
    await session.delete(deleted)
    await session.commit()
    process = processes.start_scheduler("reconcile")
    try:
        entries = await processes.eventually(
            lambda: store.queued_entries(redis, kept.id), lambda e: len(e) == 3, timeout=15
        )
        await processes.eventually(
            lambda: store.read_state(redis, deleted.id), lambda s: s.status == "inactive", timeout=5
        )
    finally:
        processes.stop(process)
    state = await store.read_state(redis, kept.id)
    assert state.next_run_at == entries[0][1]
    assert await store.queued_entries(redis, deleted.id) == []
    assert deleted.id not in await store.ids_with_status(redis, "inactive")


async def test_next_run_at_is_when_the_run_starts(
    client: httpx.AsyncClient,
    superuser_headers: dict,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    """Cron (every minute) and interval: the promised next run is the recorded start."""
    worker = await Worker(tmp_path / "worker.log").start()
    scheduler = processes.start_scheduler("next-run")
    try:
        cron = await create_config(
            session, scheduler_type="cron", schedule_config={"cron_expression": "* * * * *"}
        )
        interval = await create_config(
            session, scheduler_type="interval", schedule_config={"seconds": 3}
        )
        promised = {
            config.id: datetime.fromisoformat(
                (await start(client, superuser_headers, config.id))["next_run_at"]
            )
            for config in (cron, interval)
        }
        for config_id, next_run_at in promised.items():
            runs = await processes.eventually(
                lambda config_id=config_id: records(sessionmaker, config_id),
                lambda found: len(found) >= 1,
                timeout=75,
            )
            started = runs[0].started_at
            assert abs((started - next_run_at).total_seconds()) < 2, (config_id, started)
            assert runs[0].trigger == "scheduled"
    finally:
        processes.stop(scheduler)
        worker.stop()
