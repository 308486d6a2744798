"""The one JSON error shape, on the real app plus a few routes added only for these tests."""

import logging

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field

from backend.main import create_app


class Item(BaseModel):
    name: str = Field(min_length=1)
    count: int


@pytest.fixture(scope="module")
def error_app() -> FastAPI:
    app = create_app()

    @app.post("/_test/items")
    async def create_item(item: Item) -> Item:
        return item

    @app.get("/_test/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    return app


@pytest.fixture
async def error_client(error_app: FastAPI):
    transport = httpx.ASGITransport(app=error_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


def assert_error_shape(body: dict, status: int) -> None:
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"status", "code", "message", "fields", "request_id"}
    assert error["status"] == status
    assert isinstance(error["message"], str)
    assert error["message"]


async def test_unknown_path_is_404_in_the_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/does-not-exist")
    assert response.status_code == 404
    assert_error_shape(response.json(), 404)
    assert response.json()["error"]["code"] == "not_found"


async def test_wrong_method_is_405_in_the_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.post("/health")
    assert response.status_code == 405
    assert_error_shape(response.json(), 405)


async def test_validation_error_lists_the_fields(error_client: httpx.AsyncClient) -> None:
    response = await error_client.post("/_test/items", json={"name": "", "count": "many"})
    assert response.status_code == 422
    body = response.json()
    assert_error_shape(body, 422)
    locations = {tuple(field["loc"]) for field in body["error"]["fields"]}
    assert locations == {("body", "name"), ("body", "count")}


async def test_malformed_json_is_422_not_500(error_client: httpx.AsyncClient) -> None:
    response = await error_client.post(
        "/_test/items", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert_error_shape(response.json(), 422)


async def test_body_over_limit_is_413(error_client: httpx.AsyncClient) -> None:
    response = await error_client.post(
        "/_test/items",
        content=b'{"name": "' + b"x" * (1024 * 1024) + b'", "count": 1}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert_error_shape(response.json(), 413)


async def test_streamed_body_over_limit_is_413(error_client: httpx.AsyncClient) -> None:
    async def chunks():
        for _ in range(20):
            yield b"x" * 65536

    response = await error_client.post(
        "/_test/items", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


async def test_unhandled_error_is_500_without_internals(error_client: httpx.AsyncClient) -> None:
    response = await error_client.get("/_test/boom")
    assert response.status_code == 500
    assert_error_shape(response.json(), 500)
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text


async def test_unhandled_error_keeps_the_request_id(
    error_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    response = await error_client.get("/_test/boom", headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "req-500"
    assert response.json()["error"]["request_id"] == "req-500"
    [failure] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert failure.request_id == "req-500"
    assert failure.exc_info is not None


async def test_405_lists_every_method_the_path_takes(client: httpx.AsyncClient) -> None:
    response = await client.request("PUT", "/api/v1/users")
    assert_error_shape(response.json(), 405)
    assert response.headers["allow"] == "GET, POST"
    # /users/me is not a user id: PATCH there is a method the path does not take.
    me = await client.patch("/api/v1/users/me", json={})
    assert me.status_code == 405
    assert me.headers["allow"] == "GET"


@pytest.mark.parametrize(
    ("content", "message"),
    [(b'{"name": "\xff\xfe"}', "not valid UTF-8"), (b"[" * 5000, "nested too deeply")],
)
async def test_undecodable_json_is_422_like_malformed_json(
    error_client: httpx.AsyncClient, content: bytes, message: str
) -> None:
    response = await error_client.post(
        "/_test/items", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert_error_shape(response.json(), 422)
    (field,) = response.json()["error"]["fields"]
    assert field["loc"] == ["body"]
    assert message in field["msg"]


def test_error_body_is_what_the_schema_documents() -> None:
    from backend.api.errors import ErrorResponse, error_body

    body = error_body(
        422, "validation_error", "bad", [{"loc": ["body", 0], "msg": "m", "type": "t"}]
    )
    assert ErrorResponse.model_validate(body).model_dump() == body
