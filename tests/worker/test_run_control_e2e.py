"""End to end, with real worker (and scheduler) processes: cancelling a run, queued or
running, and the overlap policies buffer_one and cancel_other."""

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from taskiq import TaskiqMessage

from backend.config import get_settings
from backend.models import TaskExecution
from backend.services import runs
from backend.services.redis import timeout as live_runs
from tests.support import processes
from tests.support.auth import bearer_for, create_user, unique_username
from tests.support.factories import create_config
from tests.support.http_sink import HttpSink
from tests.support.processes import eventually
from tests.support.runs import events, records
from tests.support.worker_process import Worker, consumer_count

pytestmark = pytest.mark.e2e

RUNS = "/api/v1/tasks/executions"


@pytest.fixture(scope="module")
async def workers(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[list[Worker]]:
    """Two worker processes: a cancel must reach whichever one holds the run."""
    logs = tmp_path_factory.mktemp("workers")
    processes_ = [Worker(logs / f"worker-{n}.log") for n in (1, 2)]
    try:
        await asyncio.gather(*(process.start() for process in processes_))  # both at once
        queue = os.environ["RABBITMQ_QUEUE"]
        await eventually(lambda: consumer_count(queue), lambda n: n >= 2, timeout=30)
        yield processes_
    finally:
        for process in processes_:
            process.stop()


@pytest.fixture
async def operator(session: AsyncSession) -> tuple[str, dict[str, str]]:
    user = await create_user(session, username=unique_username("op"), role="operator")
    return user.username, bearer_for(user.id)


async def finished(
    sessionmaker: async_sessionmaker[AsyncSession], config_id: int, count: int = 1
) -> list[TaskExecution]:
    async def probe() -> list[TaskExecution] | None:
        found = await records(sessionmaker, config_id)
        return found if len(found) >= count else None

    return await eventually(probe, timeout=30)


async def running(redis: Redis, task_id: str) -> None:
    async def probe() -> bool:
        live = await live_runs.get(redis, task_id)
        return live is not None and live.state == "running"

    await eventually(probe, timeout=20)


async def run_now(
    client: httpx.AsyncClient, headers: dict[str, str], config_id: int, **parameters: Any
) -> str:
    body = {"parameters": parameters} if parameters else None
    response = await client.post(
        f"/api/v1/tasks/configs/{config_id}/run", json=body, headers=headers
    )
    assert response.status_code == 202, response.text
    task_id: str = response.json()["task_id"]
    return task_id


# First in the module: no worker consumes while the run is queued.
async def test_a_queued_run_cancelled_never_starts(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    operator: tuple[str, dict[str, str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    username, headers = operator
    sink = await HttpSink().start()
    try:
        path = f"/never/{uuid.uuid4().hex}"
        config = await create_config(
            session, task_type="http.request", parameters={"url": sink.url(path)}
        )
        task_id = await run_now(client, headers, config.id)
        assert (await client.get(f"{RUNS}/{task_id}", headers=headers)).json()["state"] == "queued"
        response = await client.post(f"{RUNS}/{task_id}/cancel", headers=headers)
        assert response.status_code == 202, response.text
        assert response.json()["state"] == "cancelling"

        late = await Worker(tmp_path_factory.mktemp("late") / "worker.log").start()
        try:
            [record] = await finished(sessionmaker, config.id)
            # Its delivery reaches the worker and is dropped unexecuted.
            await eventually(
                lambda: _async(late.log_count("cancelled before it started")), timeout=20
            )
        finally:
            late.stop()
        assert (record.task_id, record.is_success) == (task_id, False)
        assert record.error_message == f"Cancelled by {username}"
        assert sink.hits.get(path, 0) == 0
        assert [e["task_id"] for e in await events(redis, config.id, "cancelled")] == [task_id]
        assert await events(redis, config.id, "duplicate") == []
    finally:
        await sink.close()


async def _async(value: int) -> int:
    return value


async def test_a_cancel_for_a_run_whose_worker_died_leaves_the_reapers_record(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    operator: tuple[str, dict[str, str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    _, headers = operator
    logs = tmp_path_factory.mktemp("died")
    config = await create_config(session, parameters={"seconds": 30}, timeout_seconds=2)
    doomed = await Worker(logs / "doomed.log").start()
    try:
        task_id = await run_now(client, headers, config.id)
        await running(redis, task_id)
    finally:
        doomed.kill()
    response = await client.post(f"{RUNS}/{task_id}/cancel", headers=headers)
    assert response.status_code == 202  # asked; nobody is left to act on it
    reaper = await Worker(logs / "reaper.log").start()
    try:
        [record] = await finished(sessionmaker, config.id)
    finally:
        reaper.stop()
    assert (record.task_id, record.is_success) == (task_id, False)
    assert (record.error_message or "").startswith("WorkerLost")
    assert len(await records(sessionmaker, config.id)) == 1
    assert await events(redis, config.id, "cancelled") == []


async def test_a_retry_waiting_in_its_backoff_is_cancelled(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    operator: tuple[str, dict[str, str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    username, headers = operator
    config = await create_config(
        session, parameters={"fail": True, "message": "flaky"}, max_retries=3
    )
    slow_retries = {"RETRY_DELAY_SECONDS": "4", "RETRY_MAX_DELAY_SECONDS": "4"}
    own = await Worker(tmp_path_factory.mktemp("backoff") / "worker.log", slow_retries).start()
    try:
        task_id = await run_now(client, headers, config.id)
        await eventually(lambda: events(redis, config.id, "retrying"), timeout=20)
        response = await client.post(f"{RUNS}/{task_id}/cancel", headers=headers)
        assert response.status_code == 202, response.text
        [record] = await finished(sessionmaker, config.id)
        assert (record.is_success, record.error_message) == (False, f"Cancelled by {username}")
        assert record.attempts == 1
        # The re-sent attempt arrives after its backoff and is dropped unexecuted.
        await eventually(lambda: _async(own.log_count("cancelled before it started")), timeout=20)
    finally:
        own.stop()
    assert len(await events(redis, config.id, "retrying")) == 1
    assert len(await records(sessionmaker, config.id)) == 1


async def test_running_runs_are_cancelled_within_two_seconds(
    workers: list[Worker],
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    operator: tuple[str, dict[str, str]],
) -> None:
    """`demo.sleep(30)` runs, on either of two workers: each cancel reaches its worker."""
    username, headers = operator
    config = await create_config(session, parameters={"seconds": 30}, timeout_seconds=120)
    task_ids = [await run_now(client, headers, config.id) for _ in range(3)]
    for task_id in task_ids:
        await running(redis, task_id)
    asked: dict[str, datetime] = {}
    for task_id in task_ids:
        asked[task_id] = datetime.now(UTC)
        response = await client.post(f"{RUNS}/{task_id}/cancel", headers=headers)
        assert response.status_code == 202, response.text
        assert response.json()["state"] == "cancelling"

    holders = [sum(w.log_count(f"ID: {task_id}") > 0 for task_id in task_ids) for w in workers]
    assert sum(holders) == 3
    assert all(holders), f"RabbitMQ gives consumers turns: runs per worker {holders}"
    done = await finished(sessionmaker, config.id, count=3)
    assert sorted(r.task_id for r in done) == sorted(task_ids)
    for record in done:
        assert record.is_success is False
        assert record.error_message == f"Cancelled by {username}"
        # The task stopped within 2 s of its cancel (its end is stamped in the worker).
        assert (record.completed_at - asked[record.task_id]).total_seconds() < 2.0
        assert record.duration_seconds < 30
        assert record.attempts == 1
    cancelled = {e["task_id"] for e in await events(redis, config.id, "cancelled")}
    assert cancelled == set(task_ids)
    assert await events(redis, config.id, "failed") == []
    again = await client.post(f"{RUNS}/{task_ids[0]}/cancel", headers=headers)
    assert again.status_code == 409


async def test_cancel_other_cancels_the_run_in_flight(
    workers: list[Worker],
    app: FastAPI,
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    operator: tuple[str, dict[str, str]],
) -> None:
    _, headers = operator
    config = await create_config(
        session, parameters={"seconds": 0.2}, overlap_policy="cancel_other", timeout_seconds=120
    )
    long_id = await run_now(client, headers, config.id, seconds=30)
    await running(redis, long_id)
    newer = await runs.kick(
        broker=app.state.broker, redis=redis, settings=get_settings(), config=config,
        trigger="scheduled",
    )  # fmt: skip
    found = {r.task_id: r for r in await finished(sessionmaker, config.id, count=2)}
    cancelled, ran = found[long_id], found[newer.task_id]
    assert (cancelled.is_success, cancelled.error_message) == (
        False, "Cancelled by overlap policy cancel_other"
    )  # fmt: skip
    assert cancelled.duration_seconds < 30
    assert (ran.is_success, ran.trigger) == (True, "scheduled")
    assert ran.started_at < cancelled.completed_at  # it did not wait for the cancelled one
    assert [e["task_id"] for e in await events(redis, config.id, "cancelled")] == [long_id]


async def test_buffer_one_runs_the_waiting_fire_right_after_a_long_run(
    workers: list[Worker],
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    superuser_headers: dict[str, str],
) -> None:
    """Fires every second, each run 2.5 s: one fire waits and starts as the run before it
    ends; the fires in between are skipped. Never two runs at once, none lost."""
    config = await create_config(
        session, scheduler_type="interval", schedule_config={"seconds": 1},
        parameters={"seconds": 2.5}, overlap_policy="buffer_one", timeout_seconds=60,
    )  # fmt: skip
    scheduler = processes.start_scheduler("scheduler-buffer-one")
    url = f"/api/v1/tasks/configs/{config.id}/actions"
    try:
        await processes.scheduler_ready(scheduler)
        started = await client.post(f"{url}/start", headers=superuser_headers)
        assert started.status_code == 200, started.text
        await finished(sessionmaker, config.id, count=3)
        stopped = await client.post(f"{url}/stop", headers=superuser_headers)
        assert stopped.status_code == 200, stopped.text
    finally:
        processes.stop(scheduler)

    async def settled() -> list[TaskExecution] | None:
        """Every buffered fire ran (one may still have been waiting at the stop)."""
        found = await records(sessionmaker, config.id)
        buffered = {e["task_id"] for e in await events(redis, config.id, "buffered")}
        return found if buffered <= {r.task_id for r in found} else None

    done = sorted(await eventually(settled, timeout=30), key=lambda r: r.started_at)
    assert all(r.is_success and r.trigger == "scheduled" for r in done)
    buffered = {e["task_id"] for e in await events(redis, config.id, "buffered")}
    assert len(buffered) >= 2
    for before, after in pairwise(done):
        gap = (after.started_at - before.completed_at).total_seconds()
        assert gap >= 0, "two runs of a buffer_one config overlapped"
        if after.task_id in buffered:
            assert gap < 1.0, f"the waiting fire started {gap:.2f} s after the run it waited for"
    skipped = await events(redis, config.id, "skipped")
    assert skipped, "fires beyond the one waiting are skipped"
    assert {e["task_id"] for e in skipped}.isdisjoint(r.task_id for r in done)
    assert await events(redis, config.id, "duplicate") == []


async def test_a_waiting_run_let_go_but_never_sent_is_sent_by_a_reaper(
    workers: list[Worker],
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
) -> None:
    """The worker that let a buffer_one run go died before sending it: its live entry comes
    due, and a reaper sends the message it holds."""
    config = await create_config(session, overlap_policy="buffer_one")
    labels = runs.labels_for(config, trigger="scheduled")
    waiting_id, first = uuid.uuid4().hex, uuid.uuid4().hex
    delivery = TaskiqMessage(
        task_id=waiting_id, task_name="demo.sleep", labels=labels, args=[], kwargs={"seconds": 0}
    )
    now = time.time()
    common = {"config_id": config.id, "trigger": "scheduled", "attempt": 1, "ttl": 600}
    first_run = live_runs.Start(task_id=first, started_at=now, deadline=now + 60, **common)  # type: ignore[arg-type]
    assert await live_runs.start(redis, first_run) == "started"
    waiting = live_runs.Start(
        task_id=waiting_id, started_at=now, deadline=now + 60, overlap="buffer_one",
        message=delivery.model_dump_json(), **common,  # type: ignore[arg-type]
    )  # fmt: skip
    assert await live_runs.start(redis, waiting) == "buffered"
    async with redis.pipeline(transaction=True) as pipe:
        live_runs.queue_finish_many(pipe, [(first, config.id)])
        live_runs.queue_promote(pipe, [config.id], lease_seconds=0, ttl=600)  # and then died
        await pipe.execute()

    [record] = await finished(sessionmaker, config.id)
    assert (record.task_id, record.is_success, record.trigger) == (waiting_id, True, "scheduled")
    assert await live_runs.get(redis, waiting_id) is None
