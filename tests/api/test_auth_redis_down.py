"""With Redis unreachable, authentication answers 503 in the error shape, not 401 or 500."""

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from backend.broker import build_broker
from backend.config import get_settings
from backend.main import attach_resources, create_app
from backend.security import encode_token
from tests.support.auth import bearer_for


@pytest.fixture
async def no_redis_client() -> AsyncIterator[httpx.AsyncClient]:
    settings = get_settings().model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    app: FastAPI = create_app(settings, broker=build_broker(settings))
    resources = attach_resources(app)  # no lifespan: only Redis is meant to be down
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client
    finally:
        await resources.close()
        await app.state.broker.shutdown()


def _refresh_token() -> str:
    token, _ = encode_token(
        subject="1",
        token_type="refresh",
        secret=get_settings().jwt_secret.get_secret_value(),
        lifetime=timedelta(days=1),
        extra={"family": "f"},
    )
    return token


async def test_requests_that_need_redis_are_503(no_redis_client: httpx.AsyncClient) -> None:
    responses = [
        await no_redis_client.post(
            "/api/v1/auth/login", json={"username": "admin", "password": "admin-password"}
        ),
        await no_redis_client.post(
            "/api/v1/auth/refresh", json={"refresh_token": _refresh_token()}
        ),
        await no_redis_client.get("/api/v1/users/me", headers=bearer_for(1)),
    ]
    for response in responses:
        assert response.status_code == 503, response.text
        error = response.json()["error"]
        assert error["code"] == "service_unavailable"
        assert "Redis" in error["message"]
