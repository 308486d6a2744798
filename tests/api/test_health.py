import httpx
import pytest
from fastapi import FastAPI

from backend.broker import build_broker
from backend.config import get_settings
from backend.main import attach_resources, create_app


async def test_health_ok_when_all_answer(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "redis": "ok", "broker": "ok"},
    }


CLOSED = "127.0.0.1:1"


@pytest.mark.parametrize(
    ("override", "down"),
    [
        ({"database_url": f"postgresql+asyncpg://postgres@{CLOSED}/nope"}, "database"),
        ({"redis_url": f"redis://{CLOSED}/0"}, "redis"),
        ({"rabbitmq_url": f"amqp://guest:guest@{CLOSED}/"}, "broker"),
    ],
)
async def test_health_503_names_the_dependency_that_is_down(
    override: dict[str, str], down: str
) -> None:
    settings = get_settings().model_copy(update=override)
    app: FastAPI = create_app(settings, broker=build_broker(settings))
    resources = attach_resources(app)  # no lifespan: the first superuser needs the database
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/health")
    finally:
        await resources.close()
        await app.state.broker.shutdown()
    assert response.status_code == 503
    body = response.json()
    assert body["checks"][down] == "unavailable"
    assert [name for name, state in body["checks"].items() if state != "ok"] == [down]
    assert body["error"]["status"] == 503
    assert down in body["error"]["message"]
