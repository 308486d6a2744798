"""Cancel a run through the API, without a worker: 202 with the run's state, 409 once it has
finished, 404 for an unknown id, 403 for a viewer; one audit row; the record a reaper writes
for a run cancelled before it started."""

import time
import uuid
from datetime import UTC, datetime

import httpx
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.config import get_settings
from backend.services import schedule_entries
from backend.services.redis import scheduler as schedule_state
from backend.services.redis import timeout as live_runs
from backend.worker.reaper import reap_once
from tests.support.auth import bearer_for, create_user, unique_username
from tests.support.factories import create_config
from tests.support.runs import events, records

RUNS = "/api/v1/tasks/executions"


async def operator(session: AsyncSession) -> tuple[str, dict[str, str]]:
    user = await create_user(session, username=unique_username("op"), role="operator")
    return user.username, bearer_for(user.id)


async def audit_rows(client: httpx.AsyncClient, headers: dict[str, str], task_id: str) -> list:
    response = await client.get(
        "/api/v1/audit", params={"action": "run.cancel", "limit": 100}, headers=headers
    )
    assert response.status_code == 200, response.text
    return [row for row in response.json()["items"] if row["changes"]["task_id"] == task_id]


async def test_a_queued_run_is_cancelled_and_recorded_once(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    superuser_headers: dict[str, str],
) -> None:
    config = await create_config(session)
    username, headers = await operator(session)
    task_id = uuid.uuid4().hex
    await live_runs.mark_queued(
        redis, task_id=task_id, config_id=config.id, trigger="manual", ttl=600
    )
    response = await client.post(f"{RUNS}/{task_id}/cancel", headers=headers)
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["state"], body["task_id"], body["config_id"]) == (
        "cancelling", task_id, config.id
    )  # fmt: skip
    assert body["cancel"] == f"Cancelled by {username}"
    again = await client.post(f"{RUNS}/{task_id}/cancel", headers=headers)
    assert again.status_code == 202
    [row] = await audit_rows(client, superuser_headers, task_id)  # asking twice: one row
    assert (row["actor"], row["target_id"], row["target_name"]) == (
        username, config.id, config.name
    )  # fmt: skip
    assert row["changes"]["state"] == "queued"

    # A reaper writes its one record from the live state.
    assert await reap_once(app.state.resources, get_settings()) >= 1
    [record] = await records(sessionmaker, config.id)
    assert (record.task_id, record.is_success, record.error_message) == (
        task_id, False, f"Cancelled by {username}"
    )  # fmt: skip
    assert record.attempts == 0
    [event] = await events(redis, config.id, "cancelled")
    assert event["task_id"] == task_id
    assert await live_runs.get(redis, task_id) is None
    read = await client.get(f"{RUNS}/{task_id}", headers=headers)
    assert read.json()["state"] == "finished"

    finished = await client.post(f"{RUNS}/{task_id}/cancel", headers=headers)
    assert finished.status_code == 409
    assert finished.json()["error"]["code"] == "conflict"


async def worker_starts(
    redis: Redis, task_id: str, config_id: int, trigger: str
) -> live_runs.Admission:
    """What a worker's in-flight mark of the run's first attempt answers."""
    now = time.time()
    attempt = live_runs.Start(
        task_id=task_id, config_id=config_id, trigger=trigger, attempt=1,
        started_at=now, deadline=now + 60, ttl=600,
    )  # fmt: skip
    return await live_runs.start(redis, attempt)


async def test_a_running_run_is_asked_to_stop(
    client: httpx.AsyncClient, session: AsyncSession, redis: Redis
) -> None:
    config = await create_config(session)
    username, headers = await operator(session)
    task_id = uuid.uuid4().hex
    assert await worker_starts(redis, task_id, config.id, "manual") == "started"
    response = await client.post(f"{RUNS}/{task_id}/cancel", headers=headers)
    assert response.status_code == 202
    assert response.json()["state"] == "cancelling"
    assert await live_runs.cancel_requests(redis, [task_id]) == {
        task_id: f"Cancelled by {username}"
    }
    async with redis.pipeline(transaction=True) as pipe:
        live_runs.queue_finish_many(pipe, [(task_id, config.id)])
        await pipe.execute()


async def test_a_sent_fire_not_started_is_cancelled(
    client: httpx.AsyncClient, session: AsyncSession, redis: Redis
) -> None:
    config = await create_config(session)
    _, headers = await operator(session)
    fire_at = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    task_id = schedule_entries.fire_task_id(config.id, fire_at)
    claim = schedule_state.claim_key(config.id, schedule_state.to_ms(fire_at))
    await redis.set(claim, schedule_state.SENT + "a-replica", ex=60)
    response = await client.post(f"{RUNS}/{task_id}/cancel", headers=headers)
    assert response.status_code == 202
    assert (response.json()["state"], response.json()["trigger"]) == ("cancelling", "scheduled")
    refused = await worker_starts(redis, task_id, config.id, "scheduled")
    assert refused == "cancelled"  # its delivery, when it comes, never starts
    async with redis.pipeline(transaction=True) as pipe:  # leave nothing due for a reaper
        live_runs.queue_finish_many(pipe, [(task_id, config.id)])
        await pipe.execute()


async def test_unknown_run_is_404_and_a_viewer_is_403(
    client: httpx.AsyncClient, session: AsyncSession, redis: Redis
) -> None:
    _, headers = await operator(session)
    missing = await client.post(f"{RUNS}/{uuid.uuid4().hex}/cancel", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"

    config = await create_config(session)
    task_id = uuid.uuid4().hex
    await live_runs.mark_queued(
        redis, task_id=task_id, config_id=config.id, trigger="manual", ttl=600
    )
    viewer = await create_user(session, username=unique_username("viewer"), role="viewer")
    refused = await client.post(f"{RUNS}/{task_id}/cancel", headers=bearer_for(viewer.id))
    assert refused.status_code == 403
    live = await live_runs.get(redis, task_id)
    assert live is not None
    assert (live.state, live.cancel) == ("queued", None)  # untouched
    await live_runs.forget(redis, task_id)
