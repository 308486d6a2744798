"""From a run's record to a delivered notification: streaks, recovery, pause on failure,
missed and late fires, retries, and one delivery per event however often it is seen."""

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.config import Settings, get_settings
from backend.models import NotificationChannel, NotificationDelivery, TaskConfig
from backend.resources import Resources
from backend.scheduler import database
from backend.services import alert_inbox, alerts, notifications, schedule_entries, schedules
from backend.services.redis import history
from backend.services.redis import scheduler as schedule_state
from backend.worker.records import Ending, Outcome, finish
from tests.support.factories import create_config
from tests.support.http_sink import HttpSink, http_sink

FAST = {"notification_retry_seconds": 0.0, "notification_timeout_seconds": 2.0}


@pytest.fixture
def settings() -> Settings:
    return get_settings().model_copy(update=FAST)


@pytest.fixture
def resources(app: FastAPI) -> Resources:
    return app.state.resources


@pytest.fixture
async def scheduler_pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """The scheduler's own pool: it writes inbox rows over plain asyncpg."""
    pool = await database.open_pool(settings.database_url)
    yield pool
    await pool.close()


@pytest.fixture
async def sink() -> AsyncIterator[HttpSink]:
    async with http_sink() as running:
        yield running


async def channel_to(session: AsyncSession, sink: HttpSink) -> NotificationChannel:
    channel = NotificationChannel(
        name=f"hook-{uuid.uuid4().hex[:8]}", kind="webhook", config={"url": sink.url()}
    )
    session.add(channel)
    await session.commit()
    return channel


async def alerting_config(
    session: AsyncSession, channel: NotificationChannel, **fields: Any
) -> TaskConfig:
    rules = {
        "channel_ids": [channel.id],
        "on": ["failure", "recovery", "missed", "late", "paused"],
        "after_consecutive_failures": 1,
        "late_after_seconds": 5,
    } | fields.pop("rules", {})
    return await create_config(
        session, scheduler_type="interval", schedule_config={"seconds": 60}, alerts=rules, **fields
    )  # fmt: skip


async def record(
    resources: Resources, config: TaskConfig, *, ok: bool, trigger: str = "scheduled"
) -> str:
    now = datetime.now(UTC)
    task_id = uuid.uuid4().hex
    outcome = Outcome(
        task_id=task_id, config_id=config.id, is_success=ok, started_at=now - timedelta(seconds=1),
        completed_at=now, trigger=trigger, attempts=1,
        error_message=None if ok else "DemoTaskError: boom",
    )  # fmt: skip
    event = "succeeded" if ok else "failed"
    await finish(resources, [Ending(outcome=outcome, event=event, task_type="demo.sleep")])
    return task_id


async def settle(resources: Resources, settings: Settings) -> None:
    """What the notifier does each tick, until nothing is left to do."""
    while True:
        handled = await alerts.process_inbox(
            resources.sessionmaker, resources.redis, settings=settings
        )
        sent = await notifications.send_due(resources.sessionmaker, settings=settings)
        if not handled and not sent:
            return


async def deliveries(session: AsyncSession, config: TaskConfig) -> list[NotificationDelivery]:
    query = select(NotificationDelivery).where(NotificationDelivery.config_id == config.id)
    return list(await session.scalars(query.order_by(NotificationDelivery.id)))


def events(sink: HttpSink) -> list[str]:
    return [json.loads(r.body)["event"] for r in sink.received]


async def test_failure_streak_then_recovery(
    resources: Resources, session: AsyncSession, settings: Settings, sink: HttpSink
) -> None:
    channel = await channel_to(session, sink)
    config = await alerting_config(session, channel, rules={"after_consecutive_failures": 2})
    await record(resources, config, ok=False)
    await settle(resources, settings)
    assert events(sink) == []  # one failure: under the threshold
    failing = await record(resources, config, ok=False)
    await record(resources, config, ok=True)
    await settle(resources, settings)
    # The notifier sends a batch of deliveries at once: they may arrive in either order (the
    # rows below keep the order the alerts were raised in).
    assert sorted(events(sink)) == ["failure", "recovery"]
    [body] = [json.loads(r.body) for r in sink.received if json.loads(r.body)["event"] == "failure"]
    assert body["run"]["task_id"] == failing
    assert body["consecutive_failures"] == 2
    assert body["config"] == {"id": config.id, "name": config.name, "task_type": "demo.sleep"}
    assert body["console_url"].endswith(f"/console/#/configs/{config.id}")
    rows = await deliveries(session, config)
    assert [(r.event, r.status, r.attempts) for r in rows] == [
        ("failure", "delivered", 1), ("recovery", "delivered", 1)
    ]  # fmt: skip


async def test_pause_after_failures(
    resources: Resources, session: AsyncSession, redis: Redis, settings: Settings, sink: HttpSink
) -> None:
    channel = await channel_to(session, sink)
    config = await alerting_config(
        session, channel, pause_after_failures=2, rules={"on": ["paused"]}
    )
    await schedules.apply_action(redis, config, "start")
    await record(resources, config, ok=False, trigger="manual")  # only scheduled runs count
    await record(resources, config, ok=False)
    await settle(resources, settings)
    assert (await schedule_state.read_state(redis, config.id)).status == "active"
    await record(resources, config, ok=False)
    await settle(resources, settings)
    state = await schedule_state.read_state(redis, config.id)
    assert state.status == "paused"
    assert state.note == "paused after 2 consecutive failures: DemoTaskError: boom"
    [latest, *_] = (await history.read(redis, config.id))[0]
    assert (latest["event"], latest["failures"]) == ("auto_paused", 2)
    assert events(sink) == ["paused"]
    await schedules.apply_action(redis, config, "stop")


async def test_missed_and_late_fires(
    resources: Resources,
    scheduler_pool: asyncpg.Pool,
    session: AsyncSession,
    settings: Settings,
    sink: HttpSink,
) -> None:
    channel = await channel_to(session, sink)
    config = await alerting_config(session, channel)
    fires = [datetime(2026, 12, 1, 3, minute, tzinfo=UTC) for minute in (0, 1, 2)]
    await alert_inbox.note_missed(scheduler_pool, config.id, fires)
    fire = datetime.now(UTC) - timedelta(seconds=30)
    late_id = schedule_entries.fire_task_id(config.id, fire)
    recorded_id = await record(resources, config, ok=True)
    await alert_inbox.note_late(
        scheduler_pool, [(config.id, late_id, fire), (config.id, recorded_id, fire)]
    )
    await settle(resources, settings)
    assert sorted(events(sink)) == ["late", "missed"]
    late = next(json.loads(r.body) for r in sink.received if b'"late"' in r.body)
    assert late["event_id"] == f"late:{late_id}"
    assert late["fire_time"] == fire.isoformat()


async def test_a_webhook_failing_twice_is_delivered_once_on_the_third_attempt(
    resources: Resources, session: AsyncSession, settings: Settings
) -> None:
    async with http_sink(answers=[500, 503]) as flaky:
        channel = await channel_to(session, flaky)
        config = await alerting_config(session, channel)
        await record(resources, config, ok=False)
        await settle(resources, settings)
    [row] = await deliveries(session, config)
    assert (row.status, row.attempts, row.last_status) == ("delivered", 3, 200)
    assert len(flaky.received) == 3


async def test_a_4xx_is_final_and_a_dead_channel_never_fails_the_run(
    resources: Resources, session: AsyncSession, settings: Settings
) -> None:
    async with http_sink(answers=[410]) as gone:
        channel = await channel_to(session, gone)
        config = await alerting_config(session, channel)
        task_id = await record(resources, config, ok=False)  # the record is written regardless
        await settle(resources, settings)
    [row] = await deliveries(session, config)
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, "answered 410")
    assert task_id


async def test_each_event_is_delivered_once_by_many_notifiers(
    resources: Resources, session: AsyncSession, settings: Settings, sink: HttpSink
) -> None:
    channel = await channel_to(session, sink)
    config = await alerting_config(session, channel)
    for _ in range(5):
        await record(resources, config, ok=False)
    # The same happening seen twice (a redelivered record cannot be inserted twice; a second
    # inbox row for it can come from a retried notifier pass).
    await asyncio.gather(*(settle(resources, settings) for _ in range(4)))
    rows = await deliveries(session, config)
    assert len(rows) == 5
    assert len(sink.received) == 5
    assert len({json.loads(r.body)["event_id"] for r in sink.received}) == 5


async def test_stats_carry_the_streak(
    client: Any, resources: Resources, session: AsyncSession, superuser_headers: dict
) -> None:
    config = await create_config(session)
    await record(resources, config, ok=True)
    for _ in range(3):
        await record(resources, config, ok=False)
    response = await client.get(
        f"/api/v1/tasks/configs/{config.id}", params={"include_stats": "true"},
        headers=superuser_headers,
    )  # fmt: skip
    stats = response.json()["stats"]
    assert (stats["consecutive_failures"], stats["last_error"]) == (3, "DemoTaskError: boom")


class Inbox:
    """An aiosmtpd handler that keeps what it is sent."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(envelope)
        return "250 OK"


async def test_an_email_channel_sends_over_smtp(
    resources: Resources, session: AsyncSession, settings: Settings
) -> None:
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    with socket.socket() as probe:  # a free local port for the SMTP server
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        smtp = settings.model_copy(
            update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_starttls": False,
                    "smtp_from": "taskhub@example.com"}
        )  # fmt: skip
        channel = NotificationChannel(
            name=f"mail-{uuid.uuid4().hex[:8]}", kind="email", config={"to": ["ops@example.com"]}
        )
        session.add(channel)
        await session.commit()
        config = await alerting_config(session, channel)
        await record(resources, config, ok=False)
        await settle(resources, smtp)
    finally:
        controller.stop()
    [row] = await deliveries(session, config)
    assert (row.status, row.attempts) == ("delivered", 1)
    [envelope] = inbox.messages
    assert envelope.mail_from == "taskhub@example.com"
    assert envelope.rcpt_tos == ["ops@example.com"]
    text = envelope.content.decode()
    assert f"failure of '{config.name}'" in text
    assert "DemoTaskError: boom" in text
