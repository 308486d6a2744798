"""The shipped task types, and `GET /tasks/types`; a type defined here joins the API."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.models import TaskConfig, TaskExecution
from backend.tasks import http, maintenance, registry
from tests.support.configs import CONFIGS, field_locs, sleep_config, unique

TYPES = "/api/v1/tasks/types"


class ShoutParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1)


# Adding a type = defining it with the decorator; nothing else changes.
@registry.task_type("test.shout", description="Shout the text.", parameters=ShoutParameters)
async def shout(params: ShoutParameters) -> str:
    return params.text.upper()


async def test_types_lists_shipped_types_with_schemas(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    response = await client.get(TYPES, headers=superuser_headers)
    assert response.status_code == 200
    types = {t["name"]: t for t in response.json()}
    assert {"demo.sleep", "http.request", "maintenance.purge_executions"} <= set(types)
    assert set(types["demo.sleep"]) == {"name", "description", "parameters_schema"}
    assert types["http.request"]["parameters_schema"]["required"] == ["url"]
    purge_schema = types["maintenance.purge_executions"]["parameters_schema"]
    assert purge_schema["properties"]["older_than_days"]["minimum"] == 1


async def test_a_type_defined_in_a_test_module_is_listed_and_accepted(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    types = (await client.get(TYPES, headers=superuser_headers)).json()
    shout_type = next(t for t in types if t["name"] == "test.shout")
    assert shout_type["parameters_schema"]["required"] == ["text"]

    body = sleep_config(task_type="test.shout", parameters={"text": "hi"})
    created = await client.post(CONFIGS, json=body, headers=superuser_headers)
    assert created.status_code == 201, created.text
    assert created.json()["parameters"] == {"text": "hi"}
    wrong = sleep_config(task_type="test.shout", parameters={"text": ""})
    refused = await client.post(CONFIGS, json=wrong, headers=superuser_headers)
    assert refused.status_code == 422
    assert ["body", "parameters", "text"] in field_locs(refused)


# --- http.request, against a real local HTTP server -------------------------------------


@pytest.fixture
async def http_server() -> AsyncIterator[tuple[str, list[bytes]]]:
    """Answers GET /status/<code> with that status; records each request head."""
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        seen.append(head)
        code = int(head.split(b" ")[1].rsplit(b"/", 1)[-1])
        writer.write(
            f"HTTP/1.1 {code} X\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello".encode()
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}", seen


async def test_http_request_records_status_and_elapsed_not_body(
    http_server: tuple[str, list[bytes]],
) -> None:
    base, seen = http_server
    params = http.HttpRequestParameters(
        url=f"{base}/status/204", method="post", headers={"X-Probe": "1"}, body={"a": 1}
    )
    result = await http.request(params)
    assert result["status_code"] == 204
    assert result["elapsed_seconds"] >= 0
    assert "hello" not in str(result)
    assert seen[0].startswith(b"POST /status/204")
    assert b"x-probe: 1" in seen[0].lower()


async def test_http_request_fails_on_an_unexpected_status(
    http_server: tuple[str, list[bytes]],
) -> None:
    base, _ = http_server
    with pytest.raises(http.UnexpectedStatus, match="503"):
        await http.request(http.HttpRequestParameters(url=f"{base}/status/503"))
    # An explicitly expected status is a success.
    params = http.HttpRequestParameters(url=f"{base}/status/404", expected_status=404)
    assert (await http.request(params))["status_code"] == 404
    with pytest.raises(http.UnexpectedStatus):
        await http.request(
            http.HttpRequestParameters(url=f"{base}/status/200", expected_status=[201])
        )


@pytest.mark.parametrize(
    "parameters",
    [
        {"url": "ftp://example.com/file"},
        {"url": "not a url"},
        {"url": "https://example.com", "method": "FETCH"},
        {"url": "https://example.com", "timeout_seconds": 0},
        {"url": "https://example.com", "expected_status": 42},
    ],
)
async def test_http_request_parameters_are_validated_by_the_api(
    client: httpx.AsyncClient, superuser_headers: dict[str, str], parameters: dict
) -> None:
    body = sleep_config(task_type="http.request", parameters=parameters)
    response = await client.post(CONFIGS, json=body, headers=superuser_headers)
    assert response.status_code == 422
    assert all(loc[:2] == ["body", "parameters"] for loc in field_locs(response))


# --- maintenance.purge_executions ------------------------------------------------------


def execution(config_id: int | None, started_at: datetime) -> TaskExecution:
    return TaskExecution(
        config_id=config_id,
        task_id=unique("run"),
        is_success=True,
        started_at=started_at,
        completed_at=started_at,
        duration_seconds=0.0,
        trigger="scheduled",
    )


async def count_runs(session: AsyncSession, config_id: int) -> int:
    statement = select(func.count()).where(TaskExecution.config_id == config_id)
    return await session.scalar(statement) or 0


async def test_purge_deletes_old_records_of_one_config_in_batches(
    app: FastAPI, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    target, other = (
        TaskConfig(name=unique("purge"), task_type="demo.sleep", scheduler_type="manual")
        for _ in range(2)
    )
    session.add_all([target, other])
    await session.flush()
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=10), now - timedelta(days=1)
    session.add_all([execution(target.id, old) for _ in range(5)])
    session.add_all([execution(target.id, recent), execution(other.id, old)])
    await session.commit()
    monkeypatch.setattr(maintenance, "BATCH_SIZE", 2)  # 5 rows: batches of 2, 2, 1

    params = maintenance.PurgeParameters(older_than_days=7, config_id=target.id)
    result = await maintenance.purge_executions(params, resources=app.state.resources)

    assert result["deleted"] == 5
    assert await count_runs(session, target.id) == 1  # the recent one
    assert await count_runs(session, other.id) == 1  # another config's old run


async def test_purge_without_config_id_covers_every_config(
    app: FastAPI, session: AsyncSession
) -> None:
    # Runs from 1900, purged at ~100 years: other tests' records are far younger.
    ancient = datetime(1900, 1, 1, tzinfo=UTC)
    session.add_all([execution(None, ancient) for _ in range(3)])
    await session.commit()
    params = maintenance.PurgeParameters(older_than_days=36500)
    result = await maintenance.purge_executions(params, resources=app.state.resources)
    assert result["deleted"] == 3
    left = await session.scalar(select(func.count()).where(TaskExecution.started_at == ancient))
    assert left == 0


@pytest.mark.parametrize("parameters", [{"older_than_days": 0}, {}, {"older_than_days": 1, "x": 1}])
async def test_purge_parameters_are_validated_by_the_api(
    client: httpx.AsyncClient, superuser_headers: dict[str, str], parameters: dict
) -> None:
    body = sleep_config(task_type="maintenance.purge_executions", parameters=parameters)
    response = await client.post(CONFIGS, json=body, headers=superuser_headers)
    assert response.status_code == 422
    assert all(loc[:2] == ["body", "parameters"] for loc in field_locs(response))
