"""The runs and executions API without a worker: validation, paging, filters, 404s, 503."""

from datetime import UTC, datetime, timedelta

import aio_pika
import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from backend.broker import build_broker
from backend.config import get_settings
from backend.main import create_app
from backend.models import TaskExecution
from backend.services import runs, schedule_entries
from backend.services.redis import scheduler as schedule_state
from backend.services.redis import timeout as live_runs
from backend.services.redis.keys import key
from tests.support.auth import bearer_for, create_user
from tests.support.factories import create_config
from tests.support.schedule_state import set_schedule_state
from tests.support.worker_process import AMQP_URL

BASE = datetime(2030, 1, 1, tzinfo=UTC)


async def add_runs(
    session: AsyncSession, config_id: int, outcomes: list[tuple[bool, str, float]]
) -> None:
    """One record per (is_success, trigger, duration), an hour apart from BASE on."""
    for index, (ok, trigger, duration) in enumerate(outcomes):
        started = BASE + timedelta(hours=index)
        session.add(
            TaskExecution(
                config_id=config_id,
                task_id=f"{config_id}-{index}",
                is_success=ok,
                started_at=started,
                completed_at=started + timedelta(seconds=duration),
                duration_seconds=duration,
                error_message=None if ok else "DemoTaskError: no",
                trigger=trigger,
                attempts=1,
            )
        )
    await session.commit()


async def test_executions_paging_and_filters(
    client: httpx.AsyncClient, session: AsyncSession, superuser_headers: dict[str, str]
) -> None:
    config = await create_config(session)
    await add_runs(
        session,
        config.id,
        [(True, "scheduled", 1), (False, "manual", 2), (True, "manual", 3), (True, "scheduled", 4)],
    )
    url = f"/api/v1/tasks/configs/{config.id}/executions"

    async def task_ids(**params: str | int | bool) -> tuple[list[str], int]:
        response = await client.get(url, params=params, headers=superuser_headers)
        assert response.status_code == 200, response.text
        body = response.json()
        return [item["task_id"] for item in body["items"]], body["total"]

    p = f"{config.id}-"
    assert await task_ids() == ([p + "3", p + "2", p + "1", p + "0"], 4)
    assert await task_ids(limit=2, offset=1) == ([p + "2", p + "1"], 4)
    assert await task_ids(is_success=False) == ([p + "1"], 1)
    assert await task_ids(trigger="scheduled") == ([p + "3", p + "0"], 2)
    since, until = (BASE + timedelta(hours=1)).isoformat(), (BASE + timedelta(hours=3)).isoformat()
    assert await task_ids(since=since, until=until) == ([p + "2", p + "1"], 2)
    assert await task_ids(since="2030-01-01T02:00:00") == ([p + "3", p + "2"], 2)  # naive: UTC
    bad = await client.get(url, params={"limit": 101}, headers=superuser_headers)
    assert bad.status_code == 422
    bad = await client.get(url, params={"trigger": "cron"}, headers=superuser_headers)
    assert bad.status_code == 422

    record = await client.get(f"/api/v1/tasks/executions/{p}1", headers=superuser_headers)
    assert record.status_code == 200
    assert record.json()["state"] == "finished"
    assert record.json()["error_message"] == "DemoTaskError: no"


async def test_unknown_ids_are_404(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    for method, url in [
        ("POST", "/api/v1/tasks/configs/987654321/run"),
        ("GET", "/api/v1/tasks/configs/987654321/executions"),
        ("GET", "/api/v1/tasks/executions/no-such-run"),
    ]:
        response = await client.request(method, url, headers=superuser_headers)
        assert response.status_code == 404, url
        assert response.json()["error"]["code"] == "not_found"


async def test_override_parameters_are_validated(
    client: httpx.AsyncClient, session: AsyncSession, superuser_headers: dict[str, str]
) -> None:
    config = await create_config(session)
    url = f"/api/v1/tasks/configs/{config.id}/run"
    response = await client.post(
        url, json={"parameters": {"seconds": "soon", "colour": "red"}}, headers=superuser_headers
    )
    assert response.status_code == 422
    fields = {tuple(f["loc"]): f["type"] for f in response.json()["error"]["fields"]}
    assert fields == {
        ("body", "parameters", "seconds"): "float_parsing",
        ("body", "parameters", "colour"): "extra_forbidden",
    }


@pytest.mark.parametrize("ids", [[], list(range(1, 102))])
async def test_batch_size_is_bounded(
    client: httpx.AsyncClient, superuser_headers: dict[str, str], ids: list[int]
) -> None:
    response = await client.post(
        "/api/v1/tasks/run", json={"config_ids": ids}, headers=superuser_headers
    )
    assert response.status_code == 422


async def test_running_is_for_operators_status_for_viewers(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session, username=f"viewer-{datetime.now(UTC).timestamp():.0f}")
    assert (await client.get("/api/v1/tasks/status")).status_code == 401
    response = await client.get("/api/v1/tasks/status", headers=bearer_for(user.id))
    assert response.status_code == 200
    refused = await client.post(
        "/api/v1/tasks/run", json={"config_ids": [1]}, headers=bearer_for(user.id)
    )
    assert refused.status_code == 403
    assert "operator" in refused.json()["error"]["message"]


async def test_status_reports_reachability_and_counts(
    client: httpx.AsyncClient, redis: Redis, superuser_headers: dict[str, str]
) -> None:
    before = await schedule_state.count(redis, "active")
    for fake_id in (990001, 990002):
        await set_schedule_state(redis, fake_id, schedule_state.ScheduleState("active"))
    response = await client.get("/api/v1/tasks/status", headers=superuser_headers)
    await schedule_entries.forget(redis, 990001)
    await schedule_entries.forget(redis, 990002)
    assert response.status_code == 200
    body = response.json()
    assert body["checks"] == {"database": "ok", "redis": "ok", "broker": "ok"}
    assert body["active_schedules"] == before + 2
    assert isinstance(body["configs"], int)
    assert isinstance(body["runs_in_flight"], int)
    assert isinstance(body["runs_last_hour"], int)


async def test_broker_unreachable_is_503_and_leaves_nothing_behind(
    session: AsyncSession, redis: Redis, superuser_headers: dict[str, str]
) -> None:
    config = await create_config(session)
    settings = get_settings().model_copy(update={"rabbitmq_url": "amqp://guest:guest@127.0.0.1:1/"})
    app: FastAPI = create_app(settings, broker=build_broker(settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.post(
                f"/api/v1/tasks/configs/{config.id}/run", headers=superuser_headers
            )
            batch = await client.post(
                "/api/v1/tasks/run", json={"config_ids": [config.id]}, headers=superuser_headers
            )
    assert response.status_code == 503
    assert "broker" in response.json()["error"]["message"]
    assert batch.status_code == 503
    assert str(config.id) not in await live_run_owners(redis)


async def live_run_owners(redis: Redis) -> list[str | None]:
    names = [name async for name in redis.scan_iter(match=key("timeout", "run", "*"))]
    return [await redis.hget(name, "config_id") for name in names]


async def test_a_failed_publish_is_503_and_drops_the_queued_marker(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: AsyncSession,
    redis: Redis,
    superuser_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = await create_config(session)

    async def refuse(message: object) -> None:
        raise ConnectionError("connection reset by peer")

    monkeypatch.setattr(app.state.broker, "kick", refuse)
    response = await client.post(
        f"/api/v1/tasks/configs/{config.id}/run", headers=superuser_headers
    )
    assert response.status_code == 503
    assert str(config.id) not in await live_run_owners(redis)


async def test_a_batch_failing_midway_still_returns_the_runs_it_sent(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: AsyncSession,
    redis: Redis,
    superuser_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = await create_config(session), await create_config(session)
    kick = app.state.broker.kick
    sent: list[object] = []

    async def fail_after_one(message: object) -> None:
        if sent:
            raise ConnectionError("connection reset by peer")
        sent.append(message)
        await kick(message)

    monkeypatch.setattr(app.state.broker, "kick", fail_after_one)
    response = await client.post(
        "/api/v1/tasks/run", json={"config_ids": [first.id, second.id]}, headers=superuser_headers
    )
    assert response.status_code == 200
    ok, failed = response.json()["results"]
    assert ok["config_id"] == first.id
    assert ok["task_id"]
    assert failed["config_id"] == second.id
    assert failed["error"]["status"] == 503
    assert str(second.id) not in await live_run_owners(redis)
    await purge_task_queue()  # no worker in this module; later tests read the queue
    await live_runs.forget(redis, ok["task_id"])


async def purge_task_queue() -> None:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(get_settings().rabbitmq_queue)
        await queue.purge()


async def test_a_run_is_sent_with_its_labels_and_priority(
    app: FastAPI, session: AsyncSession, redis: Redis
) -> None:
    config = await create_config(
        session, priority=7, timeout_seconds=42, max_retries=2, parameters={"seconds": 1}
    )
    queued = await runs.kick(
        broker=app.state.broker, redis=redis, settings=get_settings(), config=config,
        trigger="manual",
    )  # fmt: skip
    live = await live_runs.get(redis, queued.task_id)
    assert live is not None
    assert live.state == "queued"
    # No worker runs in this module: take the message off the queue and look at it.
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(get_settings().rabbitmq_queue)
        message = await queue.get(timeout=5)
        await message.ack()
    assert message.headers["task_id"] == queued.task_id
    assert message.headers["task_name"] == "demo.sleep"
    assert message.priority == 7
    labels = {k: message.headers[k] for k in ("config_id", "trigger", "timeout", "max_retries")}
    assert message.headers["ack_type"] == "when_received"
    assert labels == {"config_id": str(config.id), "trigger": "manual", "timeout": "42",
                      "max_retries": "3"}  # fmt: skip
    await live_runs.forget(redis, queued.task_id)


async def test_a_sent_scheduled_run_reads_as_queued_until_a_worker_starts_it(
    client: httpx.AsyncClient, session: AsyncSession, redis: Redis, superuser_headers: dict
) -> None:
    config = await create_config(session)
    fire_at = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    task_id = schedule_entries.fire_task_id(config.id, fire_at)
    url = f"/api/v1/tasks/executions/{task_id}"
    assert (await client.get(url, headers=superuser_headers)).status_code == 404
    claim = schedule_state.claim_key(config.id, schedule_state.to_ms(fire_at))
    await redis.set(claim, schedule_state.SENT + "a-replica", ex=60)
    response = await client.get(url, headers=superuser_headers)
    assert response.status_code == 200
    body = response.json()
    assert (body["state"], body["trigger"], body["config_id"]) == ("queued", "scheduled", config.id)
    assert datetime.fromisoformat(body["queued_at"]) == fire_at
