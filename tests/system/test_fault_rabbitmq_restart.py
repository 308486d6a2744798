"""RabbitMQ restarted (`rabbitmqctl stop_app`, then `start_app`) under a stream of runs, on a
node of this test's own: the worker and the scheduler reconnect by themselves, no confirmed
message is lost, run now answers 503 during the outage, and the scheduler's failed sends are
`send_failed` events, retried within the misfire grace (or accounted `missed`)."""

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

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
from backend.services import schedules
from tests.support import processes, rabbitmq_node
from tests.support.factories import create_config
from tests.support.rabbitmq_node import RabbitNode
from tests.support.runs import events
from tests.support.worker_process import Worker

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not rabbitmq_node.available(), reason="no RabbitMQ server installed"),
]

OUTAGE_SECONDS = 6


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[RabbitNode]:
    own = await RabbitNode(tmp_path / "rabbitmq").start()
    yield own
    await own.stop()


@pytest.fixture
async def app_on(node: RabbitNode) -> AsyncIterator[FastAPI]:
    settings = get_settings().model_copy(
        update={"rabbitmq_url": node.url, "broker_send_timeout_seconds": 2.0}
    )
    app = create_app(settings, broker=build_broker(settings))
    resources = attach_resources(app)
    yield app
    await app.state.broker.shutdown()
    await resources.close()


async def counts_by_task_id(
    sessionmaker: async_sessionmaker[AsyncSession], task_ids: set[str]
) -> dict[str, int]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(TaskExecution.task_id, func.count())
            .where(TaskExecution.task_id.in_(task_ids))
            .group_by(TaskExecution.task_id)
        )
        return {task_id: count for task_id, count in rows.all()}


class RunNowLoop:
    """POST /run every few hundred ms; keeps each answer's status, body and time."""

    def __init__(self, app: FastAPI, config_id: int, headers: dict[str, str]) -> None:
        self.app, self.url, self.headers = app, f"/api/v1/tasks/configs/{config_id}/run", headers
        self.answers: list[tuple[float, int, dict]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            while True:
                response = await client.post(self.url, headers=self.headers)
                self.answers.append((time.monotonic(), response.status_code, response.json()))
                await asyncio.sleep(0.25)

    def accepted(self, after: float = 0) -> set[str]:
        return {body["task_id"] for at, code, body in self.answers if code == 202 and at > after}


async def test_a_rabbitmq_restart_loses_no_confirmed_run(
    node: RabbitNode,
    app_on: FastAPI,
    tmp_path: Path,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    superuser_headers: dict[str, str],
) -> None:
    env = {"RABBITMQ_URL": node.url}
    worker = Worker(tmp_path / "worker.log", env=env)
    scheduler = processes.start_scheduler("scheduler-rabbitmq-restart", **env)
    # `allow`: a fire is never skipped for overlapping its predecessor (no record, by design).
    scheduled = await create_config(
        session, scheduler_type="interval", schedule_config={"seconds": 1}, overlap_policy="allow"
    )
    manual = await create_config(session)
    loop = RunNowLoop(app_on, manual.id, superuser_headers)
    try:
        await worker.start()  # the scheduler starts meanwhile: each takes seconds
        await processes.scheduler_ready(scheduler)
        await schedules.apply_action(redis, scheduled, "start")
        loop.start()
        await processes.eventually(
            lambda: events(redis, scheduled.id, "succeeded"), lambda found: len(found) >= 2,
            timeout=30,
        )  # fmt: skip

        await node.ctl("stop_app")
        outage_started = time.monotonic()
        await asyncio.sleep(OUTAGE_SECONDS)
        await node.ctl("start_app")
        back = time.monotonic()
        back_at = datetime.now(UTC)

        # Both reconnect by themselves: runs sent after the restart are executed again.
        async def recorded_after_restart() -> bool:
            fresh = loop.accepted(after=back)
            done = await counts_by_task_id(sessionmaker, fresh) if fresh else {}
            fired = await events(redis, scheduled.id, "succeeded")
            return bool(done) and any(
                datetime.fromisoformat(event["at"]) > back_at for event in fired
            )

        await processes.eventually(recorded_after_restart, timeout=60, interval=0.5)

        # The fires whose sends failed during the outage are sent once it is back (well
        # within the misfire grace): each one fired, none twice.
        async def retried_and_sent() -> bool:
            failed = await events(redis, scheduled.id, "send_failed")
            fired = {event["fire_at"] for event in await events(redis, scheduled.id, "fired")}
            return bool(failed) and {event["fire_at"] for event in failed} <= fired

        await processes.eventually(retried_and_sent, timeout=60, interval=0.5)
    finally:
        await loop.stop()
        await schedules.apply_action(redis, scheduled, "stop")
        processes.stop(scheduler)

    # Run now: accepted (202) or refused (503 in the error shape) during the outage; never 500.
    codes = {code for _, code, _ in loop.answers}
    assert codes <= {202, 503}, codes
    refused = [(at, body) for at, code, body in loop.answers if code == 503]
    assert refused, "no run now was refused during the outage"
    assert all(body["error"]["code"] == "service_unavailable" for _, body in refused)
    assert all(outage_started - 1 < at < back + 10 for at, _ in refused)

    # No confirmed message lost: every accepted run, and every fire the scheduler recorded
    # as sent, ends in exactly one record.
    fired = {event["task_id"] for event in await events(redis, scheduled.id, "fired")}
    expected = loop.accepted() | fired

    async def all_recorded() -> dict[str, int]:
        return await counts_by_task_id(sessionmaker, expected)

    try:
        found = await processes.eventually(
            all_recorded, lambda got: set(got) == expected, timeout=60, interval=0.5
        )
    finally:
        worker.stop()
    assert set(found.values()) == {1}

    fire_times = [event["fire_at"] for event in await events(redis, scheduled.id, "fired")]
    assert len(fire_times) == len(set(fire_times)), "a fire was sent twice"
