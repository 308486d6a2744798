"""The worker's cancel guard in-process, on real Redis: a cancel asked in Redis reaches the
task's coroutine as CancelledError at the next poll; the run ends as RunCancelled; a timeout
or shutdown cancelling the caller is not taken for a cancel."""

import asyncio
import time
import uuid

import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from backend.services.redis import timeout as live_runs
from backend.worker.cancels import RunCancelled, RunningRuns


async def started(redis: Redis, task_id: str) -> None:
    now = time.time()
    admission = await live_runs.start(
        redis,
        live_runs.Start(
            task_id=task_id,
            config_id=None,
            trigger="manual",
            attempt=1,
            started_at=now,
            deadline=now + 60,
            ttl=120,
        ),
    )
    assert admission == "started"


async def finish(redis: Redis, task_id: str) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        live_runs.queue_finish_many(pipe, [(task_id, None)])
        await pipe.execute()


async def ask(redis: Redis, task_id: str) -> None:
    found = await live_runs.cancel(
        redis, task_id=task_id, config_id=None, message="Cancelled by ann", ttl=120
    )
    assert found == "running"


async def test_the_coroutine_gets_cancelled_error(app: FastAPI, redis: Redis) -> None:
    guard = RunningRuns(app.state.resources, poll_seconds=0.05)
    task_id = uuid.uuid4().hex
    await started(redis, task_id)
    seen: list[str] = []

    async def body() -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError as exc:
            seen.append(str(exc.args[0]) if exc.args else "")
            raise
        return "done"

    call = asyncio.create_task(guard.run(task_id, body()))
    await asyncio.sleep(0.05)
    assert await guard.poll_once() == 0  # nothing asked yet
    await ask(redis, task_id)
    assert await guard.poll_once() == 1
    with pytest.raises(RunCancelled, match=r"^Cancelled by ann$"):
        await call
    assert seen == ["Cancelled by ann"]
    assert await guard.poll_once() == 0  # no longer running here
    await finish(redis, task_id)


async def test_a_task_that_swallows_the_cancel_still_ends_cancelled(
    app: FastAPI, redis: Redis
) -> None:
    guard = RunningRuns(app.state.resources, poll_seconds=0.05)
    task_id = uuid.uuid4().hex
    await started(redis, task_id)

    async def stubborn() -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            return "ignored the cancel"
        return "done"

    call = asyncio.create_task(guard.run(task_id, stubborn()))
    await asyncio.sleep(0.05)
    await ask(redis, task_id)
    await guard.poll_once()
    with pytest.raises(RunCancelled):
        await call
    await finish(redis, task_id)


async def test_a_timeout_is_not_a_cancel(app: FastAPI) -> None:
    guard = RunningRuns(app.state.resources, poll_seconds=0.05)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await guard.run(uuid.uuid4().hex, asyncio.sleep(30))
    assert await guard.poll_once() == 0
