"""Alerts with real worker and scheduler processes and a real HTTP receiver: a failing
schedule notifies, pauses itself and recovers; a fire nobody runs is reported late."""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from backend.models import NotificationChannel
from backend.services.redis import scheduler as schedule_state
from tests.support import processes
from tests.support.http_sink import HttpSink, http_sink
from tests.support.processes import eventually
from tests.support.worker_process import Worker

pytestmark = pytest.mark.e2e

# Quick ticks and retries; other tests' receivers are gone, so their retries fail fast.
NOTIFIER_ENV = {
    "NOTIFIER_INTERVAL_SECONDS": "0.2",
    "NOTIFICATION_RETRY_SECONDS": "0",
    "NOTIFICATION_TIMEOUT_SECONDS": "2",
}
CONFIGS = "/api/v1/tasks/configs"


@pytest.fixture
async def sink() -> AsyncIterator[HttpSink]:
    async with http_sink() as running:
        yield running


@pytest.fixture(scope="module")
async def scheduler() -> AsyncIterator[None]:
    """One for the module: each test has its own configs and channel, and no test here needs
    the scheduler stopped."""
    process = processes.start_scheduler("alerts-scheduler", LATE_CHECK_INTERVAL_SECONDS="0.2")
    try:
        await processes.scheduler_ready(process)
        yield
    finally:
        processes.stop(process)


async def channel_to(session: AsyncSession, sink: HttpSink) -> int:
    channel = NotificationChannel(
        name=f"e2e-{sink.url()}", kind="webhook", config={"url": sink.url()}
    )
    session.add(channel)
    await session.commit()
    return channel.id


def received(sink: HttpSink) -> list[str]:
    return [json.loads(r.body)["event"] for r in sink.received]


async def test_a_failing_schedule_notifies_pauses_itself_and_recovers(
    client: httpx.AsyncClient,
    session: AsyncSession,
    redis: Redis,
    superuser_headers: dict,
    sink: HttpSink,
    scheduler: None,
    tmp_path: Path,
) -> None:
    channel_id = await channel_to(session, sink)
    body = {
        "name": f"alerting-{channel_id}", "task_type": "demo.sleep", "scheduler_type": "interval",
        "schedule_config": {"seconds": 1}, "parameters": {"fail": True, "message": "boom"},
        "pause_after_failures": 2,
        "alerts": {"channel_ids": [channel_id], "on": ["failure", "paused", "recovery"]},
    }  # fmt: skip
    config = (
        await client.post(f"{CONFIGS}?auto_start=true", json=body, headers=superuser_headers)
    ).json()
    worker = await Worker(tmp_path / "worker.log", env=NOTIFIER_ENV).start()
    try:
        state = await eventually(
            lambda: schedule_state.read_state(redis, config["id"]),
            lambda s: s.status == "paused",
            timeout=60,
        )
        assert state.note is not None
        assert state.note.startswith("paused after 2 consecutive failures: DemoTaskError: boom")
        await eventually(lambda: _events(sink), lambda e: "paused" in e, timeout=30)
        assert received(sink).count("paused") == 1
        assert received(sink).count("failure") >= 2
        await client.patch(
            f"{CONFIGS}/{config['id']}", json={"parameters": {}}, headers=superuser_headers
        )
        run = await client.post(f"{CONFIGS}/{config['id']}/run", headers=superuser_headers)
        assert run.status_code == 202
        await eventually(lambda: _events(sink), lambda e: "recovery" in e, timeout=60)
    finally:
        worker.stop()
        await client.post(f"{CONFIGS}/{config['id']}/actions/stop", headers=superuser_headers)
    recovery = next(json.loads(r.body) for r in sink.received if b'"recovery"' in r.body)
    assert recovery["run"]["is_success"] is True
    assert recovery["run"]["trigger"] == "manual"


async def test_a_fire_no_worker_runs_is_reported_late(
    client: httpx.AsyncClient,
    session: AsyncSession,
    superuser_headers: dict,
    sink: HttpSink,
    scheduler: None,
    tmp_path: Path,
) -> None:
    channel_id = await channel_to(session, sink)
    body = {
        "name": f"late-{channel_id}", "task_type": "demo.sleep", "scheduler_type": "interval",
        "schedule_config": {"seconds": 3}, "parameters": {},
        "alerts": {"channel_ids": [channel_id], "on": ["late"], "late_after_seconds": 1},
    }  # fmt: skip
    # This worker consumes another queue: its notifier delivers, but nobody runs the fire.
    elsewhere = {**NOTIFIER_ENV, "RABBITMQ_QUEUE": f"elsewhere-{channel_id}"}
    worker = Worker(tmp_path / "notifier.log", env=elsewhere)
    worker.spawn()
    created = await client.post(f"{CONFIGS}", json=body, headers=superuser_headers)
    config = created.json()
    try:
        await client.post(f"{CONFIGS}/{config['id']}/actions/start", headers=superuser_headers)
        await eventually(lambda: _events(sink), lambda e: "late" in e, timeout=60)
    finally:
        await client.post(f"{CONFIGS}/{config['id']}/actions/stop", headers=superuser_headers)
        worker.stop()
    late = json.loads(sink.received[0].body)
    assert late["event"] == "late"
    assert late["fire_time"] is not None
    assert set(received(sink)) == {"late"}  # one per fire not run, nothing else


async def _events(sink: HttpSink) -> list[str]:
    return received(sink)


async def test_two_workers_deliver_a_flaky_webhook_once(
    client: httpx.AsyncClient,
    session: AsyncSession,
    superuser_headers: dict,
    tmp_path: Path,
) -> None:
    async with http_sink(answers=[500, 500]) as flaky:
        channel_id = await channel_to(session, flaky)
        body = {
            "name": f"flaky-{channel_id}", "task_type": "demo.sleep", "scheduler_type": "manual",
            "parameters": {"fail": True},
            "alerts": {"channel_ids": [channel_id], "on": ["failure"]},
        }  # fmt: skip
        config = (await client.post(CONFIGS, json=body, headers=superuser_headers)).json()
        env = {**NOTIFIER_ENV, "NOTIFICATION_RETRY_SECONDS": "0.2"}
        workers = [Worker(tmp_path / f"worker-{n}.log", env=env) for n in range(2)]
        try:
            await asyncio.gather(*(worker.start() for worker in workers))  # both at once
            run = await client.post(f"{CONFIGS}/{config['id']}/run", headers=superuser_headers)
            assert run.status_code == 202

            async def delivered() -> list[dict]:
                response = await client.get(
                    "/api/v1/notifications/deliveries", params={"config_id": config["id"]},
                    headers=superuser_headers,
                )  # fmt: skip
                return response.json()["items"]

            [row] = await eventually(
                delivered, lambda rows: rows and rows[0]["status"] == "delivered", timeout=60
            )
        finally:
            for worker in workers:
                worker.stop()
    assert (row["event"], row["attempts"], row["last_status"]) == ("failure", 3, 200)
    assert len(flaky.received) == 3
