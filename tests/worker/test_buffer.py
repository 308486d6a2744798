"""The record buffer and the one write path, in process: batches, duplicates, refused values."""

import math
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.resources import Resources
from backend.services.executions import get_by_task_id
from backend.services.redis import timeout as live_runs
from backend.worker.buffer import RecordBuffer
from backend.worker.records import Ending, Outcome, finish
from backend.worker.results import cap_result, describe_error
from tests.support.factories import create_config
from tests.support.processes import eventually
from tests.support.runs import events, records


def ending(config_id: int | None, *, task_id: str | None = None, result: object = None) -> Ending:
    now = datetime.now(UTC)
    outcome = Outcome(
        task_id=task_id or uuid.uuid4().hex,
        config_id=config_id,
        is_success=True,
        started_at=now - timedelta(seconds=1),
        completed_at=now,
        trigger="manual",
        attempts=1,
        result=result,
    )
    return Ending(outcome=outcome, event="succeeded", task_type="demo.sleep")


async def mark_running(redis: Redis, item: Ending) -> None:
    now = time.time()
    await live_runs.start(
        redis,
        live_runs.Start(
            task_id=item.outcome.task_id,
            config_id=item.outcome.config_id,
            trigger="manual",
            attempt=1,
            started_at=now,
            deadline=now + 300,
            overlap="allow",
            ttl=600,
        ),
    )


@pytest.fixture
async def buffer(app: FastAPI) -> AsyncIterator[RecordBuffer]:
    records_buffer = RecordBuffer(
        app.state.resources, flush_seconds=0.01, max_batch=7, max_pending=100, retry_max_seconds=0.2
    )
    records_buffer.start()
    yield records_buffer
    await records_buffer.close(timeout=5)


async def test_a_burst_is_written_in_batches(
    buffer: RecordBuffer,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
) -> None:
    config = await create_config(session)
    burst = [ending(config.id, result={"n": i}) for i in range(20)]
    for item in burst:
        await mark_running(redis, item)
        await buffer.add(item)

    async def all_written() -> bool:
        return len(await records(sessionmaker, config.id)) == 20

    await eventually(all_written)
    found = await records(sessionmaker, config.id)
    assert sorted(r.result["n"] for r in found) == list(range(20))
    assert len(await events(redis, config.id, "succeeded")) == 20
    for item in burst:  # each run left the in-flight set with its record
        assert await live_runs.get(redis, item.outcome.task_id) is None


async def test_the_same_run_twice_in_a_batch_is_recorded_once(
    app: FastAPI,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
) -> None:
    config = await create_config(session)
    first = ending(config.id, result="first")
    again = ending(config.id, task_id=first.outcome.task_id, result="again")
    resources: Resources = app.state.resources
    assert await finish(resources, [first, again]) == {first.outcome.task_id}
    assert await finish(resources, [again]) == set()
    [record] = await records(sessionmaker, config.id)
    assert record.result == "first"
    assert len(await events(redis, config.id, "succeeded")) == 1


async def test_a_run_of_a_deleted_config_keeps_its_record(
    app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    orphan = ending(987654321)
    assert await finish(app.state.resources, [orphan]) == {orphan.outcome.task_id}
    async with sessionmaker() as session:
        record = await get_by_task_id(session, task_id=orphan.outcome.task_id)
    assert record is not None
    assert record.config_id is None


async def test_a_refused_value_holds_back_only_its_own_run(
    buffer: RecordBuffer,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = await create_config(session)
    good = [ending(config.id, result=i) for i in range(3)]
    bad = ending(config.id, result="NUL \x00 is not allowed in jsonb")
    for item in [good[0], bad, *good[1:]]:
        await mark_running(redis, item)
        await buffer.add(item)

    async def good_written() -> bool:
        return len(await records(sessionmaker, config.id)) == 3

    await eventually(good_written)
    await buffer.close(timeout=5)
    assert {r.task_id for r in await records(sessionmaker, config.id)} == {
        g.outcome.task_id for g in good
    }
    # Left in flight: after its deadline the reaper writes a "lost" record for it.
    assert await live_runs.get(redis, bad.outcome.task_id) is not None
    assert f"record of run {bad.outcome.task_id} refused" in caplog.text


async def test_odd_results_and_errors_are_made_storable(
    app: FastAPI, session: AsyncSession, redis: Redis
) -> None:
    """NUL characters and NaN/Infinity, which PostgreSQL refuses, still give a true record."""
    config = await create_config(session)
    odd = ending(
        config.id, result=cap_result({"k\x00": ["a\x00b", math.nan, math.inf]}, max_bytes=1000)
    )
    failed = ending(config.id)
    failed = Ending(
        outcome=replace(
            failed.outcome,
            is_success=False,
            error_message=describe_error(ValueError("bad\x00byte"), max_chars=100),
        ),
        event="failed",
        task_type="demo.sleep",
    )
    inserted = await finish(app.state.resources, [odd, failed])
    assert inserted == {odd.outcome.task_id, failed.outcome.task_id}
    stored = await get_by_task_id(session, task_id=odd.outcome.task_id)
    assert stored is not None
    assert stored.result == {"k\ufffd": ["a\ufffdb", "nan", "inf"]}
    error = await get_by_task_id(session, task_id=failed.outcome.task_id)
    assert error is not None
    assert error.error_message == "ValueError: bad\ufffdbyte"
