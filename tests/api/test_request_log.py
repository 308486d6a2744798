import logging

import httpx
import pytest


async def test_request_id_is_echoed_and_logged(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="taskhub.request")
    response = await client.get(
        "/health?token=abc", headers={"X-Request-ID": "req-123", "Authorization": "Bearer SECRET"}
    )
    assert response.headers["X-Request-ID"] == "req-123"
    lines = [r for r in caplog.records if r.name == "taskhub.request"]
    assert len(lines) == 1
    record = lines[0]
    assert record.request_id == "req-123"
    message = record.getMessage()
    assert message.startswith("GET /health 200 ")
    assert "SECRET" not in message
    assert "token=abc" not in message


async def test_request_id_is_generated_when_missing_or_invalid(client: httpx.AsyncClient) -> None:
    first = await client.get("/health")
    second = await client.get("/health", headers={"X-Request-ID": "bad id\nwith newline"})
    ids = {first.headers["X-Request-ID"], second.headers["X-Request-ID"]}
    assert len(ids) == 2
    assert all(len(i) == 32 for i in ids)


async def test_log_lines_caused_by_a_request_carry_its_id(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await client.get("/api/v1/nowhere", headers={"X-Request-ID": "req-456"})
    ids = {getattr(r, "request_id", None) for r in caplog.records if r.name.startswith("taskhub")}
    assert ids == {"req-456"}
