"""Redis Sentinel failover under load: a master, one replica and three sentinels of the
test's own; worker, scheduler and API on Sentinel; a 1 s interval config and a run-now loop
calling a local HTTP sink with each run's task id. The master is SIGKILLed: the service is
back within 10 s (the API answers 503 in the error shape meanwhile, never 500), no fire is
executed twice (each claim was on the replica before its fire was sent: WAIT), at most the
fires of the failover window are missed (and accounted so), every run has one record."""

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.broker import build_broker
from backend.config import Settings, get_settings
from backend.main import attach_resources, create_app
from backend.models import TaskExecution
from backend.services import schedule_entries, schedules
from backend.services.redis import timeout as live_runs
from backend.services.redis.keys import client_for
from tests.support import processes, sink_task
from tests.support.factories import create_config
from tests.support.http_sink import HttpSink, http_sink
from tests.support.redis_sentinel import SentinelSet
from tests.support.runs import events
from tests.support.worker_process import Worker

pytestmark = pytest.mark.e2e

BACK_WITHIN_SECONDS = 10
EVERY = timedelta(seconds=1)


@pytest.fixture
async def sentinels(tmp_path: Path) -> AsyncIterator[SentinelSet]:
    started = await SentinelSet(tmp_path / "redis").start()
    yield started
    started.stop()


@pytest.fixture
def on_sentinel(sentinels: SentinelSet) -> Settings:
    return get_settings().model_copy(
        update={
            "redis_sentinels": sentinels.sentinels.split(","),
            "redis_sentinel_master": "taskhub-test",
        }
    )


@pytest.fixture
async def redis_on_sentinel(on_sentinel: Settings) -> AsyncIterator[Redis]:
    client = client_for(on_sentinel)
    yield client
    await client.aclose()


@pytest.fixture
async def app_on_sentinel(on_sentinel: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(on_sentinel, broker=build_broker(on_sentinel))
    resources = attach_resources(app)
    yield app
    await app.state.broker.shutdown()
    await resources.close()


# Fixtures, so they stop whatever fails: a worker left behind would consume the session's
# queue on a dead Redis, a scheduler keep firing, into the tests after this one.
@pytest.fixture
def worker(sentinels: SentinelSet, tmp_path: Path) -> Iterator[Worker]:
    created = Worker(
        tmp_path / "worker.log", env=sentinels.env(), modules=("tests.support.sink_task",)
    )
    yield created
    created.stop()


@pytest.fixture
def scheduler(sentinels: SentinelSet) -> Iterator[subprocess.Popen]:
    process = processes.start_scheduler("scheduler-failover", **sentinels.env())
    yield process
    processes.stop(process)


@pytest.fixture
async def sink() -> AsyncIterator[HttpSink]:
    async with http_sink() as server:
        yield server


async def run_now_loop(
    app: FastAPI, config_id: int, headers: dict[str, str], answers: list[tuple[float, int, dict]]
) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        while True:
            response = await client.post(f"/api/v1/tasks/configs/{config_id}/run", headers=headers)
            answers.append((time.monotonic(), response.status_code, response.json()))
            await asyncio.sleep(0.2)


async def task_ids_recorded(
    sessionmaker: async_sessionmaker[AsyncSession], config_ids: list[int]
) -> list[str]:
    async with sessionmaker() as session:
        query = select(TaskExecution.task_id).where(TaskExecution.config_id.in_(config_ids))
        return list(await session.scalars(query))


def covered(fire: datetime, missed: list[dict]) -> bool:
    return any(
        datetime.fromisoformat(e["first"]) <= fire <= datetime.fromisoformat(e["last"])
        for e in missed
    )


async def test_a_sentinel_failover_repeats_no_fire_and_loses_no_record(
    sentinels: SentinelSet,
    worker: Worker,
    scheduler: subprocess.Popen,
    redis_on_sentinel: Redis,
    app_on_sentinel: FastAPI,
    sink: HttpSink,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    superuser_headers: dict[str, str],
) -> None:
    redis = redis_on_sentinel
    scheduled = await create_config(
        session, task_type=sink_task.NAME, parameters={"url": sink.url("/fire")},
        scheduler_type="interval", schedule_config={"seconds": 1}, overlap_policy="allow",
    )  # fmt: skip
    manual = await create_config(
        session, task_type=sink_task.NAME, parameters={"url": sink.url("/now")}
    )
    answers: list[tuple[float, int, dict]] = []
    loop: asyncio.Task[None] | None = None
    try:
        await worker.start()  # the scheduler starts meanwhile: each takes seconds
        await processes.scheduler_ready(scheduler)
        await schedules.apply_action(redis, scheduled, "start")
        loop = asyncio.create_task(
            run_now_loop(app_on_sentinel, manual.id, superuser_headers, answers)
        )
        await processes.eventually(
            lambda: events(redis, scheduled.id, "succeeded"), lambda found: len(found) >= 3,
            timeout=30,
        )  # fmt: skip

        sentinels.kill(sentinels.master_port)
        killed, killed_at = time.monotonic(), datetime.now(UTC)

        def accepted_since_kill() -> bool:
            return any(code == 202 and at > killed + 0.5 for at, code, _ in answers)

        await processes.eventually(
            lambda: asyncio.sleep(0, accepted_since_kill()), timeout=30, interval=0.1
        )
        back = time.monotonic() - killed
        await sentinels.promoted(sentinels.replica_port)
        back_at = datetime.now(UTC)

        # The schedule fires again on the promoted master.
        async def fired_after_failover() -> bool:
            found = await events(redis, scheduled.id, "succeeded")
            return any(datetime.fromisoformat(e["at"]) > back_at + EVERY for e in found)

        await processes.eventually(fired_after_failover, timeout=30, interval=0.3)
    finally:
        if loop is not None:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)
        await schedules.apply_action(redis, scheduled, "stop")
        processes.stop(scheduler)

    try:
        # Every run ends in one record, and nothing stays in flight.
        accepted = {body["task_id"] for _, code, body in answers if code == 202}

        async def unsettled() -> tuple[set[str], int]:
            """Accepted runs without a record, and the runs still in flight."""
            recorded = set(await task_ids_recorded(sessionmaker, [manual.id]))
            return accepted - recorded, await live_runs.count_in_flight(redis)

        await processes.eventually(unsettled, lambda got: got == (set(), 0), timeout=60)
    finally:
        worker.stop()
    assert back < BACK_WITHIN_SECONDS, f"back after {back:.1f} s"

    # Meanwhile the API answered 503 in the error shape, never a 500.
    codes = {code for _, code, _ in answers}
    assert codes <= {202, 503}, codes
    refused = [body for _, code, body in answers if code == 503]
    assert refused, "no request fell into the failover"
    assert {body["error"]["code"] for body in refused} == {"service_unavailable"}

    # No task id executed twice; every execution has its record and every record its call.
    assert max(sink.hits.values()) == 1, [path for path, n in sink.hits.items() if n > 1]
    for config, path in ((scheduled, "/fire/"), (manual, "/now/")):
        called = {p.removeprefix(path) for p in sink.hits if p.startswith(path)}
        recorded = await task_ids_recorded(sessionmaker, [config.id])
        assert len(recorded) == len(set(recorded))
        successes = await events(redis, config.id, "succeeded")
        assert called == set(recorded) or {e["task_id"] for e in successes} <= called

    # Each nominal fire from the first to the last executed one ran, or is accounted
    # missed; and only fires of the failover window may be missed.
    recorded_fires = {
        fire for task_id in await task_ids_recorded(sessionmaker, [scheduled.id])
        if (fire := _fire_of(task_id)) is not None
    }  # fmt: skip
    missed = await events(redis, scheduled.id, "missed")
    first, last = min(recorded_fires), max(recorded_fires)
    fire = first
    while fire <= last:
        assert fire in recorded_fires or covered(fire, missed), f"fire {fire} lost silently"
        if fire not in recorded_fires:
            assert killed_at - EVERY <= fire <= back_at + EVERY, f"fire {fire} missed"
        fire += EVERY


def _fire_of(task_id: str) -> datetime | None:
    parsed = schedule_entries.parse_fire_task_id(task_id)
    return parsed[1] if parsed else None
