"""RabbitMQ unreachable (the app pointed at a closed port): run now answers 503 in the error
shape, /health names the broker, and nothing of the run is half-written anywhere."""

import os
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.broker import build_broker
from backend.config import get_settings
from backend.main import attach_resources, create_app
from backend.models import TaskExecution
from backend.services.redis import history
from tests.support.factories import create_config

CLOSED_BROKER = "amqp://guest:guest@127.0.0.1:1/"


@pytest.fixture
async def no_broker_client() -> AsyncIterator[httpx.AsyncClient]:
    settings = get_settings().model_copy(
        update={"rabbitmq_url": CLOSED_BROKER, "broker_send_timeout_seconds": 2.0}
    )
    app: FastAPI = create_app(settings, broker=build_broker(settings))
    resources = attach_resources(app)  # no lifespan: only the broker is meant to be down
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client
    finally:
        await resources.close()
        await app.state.broker.shutdown()


async def live_keys(redis: Redis) -> set[str]:
    """Every key of this test session except the user cache (a read fills it)."""
    prefix = os.environ["REDIS_PREFIX"]
    return {
        name
        async for name in redis.scan_iter(match=f"{prefix}:*", count=1000)
        if not name.startswith(f"{prefix}:cache:")
    }


def assert_error_shape(body: dict, status: int) -> None:
    error = body["error"]
    assert error["status"] == status
    assert error["code"] == "service_unavailable"
    assert set(error) == {"status", "code", "message", "fields", "request_id"}


async def test_run_now_is_503_and_writes_nothing(
    no_broker_client: httpx.AsyncClient,
    superuser_headers: dict[str, str],
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
) -> None:
    config = await create_config(session)
    before = await live_keys(redis)

    response = await no_broker_client.post(
        f"/api/v1/tasks/configs/{config.id}/run", headers=superuser_headers
    )

    assert response.status_code == 503, response.text
    assert_error_shape(response.json(), 503)
    assert "broker" in response.json()["error"]["message"].lower()
    assert await live_keys(redis) == before
    assert (await history.read(redis, config.id))[0] == []
    async with sessionmaker() as db:
        rows = await db.scalar(select(func.count()).where(TaskExecution.config_id == config.id))
    assert rows == 0


async def test_batch_run_is_503_and_writes_nothing(
    no_broker_client: httpx.AsyncClient,
    superuser_headers: dict[str, str],
    session: AsyncSession,
    redis: Redis,
) -> None:
    config = await create_config(session)
    before = await live_keys(redis)
    response = await no_broker_client.post(
        "/api/v1/tasks/run", json={"config_ids": [config.id]}, headers=superuser_headers
    )
    assert response.status_code == 503, response.text
    assert_error_shape(response.json(), 503)
    assert await live_keys(redis) == before


async def test_health_is_503_naming_the_broker(no_broker_client: httpx.AsyncClient) -> None:
    response = await no_broker_client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"] == {"database": "ok", "redis": "ok", "broker": "unavailable"}
    assert_error_shape(body, 503)
    assert "broker" in body["error"]["message"]
