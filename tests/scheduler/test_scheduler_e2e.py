"""The real `taskiq scheduler` process against real Redis and RabbitMQ.

A fire is observed through its `fired` history event (written right after the send) and
through the messages that reach the test's RabbitMQ queue.
"""

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.services.redis import history
from backend.services.redis import scheduler as schedule_state
from tests.support import processes
from tests.support.factories import create_config
from tests.support.runs import records
from tests.support.schedule_state import unconfirmed_fires
from tests.support.worker_process import Worker

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="class")
async def scheduler() -> AsyncIterator[None]:
    """One scheduler for the tests of a class (TestOneScheduler): the other tests of this
    module start their own, with settings of their own, and need none running besides."""
    process = processes.start_scheduler()
    try:
        await processes.scheduler_ready(process)
        yield
    finally:
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


async def fired_after(redis: Redis, config_id: int, moment: datetime) -> list[dict]:
    return [e for e in await fired(redis, config_id) if datetime.fromisoformat(e["at"]) > moment]


async def assert_fires_on_time(redis: Redis, config_id: int, promised: datetime) -> None:
    """The next fire after `promised` was announced is exactly that time, sent within 1 s."""
    events = await processes.eventually(
        lambda: fired(redis, config_id),
        lambda e: any(datetime.fromisoformat(x["fire_at"]) >= promised for x in e),
        timeout=10,
    )
    first = min(
        (x for x in events if datetime.fromisoformat(x["fire_at"]) >= promised),
        key=lambda x: x["fire_at"],
    )
    assert datetime.fromisoformat(first["fire_at"]) == promised
    assert 0 <= send_delays([first])[0] < 1.0, first


async def assert_silent(redis: Redis, config_id: int, since: datetime, seconds: float) -> None:
    """No fire is sent after `since` (when the action returned) for `seconds`."""
    await asyncio.sleep(seconds)  # a window in which a wrongly kept entry would have fired
    assert await fired_after(redis, config_id, since) == []


@pytest.mark.usefixtures("scheduler")
class TestOneScheduler:
    """The tests that share the class's scheduler: each uses configs of its own."""

    async def test_interval_fires_on_its_grid_and_obeys_every_action(
        self,
        client: httpx.AsyncClient,
        superuser_headers: dict,
        session: AsyncSession,
        redis: Redis,
    ) -> None:
        config = await create_config(
            session, scheduler_type="interval", schedule_config={"seconds": 2}
        )
        started = await start(client, superuser_headers, config.id)
        first_fire = datetime.fromisoformat(started["next_run_at"])
        events = await processes.eventually(
            lambda: fired(redis, config.id), lambda e: len(e) >= 3, timeout=15
        )
        times = sorted(fire_times(events))
        assert times[0] == first_fire
        assert all(b - a == timedelta(seconds=2) for a, b in pairwise(times))
        assert all(0 <= d < 1.0 for d in send_delays(events)), send_delays(events)

        await start(client, superuser_headers, config.id, "pause")
        await assert_silent(redis, config.id, datetime.now(UTC), 4)

        resumed = await start(client, superuser_headers, config.id, "resume")
        resumed_next = datetime.fromisoformat(resumed["next_run_at"])
        assert (resumed_next - first_fire) % timedelta(seconds=2) == timedelta(0), "grid shifted"
        await assert_fires_on_time(redis, config.id, resumed_next)

        await start(client, superuser_headers, config.id, "stop")
        await assert_silent(redis, config.id, datetime.now(UTC), 4)

        restarted = await start(client, superuser_headers, config.id, "start")
        await assert_fires_on_time(
            redis, config.id, datetime.fromisoformat(restarted["next_run_at"])
        )
        await start(client, superuser_headers, config.id, "stop")

    async def test_date_fires_once_then_completed(
        self,
        client: httpx.AsyncClient,
        superuser_headers: dict,
        session: AsyncSession,
        redis: Redis,
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

        assert (await schedule_state.read_state(redis, config.id)).status == "completed"
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


async def claim_owners(redis: Redis, config_id: int, fires: list[datetime]) -> list[str]:
    return await redis.mget(
        [schedule_state.claim_key(config_id, schedule_state.to_ms(fire)) for fire in fires]
    )


async def test_two_schedulers_send_each_fire_once(
    client: httpx.AsyncClient, superuser_headers: dict, session: AsyncSession, redis: Redis
) -> None:
    replicas = [processes.start_scheduler(f"replica-{i}") for i in range(2)]
    try:
        for process in replicas:
            await processes.scheduler_ready(process)
        config = await create_config(
            session, scheduler_type="interval", schedule_config={"seconds": 1}
        )
        await start(client, superuser_headers, config.id)
        await asyncio.sleep(15)
        await start(client, superuser_headers, config.id, "stop")
        assert [process.poll() for process in replicas] == [None, None], "a replica died"
    finally:
        for process in replicas:
            processes.stop(process)
    events = await fired(redis, config.id)
    times = sorted(fire_times(events))  # two replicas may record neighbouring fires out of order
    assert len(times) >= 13, times  # 15 s of a 1 s interval, less start-up
    assert len(times) == len(set(times))
    assert all(b - a == timedelta(seconds=1) for a, b in pairwise(times))
    sent = await drain_sent(config.id)
    assert sorted(sent) == sorted(e["task_id"] for e in events)
    assert len(sent) == len(set(sent))
    owners = {owner.rsplit(":", 1)[1] for owner in await claim_owners(redis, config.id, times)}
    assert owners == {str(process.pid) for process in replicas}, "both replicas won claims"


async def kind_of(redis: Redis, config_id: int, kind: str) -> list[dict]:
    events, _ = await history.read(redis, config_id, limit=100)
    return [e for e in events if e["event"] == kind]


def fire_of(task_id: str) -> datetime:
    """A scheduled run's task id is `s{config_id}-{fire_ms}`."""
    return schedule_state.from_ms(int(task_id.rsplit("-", 1)[1]))


async def test_killed_scheduler_restarted_continues_and_coalesces_missed_fires(
    client: httpx.AsyncClient, superuser_headers: dict, session: AsyncSession, redis: Redis
) -> None:
    config = await create_config(session, scheduler_type="interval", schedule_config={"seconds": 1})
    first = processes.start_scheduler("killed")
    try:
        await processes.scheduler_ready(first)
        await start(client, superuser_headers, config.id)
        await processes.eventually(
            lambda: fired(redis, config.id), lambda e: len(e) >= 2, timeout=15
        )
    finally:
        processes.stop(first, kill=True)
    unconfirmed = await unconfirmed_fires(redis, [config.id])
    await asyncio.sleep(5)  # the outage: the three queued fires fall due with nobody to send
    restarted = processes.start_scheduler("restarted")
    try:
        [missed] = await processes.eventually(
            lambda: kind_of(redis, config.id, "missed"), lambda found: len(found) == 1, timeout=20
        )
        reconciled_at = datetime.fromisoformat(missed["at"])
        await processes.eventually(
            lambda: fired(redis, config.id),
            lambda e: max(fire_times(e)) >= reconciled_at + timedelta(seconds=3),
            timeout=15,
        )
    finally:
        processes.stop(restarted)
    await start(client, superuser_headers, config.id, "stop")

    # RabbitMQ holds what was really sent: every task id once, but for a fire the killed
    # replica claimed and had not marked sent (it may have published it; the restarted one
    # sends it again after the lease, and a worker would drop the copy), and the sent fires
    # exactly the grid with one gap.
    sent = await drain_sent(config.id)
    twice = {task_id for task_id in sent if sent.count(task_id) > 1}
    assert twice <= unconfirmed, "a fire was sent twice"
    assert all(sent.count(task_id) <= 2 for task_id in twice)
    times = sorted(fire_of(task_id) for task_id in sent)
    before = [t for t in times if t < datetime.fromisoformat(missed["first"])]
    after = [t for t in times if t > datetime.fromisoformat(missed["last"])]
    assert before + after == times, "a fire counted as missed was sent"
    assert after[0] - before[-1] == timedelta(seconds=missed["count"] + 1)
    assert datetime.fromisoformat(missed["first"]) == before[-1] + timedelta(seconds=1)
    # Exactly one fire from the outage was sent: the newest at reconcile time (in the grace).
    outage_fires = [t for t in after if t <= reconciled_at]
    assert outage_fires == [after[0]]
    assert reconciled_at - after[0] < timedelta(seconds=1)
    assert all(b - a == timedelta(seconds=1) for a, b in pairwise(after))
    recorded = [e["task_id"] for e in await fired(redis, config.id)]
    assert len(recorded) == len(set(recorded)), "a fire recorded twice"
    assert set(recorded) <= set(sent)
    assert len(set(sent) - set(recorded)) <= 1  # the killed replica may have died mid-send


async def test_fires_older_than_grace_are_skipped_and_the_grid_kept(
    client: httpx.AsyncClient, superuser_headers: dict, session: AsyncSession, redis: Redis
) -> None:
    config = await create_config(session, scheduler_type="interval", schedule_config={"seconds": 2})
    state = await start(client, superuser_headers, config.id)
    anchor_fire = datetime.fromisoformat(state["next_run_at"])
    # No scheduler runs until the fourth occurrence is older than the 1 s grace (a deadline
    # from the anchor, not a guess): more missed than the QUEUE_DEPTH (3) entries queued.
    older_than_grace = anchor_fire + 3 * timedelta(seconds=2) + timedelta(seconds=1.5)
    await asyncio.sleep(max(0.0, (older_than_grace - datetime.now(UTC)).total_seconds()))
    process = processes.start_scheduler(
        "grace", MISFIRE_GRACE_SECONDS="1", SCHEDULE_CLAIM_LEASE_SECONDS="0.5"
    )
    try:
        # Its start-up (seconds on a loaded machine) is not part of the 15 s for two fires.
        await processes.scheduler_ready(process)
        events = await processes.eventually(
            lambda: fired(redis, config.id), lambda e: len(e) >= 2, timeout=15
        )
    finally:
        processes.stop(process)
    history_events, _ = await history.read(redis, config.id)
    [missed] = [e for e in history_events if e["event"] == "missed"]
    first, last = (datetime.fromisoformat(missed[k]) for k in ("first", "last"))
    assert first == anchor_fire
    # Every occurrence from the first queued fire on is counted, not just the three queued.
    assert missed["count"] == (last - first) // timedelta(seconds=2) + 1
    assert missed["count"] >= 4
    times = sorted(fire_times(events))
    assert times[0] == last + timedelta(seconds=2), "the schedule continues at the next one"
    for fire in times:
        assert (fire - anchor_fire) % timedelta(seconds=2) == timedelta(0), "grid shifted"


async def test_reconcile_restores_entries_and_forgets_deleted_configs(
    client: httpx.AsyncClient, superuser_headers: dict, session: AsyncSession, redis: Redis
) -> None:
    kept = await create_config(session, scheduler_type="interval", schedule_config={"minutes": 10})
    deleted = await create_config(
        session, scheduler_type="interval", schedule_config={"minutes": 10}
    )
    for config in (kept, deleted):
        await start(client, superuser_headers, config.id)
    for entry_id, _ in await schedule_state.queued_entries(redis, kept.id):
        await redis.zrem(schedule_state.config_entries_key(kept.id), entry_id)  # a broken chain
    await session.delete(deleted)
    await session.commit()
    # A config missing from the database is forgotten on the second pass that misses it.
    process = processes.start_scheduler("reconcile", RECONCILE_INTERVAL_SECONDS="1")
    try:
        entries = await processes.eventually(
            lambda: schedule_state.queued_entries(redis, kept.id), lambda e: len(e) == 3, timeout=15
        )
        await processes.eventually(
            lambda: schedule_state.read_state(redis, deleted.id),
            lambda state: state.status == "inactive",
            timeout=10,
        )
    finally:
        processes.stop(process)
    state = await schedule_state.read_state(redis, kept.id)
    assert state.next_run_at == entries[0][1]
    assert await schedule_state.queued_entries(redis, deleted.id) == []
    assert deleted.id not in await schedule_state.ids_with_status(redis, "inactive")


async def test_next_run_at_is_when_the_run_starts(
    client: httpx.AsyncClient,
    superuser_headers: dict,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    """Interval: the promised next run is the recorded start. (A cron's, every minute, is
    checked in test_schedule_options_e2e, which waits for the next minute anyway.)"""
    worker = Worker(tmp_path / "worker.log")
    scheduler = processes.start_scheduler("next-run")
    interval = None
    try:
        await asyncio.gather(worker.start(), processes.scheduler_ready(scheduler))
        interval = await create_config(
            session, scheduler_type="interval", schedule_config={"seconds": 3}
        )
        started = await start(client, superuser_headers, interval.id)
        next_run_at = datetime.fromisoformat(started["next_run_at"])
        runs = await processes.eventually(
            lambda: records(sessionmaker, interval.id), lambda found: len(found) >= 1, timeout=30
        )
        assert abs((runs[0].started_at - next_run_at).total_seconds()) < 2, runs[0].started_at
        assert runs[0].trigger == "scheduled"
    finally:
        if interval is not None:  # left active, a later test's scheduler would run it
            await start(client, superuser_headers, interval.id, "stop")
        processes.stop(scheduler)
        worker.stop()


async def test_sigterm_shuts_the_scheduler_down_as_sigint_does() -> None:
    """honcho and docker stop send SIGTERM: the sources' shutdown (the bookkeeping of sends
    already made) must run for it too, not only for Ctrl-C."""
    process = processes.start_scheduler("sigterm")
    try:
        await processes.scheduler_ready(process)
        os.killpg(process.pid, signal.SIGTERM)
        returncode = await asyncio.to_thread(process.wait, 15)
    finally:
        processes.stop(process, kill=True)
    log = process.log_path.read_text()  # type: ignore[attr-defined]
    assert returncode == 0, log
    assert "Scheduler shut down" in log
