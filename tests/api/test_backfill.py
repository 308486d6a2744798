"""Backfill through the API without a worker: the occurrences, skips, dry runs, bad input."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from backend.models import TaskExecution
from backend.services import backfill
from backend.services.redis import timeout as live_runs
from tests.api.test_executions import purge_task_queue
from tests.support.auth import bearer_for, create_user, unique_username
from tests.support.factories import create_config
from tests.support.runs import events

HOURLY = {"scheduler_type": "cron", "schedule_config": {"cron_expression": "0 * * * *"}}
# Six whole hours, the last one at least an hour ago.
END = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
START = END - timedelta(hours=5)
HOURS = [START + timedelta(hours=n) for n in range(6)]


def url(config_id: int) -> str:
    return f"/api/v1/tasks/configs/{config_id}/backfill"


def body(**fields: Any) -> dict[str, Any]:
    return {"start": START.isoformat(), "end": END.isoformat(), **fields}


def times(values: list[str]) -> list[datetime]:
    return [datetime.fromisoformat(value) for value in values]


async def test_a_dry_run_lists_the_occurrences_and_sends_nothing(
    client: httpx.AsyncClient, session: AsyncSession, redis: Redis, superuser_headers: dict
) -> None:
    config = await create_config(session, **HOURLY)
    response = await client.post(url(config.id), json=body(dry_run=True), headers=superuser_headers)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["dry_run"] is True
    assert result["count"] == 6
    assert times(result["occurrences"]) == HOURS
    assert result["task_ids"] == [backfill.task_id_for(config.id, hour) for hour in HOURS]
    assert result["task_ids"][0] == f"b{config.id}-{int(START.timestamp() * 1000)}"
    assert result["skipped"] == []
    assert await live_runs.seen_among(redis, result["task_ids"]) == (set(), set())
    assert await events(redis, config.id, "backfill") == []


async def test_a_backfill_sends_once_per_occurrence_and_again_skips_them(
    client: httpx.AsyncClient, session: AsyncSession, redis: Redis, superuser_headers: dict
) -> None:
    config = await create_config(session, **HOURLY)
    # One occurrence already ran on schedule: its record names the fire time.
    session.add(
        TaskExecution(
            config_id=config.id, task_id=f"s{config.id}-0", is_success=True,
            started_at=HOURS[1], completed_at=HOURS[1], duration_seconds=0,
            trigger="scheduled", attempts=1, scheduled_for=HOURS[1],
        )
    )  # fmt: skip
    await session.commit()
    first = await client.post(url(config.id), json=body(), headers=superuser_headers)
    assert first.status_code == 202, first.text
    sent = first.json()
    assert sent["count"] == 5
    assert times(sent["occurrences"]) == [HOURS[0], *HOURS[2:]]
    assert [s["reason"] for s in sent["skipped"]] == ["recorded"]
    assert times([s["scheduled_for"] for s in sent["skipped"]]) == [HOURS[1]]
    live = [await live_runs.get(redis, task_id) for task_id in sent["task_ids"]]
    assert {run.trigger for run in live if run} == {"backfill"}
    assert len([run for run in live if run]) == 5  # queued

    again = await client.post(url(config.id), json=body(), headers=superuser_headers)
    assert again.status_code == 202
    repeat = again.json()
    assert repeat["count"] == 0
    assert repeat["task_ids"] == []
    assert sorted(s["reason"] for s in repeat["skipped"]) == ["in_flight"] * 5 + ["recorded"]

    [event] = await events(redis, config.id, "backfill")  # the repeat sent nothing
    assert event["count"] == 5
    assert times([event["start"], event["end"]]) == [START, END]
    trail = await client.get(f"/api/v1/tasks/configs/{config.id}/audit", headers=superuser_headers)
    [row] = [r for r in trail.json()["items"] if r["action"] == "run.backfill"]
    assert row["changes"]["count"] == 5
    assert row["changes"]["overlap_policy"] == "allow"
    await purge_task_queue()  # no worker in this module; later tests read the queue


async def test_a_broker_failing_midway_returns_the_runs_sent_and_the_rest(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: AsyncSession,
    superuser_headers: dict,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = await create_config(session, **HOURLY)
    kick = app.state.broker.kick
    sent: list[object] = []

    async def fail_after_two(message: object) -> None:
        if len(sent) >= 2:
            raise ConnectionError("connection reset by peer")
        sent.append(message)
        await kick(message)

    monkeypatch.setattr(app.state.broker, "kick", fail_after_two)
    first = (await client.post(url(config.id), json=body(), headers=superuser_headers)).json()
    assert first["count"] == 2
    assert len(first["not_sent"]) == 4
    assert sorted(times([*first["occurrences"], *first["not_sent"]])) == HOURS

    monkeypatch.setattr(app.state.broker, "kick", kick)
    again = (await client.post(url(config.id), json=body(), headers=superuser_headers)).json()
    assert sorted(again["occurrences"]) == sorted(first["not_sent"])
    assert [s["reason"] for s in again["skipped"]] == ["in_flight", "in_flight"]

    def nothing_sent(message: object) -> None:
        raise ConnectionError("connection refused")

    monkeypatch.setattr(app.state.broker, "kick", nothing_sent)
    other = await create_config(session, **HOURLY)
    refused = await client.post(url(other.id), json=body(), headers=superuser_headers)
    assert refused.status_code == 503
    await purge_task_queue()


async def test_an_interval_is_backfilled_on_its_grid(
    client: httpx.AsyncClient, session: AsyncSession, superuser_headers: dict
) -> None:
    config = await create_config(
        session, scheduler_type="interval", schedule_config={"minutes": 30}
    )
    response = await client.post(url(config.id), json=body(dry_run=True), headers=superuser_headers)
    # Never started: as if started at `start`, so every 30 minutes after it.
    assert response.json()["count"] == 10
    assert times(response.json()["occurrences"])[0] == START + timedelta(minutes=30)


async def test_bad_backfills(
    client: httpx.AsyncClient, session: AsyncSession, superuser_headers: dict
) -> None:
    cron = await create_config(session, **HOURLY)
    manual = await create_config(session)
    date = await create_config(
        session, scheduler_type="date", schedule_config={"run_date": "2030-01-01T00:00:00Z"}
    )
    for config in (manual, date):
        refused = await client.post(url(config.id), json=body(), headers=superuser_headers)
        assert refused.status_code == 409, refused.text
        assert config.scheduler_type in refused.json()["error"]["message"]

    backwards = body(start=END.isoformat(), end=START.isoformat())
    future = body(end=(datetime.now(UTC) + timedelta(hours=1)).isoformat())
    for bad, message in ((backwards, "before start"), (future, "in the future")):
        response = await client.post(url(cron.id), json=bad, headers=superuser_headers)
        assert response.status_code == 422, response.text
        assert message in response.text
        assert response.json()["error"]["fields"][0]["loc"] == ["body", "end"]

    every_minute = await create_config(
        session, scheduler_type="cron", schedule_config={"cron_expression": "* * * * *"}
    )
    twenty_hours = body(start=(END - timedelta(hours=20)).isoformat())
    too_many = await client.post(url(every_minute.id), json=twenty_hours, headers=superuser_headers)
    assert too_many.status_code == 422
    assert "holds 1,201 occurrences" in too_many.text  # both ends included
    assert "at most 1,000" in too_many.text
    way_too_many = body(start=(END - timedelta(days=30)).isoformat())
    response = await client.post(url(every_minute.id), json=way_too_many, headers=superuser_headers)
    assert "more than 10,000 occurrences" in response.text

    ancient = {"start": "0001-01-01T00:00:00Z"}
    for wrong in ({"overlap_policy": "buffer_one"}, {"dry_run": "yes"}, {"extra": 1}, ancient):
        response = await client.post(url(cron.id), json=body(**wrong), headers=superuser_headers)
        assert response.status_code == 422, wrong
    missing = await client.post(url(2147483647), json=body(), headers=superuser_headers)
    assert missing.status_code == 404


async def test_a_viewer_may_not_backfill(client: httpx.AsyncClient, session: AsyncSession) -> None:
    config = await create_config(session, **HOURLY)
    viewer = await create_user(session, username=unique_username("viewer"))
    response = await client.post(url(config.id), json=body(), headers=bearer_for(viewer.id))
    assert response.status_code == 403
    operator = await create_user(session, username=unique_username("ops"), role="operator")
    dry = await client.post(
        url(config.id), json=body(dry_run=True), headers=bearer_for(operator.id)
    )
    assert dry.status_code == 200


async def test_a_started_interval_is_backfilled_on_its_grid_before_its_start(
    client: httpx.AsyncClient, session: AsyncSession, superuser_headers: dict
) -> None:
    config = await create_config(
        session, scheduler_type="interval", schedule_config={"minutes": 30}
    )
    started = await client.post(
        f"/api/v1/tasks/configs/{config.id}/actions/start", headers=superuser_headers
    )
    anchor = datetime.fromisoformat(started.json()["next_run_at"]) - timedelta(minutes=30)
    response = await client.post(url(config.id), json=body(dry_run=True), headers=superuser_headers)
    found = times(response.json()["occurrences"])
    assert found, response.text
    assert all((anchor - fire) % timedelta(minutes=30) == timedelta(0) for fire in found)
    await client.post(f"/api/v1/tasks/configs/{config.id}/actions/stop", headers=superuser_headers)
