"""End to end: backfills run by a real worker, one record per occurrence with its fire time."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.models import TaskExecution
from backend.services.redis import timeout as live_runs
from tests.support.factories import create_config
from tests.support.processes import eventually
from tests.support.runs import events, records
from tests.support.worker_process import Worker

pytestmark = pytest.mark.e2e

HOURLY = {"scheduler_type": "cron", "schedule_config": {"cron_expression": "0 * * * *"}}
END = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


@pytest.fixture(scope="module")
async def worker(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Worker]:
    process = Worker(tmp_path_factory.mktemp("backfill") / "worker.log")
    await process.start()
    yield process
    process.stop()


def backfill_body(hours: int, **fields: Any) -> dict[str, Any]:
    start = END - timedelta(hours=hours - 1)
    return {"start": start.isoformat(), "end": END.isoformat(), **fields}


async def recorded(
    sessionmaker: async_sessionmaker[AsyncSession], config_id: int, count: int
) -> list[TaskExecution]:
    async def probe() -> list[TaskExecution]:
        return await records(sessionmaker, config_id)

    return await eventually(probe, lambda found: len(found) >= count, timeout=30)


async def test_a_backfill_of_five_occurrences_leaves_five_records(
    worker: Worker,
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    superuser_headers: dict[str, str],
) -> None:
    config = await create_config(session, **HOURLY)
    url = f"/api/v1/tasks/configs/{config.id}/backfill"
    response = await client.post(url, json=backfill_body(5), headers=superuser_headers)
    assert response.status_code == 202, response.text
    sent = response.json()
    assert sent["count"] == 5

    found = await recorded(sessionmaker, config.id, 5)
    assert len(found) == 5
    by_task = {record.task_id: record for record in found}
    assert set(by_task) == set(sent["task_ids"])
    for task_id, occurrence in zip(sent["task_ids"], sent["occurrences"], strict=True):
        record = by_task[task_id]
        assert record.is_success, record.error_message
        assert record.trigger == "backfill"
        assert record.scheduled_for == datetime.fromisoformat(occurrence)
    assert sorted(r.scheduled_for for r in found) == [  # type: ignore[type-var]
        END - timedelta(hours=n) for n in range(4, -1, -1)
    ]
    page = await client.get(
        f"/api/v1/tasks/configs/{config.id}/executions", headers=superuser_headers
    )
    assert {item["scheduled_for"] for item in page.json()["items"]} == set(sent["occurrences"])

    again = (await client.post(url, json=backfill_body(5), headers=superuser_headers)).json()
    assert again["count"] == 0
    assert [skip["reason"] for skip in again["skipped"]] == ["recorded"] * 5
    assert len(await records(sessionmaker, config.id)) == 5
    assert len(await events(redis, config.id, "succeeded")) == 5


async def test_a_skip_backfill_yields_to_a_run_in_flight(
    worker: Worker,
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    superuser_headers: dict[str, str],
) -> None:
    config = await create_config(session, parameters={"seconds": 3}, **HOURLY)
    base = f"/api/v1/tasks/configs/{config.id}"
    manual = (await client.post(f"{base}/run", headers=superuser_headers)).json()["task_id"]

    async def running() -> bool:
        live = await live_runs.get(redis, manual)
        return live is not None and live.state == "running"

    await eventually(running, timeout=30)
    skip = backfill_body(2, overlap_policy="skip")
    refused = (await client.post(f"{base}/backfill", json=skip, headers=superuser_headers)).json()
    assert refused["count"] == 2
    await eventually(
        lambda: events(redis, config.id, "skipped"), lambda found: len(found) == 2, timeout=30
    )
    [only] = await recorded(sessionmaker, config.id, 1)
    assert only.task_id == manual

    # The refused runs left no record, and their task ids stay taken: the same backfill
    # again says so rather than sending runs the worker would drop as duplicates.
    again = await client.post(f"{base}/backfill", json=backfill_body(2), headers=superuser_headers)
    assert again.json()["count"] == 0
    assert [s["reason"] for s in again.json()["skipped"]] == ["refused", "refused"]
    assert len(await records(sessionmaker, config.id)) == 1
