"""End to end: runs sent through the API or the runs service, executed by a real worker."""

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.config import get_settings
from backend.models import TaskExecution
from backend.services import runs
from backend.services.redis import timeout as live_runs
from tests.support.factories import create_config
from tests.support.http_sink import HttpSink
from tests.support.metrics import rendered, value
from tests.support.processes import eventually
from tests.support.runs import events, records
from tests.support.worker_process import Worker

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def worker(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Worker]:
    process = Worker(tmp_path_factory.mktemp("worker") / "worker.log")
    await process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
async def sink() -> AsyncIterator[HttpSink]:
    server = await HttpSink().start()
    yield server
    await server.close()


def run_url(config_id: int) -> str:
    return f"/api/v1/tasks/configs/{config_id}/run"


async def finished(
    sessionmaker: async_sessionmaker[AsyncSession], config_id: int, count: int = 1
) -> list[TaskExecution]:
    async def probe() -> list[TaskExecution] | None:
        found = await records(sessionmaker, config_id)
        return found if len(found) >= count else None

    return await eventually(probe, timeout=15)


async def test_run_now_gives_one_successful_record(
    worker: Worker,
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    superuser_headers: dict[str, str],
) -> None:
    config = await create_config(session, parameters={"seconds": 0.2, "message": "hi"})
    response = await client.post(run_url(config.id), headers=superuser_headers)
    assert response.status_code == 202
    body = response.json()
    assert body["config_id"] == config.id
    assert body["queued_at"]
    task_id = body["task_id"]

    async def state() -> dict[str, Any] | None:
        got = await client.get(f"/api/v1/tasks/executions/{task_id}", headers=superuser_headers)
        assert got.status_code == 200
        return got.json() if got.json()["state"] == "finished" else None

    record = await eventually(state, timeout=15)
    assert record["is_success"] is True
    assert record["result"] == {"slept_seconds": 0.2, "message": "hi"}
    assert record["trigger"] == "manual"
    assert record["attempts"] == 1
    assert record["duration_seconds"] >= 0.2
    assert len(await records(sessionmaker, config.id)) == 1
    assert [e["task_id"] for e in await events(redis, config.id, "succeeded")] == [task_id]
    assert await live_runs.get(redis, task_id) is None


async def test_live_state_while_running(
    worker: Worker,
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    superuser_headers: dict[str, str],
) -> None:
    config = await create_config(session, parameters={"seconds": 1}, timeout_seconds=60)
    task_id = (await client.post(run_url(config.id), headers=superuser_headers)).json()["task_id"]

    async def running() -> dict[str, Any] | None:
        got = await client.get(f"/api/v1/tasks/executions/{task_id}", headers=superuser_headers)
        return got.json() if got.json()["state"] == "running" else None

    live = await eventually(running)
    assert live["config_id"] == config.id
    assert live["attempt"] == 1
    assert live["started_at"] < live["deadline"]
    await finished(sessionmaker, config.id)


async def test_failing_run_records_the_error(
    worker: Worker,
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    superuser_headers: dict[str, str],
) -> None:
    config = await create_config(session, parameters={"fail": True, "message": "kaput 42"})
    await client.post(run_url(config.id), headers=superuser_headers)
    [record] = await finished(sessionmaker, config.id)
    assert record.is_success is False
    assert record.error_message == "DemoTaskError: kaput 42"
    assert record.result is None
    [failed] = await events(redis, config.id, "failed")
    assert failed["error"] == "DemoTaskError: kaput 42"


async def test_timeout_records_a_failure_within_seconds(
    worker: Worker,
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    superuser_headers: dict[str, str],
) -> None:
    config = await create_config(session, parameters={"seconds": 30}, timeout_seconds=2)
    await client.post(run_url(config.id), headers=superuser_headers)
    [record] = await finished(sessionmaker, config.id)
    assert record.is_success is False
    assert "TimeoutError" in (record.error_message or "")
    assert "timeout of 2 s" in (record.error_message or "")
    assert 2 <= record.duration_seconds < 5
    assert len(await events(redis, config.id, "timed_out")) == 1


async def test_retries_end_in_one_record(
    worker: Worker,
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    superuser_headers: dict[str, str],
) -> None:
    config = await create_config(
        session, parameters={"fail": True, "message": "flaky"}, max_retries=2
    )
    response = await client.post(run_url(config.id), headers=superuser_headers)
    task_id = response.json()["task_id"]
    [record] = await finished(sessionmaker, config.id)
    assert record.task_id == task_id
    assert record.attempts == 3
    assert record.is_success is False
    assert record.error_message == "DemoTaskError: flaky"
    retrying = await events(redis, config.id, "retrying")
    assert [e["attempt"] for e in retrying] == [2, 1]  # newest first
    assert all(e["task_id"] == task_id for e in retrying)
    assert len(await events(redis, config.id, "failed")) == 1
    assert await live_runs.get(redis, task_id) is None


async def test_a_run_delivered_again_executes_once(
    worker: Worker,
    app: FastAPI,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    sink: HttpSink,
) -> None:
    """The same task id published three times (a publisher retry, a redelivery, a fire sent
    again after its scheduler died): the body runs once, one record, the copies `duplicate`."""
    path = f"/dup/{uuid.uuid4().hex}"
    config = await create_config(
        session, task_type="http.request", parameters={"url": sink.url(path)}
    )
    dropped_before = value(rendered(), "taskhub_runs_duplicate_total", task_type="http.request")
    queued = await runs.kick(
        broker=app.state.broker,
        redis=redis,
        settings=get_settings(),
        config=config,
        trigger="manual",
    )

    async def copy() -> None:
        await runs.send(
            app.state.broker,
            task_name=config.task_type,
            task_id=queued.task_id,
            labels=runs.labels_for(config, trigger="manual"),
            parameters=config.parameters,
            timeout=5,
        )

    await copy()  # in the queue beside the first, or delivered while it runs
    await finished(sessionmaker, config.id)
    await eventually(lambda: events(redis, config.id, "duplicate"), timeout=15)
    await copy()  # delivered after the run ended

    async def both_dropped() -> list[dict[str, Any]] | None:
        found = await events(redis, config.id, "duplicate")
        return found if len(found) == 2 else None

    dropped = await eventually(both_dropped, timeout=15)
    assert sink.hits[path] == 1
    [record] = await records(sessionmaker, config.id)
    assert (record.task_id, record.is_success, record.attempts) == (queued.task_id, True, 1)
    assert [(e["task_id"], e["attempt"]) for e in dropped] == [(queued.task_id, 1)] * 2
    assert len(await events(redis, config.id, "succeeded")) == 1
    assert await events(redis, config.id, "skipped") == []
    assert await live_runs.get(redis, queued.task_id) is None
    dropped_now = value(rendered(), "taskhub_runs_duplicate_total", task_type="http.request")
    assert dropped_now - dropped_before == 2


async def test_each_retry_attempt_runs_and_is_not_taken_for_a_duplicate(
    worker: Worker,
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    superuser_headers: dict[str, str],
    sink: HttpSink,
) -> None:
    path = f"/status/500/{uuid.uuid4().hex}"
    config = await create_config(
        session, task_type="http.request", parameters={"url": sink.url(path)}, max_retries=2
    )
    task_id = (await client.post(run_url(config.id), headers=superuser_headers)).json()["task_id"]
    [record] = await finished(sessionmaker, config.id)
    assert (record.task_id, record.is_success, record.attempts) == (task_id, False, 3)
    assert sink.hits[path] == 3  # the same task id, three attempts, each executed
    assert await events(redis, config.id, "duplicate") == []
    assert len(await events(redis, config.id, "retrying")) == 2


async def test_overlap_skip(
    worker: Worker,
    app: FastAPI,
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    superuser_headers: dict[str, str],
) -> None:
    config = await create_config(session, parameters={"seconds": 0.3}, overlap_policy="skip")
    settings = get_settings()
    long_run = await client.post(
        run_url(config.id), json={"parameters": {"seconds": 1.5}}, headers=superuser_headers
    )
    long_id = long_run.json()["task_id"]

    async def running() -> bool:
        live = await live_runs.get(redis, long_id)
        return live is not None and live.state == "running"

    await eventually(running)
    scheduled = await runs.kick(
        broker=app.state.broker, redis=redis, settings=settings, config=config, trigger="scheduled"
    )

    async def skipped() -> list[dict[str, Any]]:
        return await events(redis, config.id, "skipped")

    [event] = await eventually(skipped)
    assert event["task_id"] == scheduled.task_id
    [first] = await finished(sessionmaker, config.id)
    assert first.task_id == long_id
    missing = await client.get(
        f"/api/v1/tasks/executions/{scheduled.task_id}", headers=superuser_headers
    )
    assert missing.status_code == 404

    # Manual runs always run, also while others of the same config are in flight.
    for _ in range(3):
        assert (await client.post(run_url(config.id), headers=superuser_headers)).status_code == 202
    found = await finished(sessionmaker, config.id, count=4)
    assert len(found) == 4
    assert all(r.is_success and r.trigger == "manual" for r in found)

    # With nothing in flight, a scheduled run runs.
    await runs.kick(
        broker=app.state.broker, redis=redis, settings=settings, config=config, trigger="scheduled"
    )
    latest = (await finished(sessionmaker, config.id, count=5))[-1]
    assert latest.trigger == "scheduled"
    assert latest.is_success


async def test_batch_run_with_an_unknown_id(
    worker: Worker,
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    superuser_headers: dict[str, str],
) -> None:
    first = await create_config(session)
    second = await create_config(session)
    ids = [first.id, 987654321, second.id]
    response = await client.post(
        "/api/v1/tasks/run", json={"config_ids": ids}, headers=superuser_headers
    )
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["config_id"] for r in results] == ids
    assert set(results[0]) == {"config_id", "task_id"}
    assert results[1]["error"]["status"] == 404
    assert "task_id" not in results[1]
    await finished(sessionmaker, first.id)
    await finished(sessionmaker, second.id)
