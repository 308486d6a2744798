"""The scheduler's send path when the broker fails: the claimed fire is retried, not lost.

The scheduler and its schedule source are the real ones (real Redis); only the broker is a
stand-in whose publish fails as the test says.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession
from taskiq import InMemoryBroker
from taskiq.message import BrokerMessage

from backend.config import get_settings
from backend.scheduler import sender
from backend.scheduler.sender import TaskhubScheduler
from backend.scheduler.source import TaskhubScheduleSource
from backend.services import schedules
from backend.services.redis import history
from backend.services.redis import scheduler as schedule_state
from tests.support.fires import first_entry, kinds, started


class FlakyBroker(InMemoryBroker):
    """Publishing fails `failures` times (calling `on_failure` each time), then succeeds."""

    def __init__(self, failures: int, on_failure: Callable[[], object] | None = None) -> None:
        super().__init__()
        self.failures = failures
        self.on_failure = on_failure
        self.sent: list[BrokerMessage] = []

    async def kick(self, message: BrokerMessage) -> None:
        if self.failures:
            self.failures -= 1
            if self.on_failure is not None:
                await self.on_failure()  # type: ignore[misc]
            raise ConnectionError("broker unreachable")
        self.sent.append(message)


async def source_with(grace_seconds: float) -> AsyncIterator[TaskhubScheduleSource]:
    settings = get_settings().model_copy(update={"misfire_grace_seconds": grace_seconds})
    source = TaskhubScheduleSource(settings)
    yield source
    await source.shutdown()


@pytest.fixture
async def source() -> AsyncIterator[TaskhubScheduleSource]:
    async for made in source_with(60):
        yield made


@pytest.fixture
async def source_without_grace() -> AsyncIterator[TaskhubScheduleSource]:
    async for made in source_with(0):
        yield made


async def test_a_failed_send_gives_the_claim_back_and_is_retried(
    source: TaskhubScheduleSource, session: AsyncSession, redis: Redis
) -> None:
    config = await started(session, redis, now=datetime.now(UTC))
    task = await first_entry(redis, config.id)
    broker = FlakyBroker(failures=1)

    await TaskhubScheduler(broker=broker, sources=[source]).on_ready(source, task)

    assert [m.task_id for m in broker.sent] == [task.task_id]
    assert await kinds(redis, config.id) == ["started", "send_failed", "fired"]
    failed = [e for e in (await history.read(redis, config.id))[0] if e["event"] == "send_failed"]
    assert failed[0]["retry"] is True
    assert failed[0]["error"] == "ConnectionError: broker unreachable"
    assert failed[0]["task_id"] == task.task_id
    queued = await schedule_state.queued_entries(redis, config.id)
    assert task.schedule_id not in [entry_id for entry_id, _ in queued]
    assert len(queued) == 3


async def test_past_the_grace_a_failed_send_is_left_unclaimed_for_reconcile(
    source_without_grace: TaskhubScheduleSource, session: AsyncSession, redis: Redis
) -> None:
    config = await started(session, redis, now=datetime.now(UTC) - timedelta(seconds=61))
    task = await first_entry(redis, config.id)  # due a second ago
    broker = FlakyBroker(failures=100)

    scheduler = TaskhubScheduler(broker=broker, sources=[source_without_grace])
    await scheduler.on_ready(source_without_grace, task)

    assert broker.sent == []
    assert broker.failures == 99  # tried once, no retry
    assert await kinds(redis, config.id) == ["started", "send_failed"]
    fire_ms = schedule_state.parse_schedule_id(task.schedule_id)[2]
    assert not await redis.exists(schedule_state.claim_key(config.id, fire_ms))
    queued = await schedule_state.queued_entries(redis, config.id)
    assert task.schedule_id in [entry_id for entry_id, _ in queued]


async def test_a_pause_while_the_send_waits_for_its_retry_wins(
    source: TaskhubScheduleSource, session: AsyncSession, redis: Redis
) -> None:
    config = await started(session, redis, now=datetime.now(UTC))
    task = await first_entry(redis, config.id)

    async def pause() -> None:
        await schedules.apply_action(redis, config, "pause")

    broker = FlakyBroker(failures=1, on_failure=pause)
    await TaskhubScheduler(broker=broker, sources=[source]).on_ready(source, task)

    assert broker.sent == []
    assert await kinds(redis, config.id) == ["started", "paused", "send_failed"]


async def test_a_malformed_entry_does_not_stop_the_others(
    source: TaskhubScheduleSource, session: AsyncSession, redis: Redis
) -> None:
    config = await started(session, redis, now=datetime.now(UTC) - timedelta(seconds=59))
    task = await first_entry(redis, config.id)  # due within a second: in the window read
    bad_id = f"{config.id}:0:{schedule_state.to_ms(datetime.now(UTC))}"
    await redis.set(schedule_state.data_key(bad_id), '{"task_name": 1, "labels": "no"}')
    await redis.zadd(schedule_state.due_key(), {bad_id: schedule_state.to_ms(datetime.now(UTC))})
    try:
        found = await source.get_schedules()
    finally:
        await redis.zrem(schedule_state.due_key(), bad_id)
    assert task.schedule_id in [t.schedule_id for t in found]
    assert bad_id not in [t.schedule_id for t in found]


# A sent fire keeps its `fired` event when an action or a shutdown comes between the send
# and its deferred bookkeeping.


class ActionAfterPublish(InMemoryBroker):
    def __init__(self, action: Callable[[], Awaitable[object]]) -> None:
        super().__init__()
        self.action = action
        self.sent: list[BrokerMessage] = []

    async def kick(self, message: BrokerMessage) -> None:
        self.sent.append(message)  # RabbitMQ has it
        await self.action()  # a stop lands before post_send's bookkeeping


async def test_a_stop_between_send_and_bookkeeping_keeps_the_fired_event(
    source: TaskhubScheduleSource, session: AsyncSession, redis: Redis
) -> None:
    config = await started(session, redis, now=datetime.now(UTC))
    task = await first_entry(redis, config.id)

    async def stop() -> None:
        await schedules.apply_action(redis, config, "stop")

    broker = ActionAfterPublish(stop)
    await TaskhubScheduler(broker=broker, sources=[source]).on_ready(source, task)
    assert [m.task_id for m in broker.sent] == [task.task_id]
    assert (await kinds(redis, config.id)).count("fired") == 1


class SlowConfirm(InMemoryBroker):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[BrokerMessage] = []

    async def kick(self, message: BrokerMessage) -> None:
        self.sent.append(message)  # published ...
        await asyncio.sleep(0.3)  # ... its confirm still on its way


async def test_a_shutdown_waits_for_a_send_in_flight(
    source: TaskhubScheduleSource, session: AsyncSession, redis: Redis
) -> None:
    """What taskiq's run_scheduler does on SIGINT: scheduler.shutdown(), source.shutdown(),
    then asyncio.run cancels every task still running."""
    config = await started(session, redis, now=datetime.now(UTC))
    task = await first_entry(redis, config.id)
    broker = SlowConfirm()
    scheduler = TaskhubScheduler(broker=broker, sources=[source])
    send = asyncio.create_task(scheduler.on_ready(source, task))
    await asyncio.sleep(0.1)  # claimed, publishing
    await scheduler.shutdown()
    await source.shutdown()
    send.cancel()
    await asyncio.gather(send, return_exceptions=True)
    assert [m.task_id for m in broker.sent] == [task.task_id]
    assert (await kinds(redis, config.id)).count("fired") == 1


# A burst is claimed and sent a bounded number of fires at a time (its messages are not all
# built at once), and every fire is still sent once.


class CountingBroker(InMemoryBroker):
    def __init__(self) -> None:
        super().__init__()
        self.sending = 0
        self.most_at_once = 0
        self.sent: list[BrokerMessage] = []

    async def kick(self, message: BrokerMessage) -> None:
        self.sending += 1
        self.most_at_once = max(self.most_at_once, self.sending)
        await asyncio.sleep(0.05)  # its confirm on its way
        self.sent.append(message)
        self.sending -= 1


async def test_a_burst_is_sent_a_bounded_number_of_fires_at_a_time(
    source: TaskhubScheduleSource,
    session: AsyncSession,
    redis: Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sender, "MAX_SENDING", 2)
    configs = [await started(session, redis, now=datetime.now(UTC)) for _ in range(5)]
    tasks = [await first_entry(redis, config.id) for config in configs]
    broker = CountingBroker()
    scheduler = TaskhubScheduler(broker=broker, sources=[source])

    await asyncio.gather(*(scheduler.on_ready(source, task) for task in tasks))

    assert broker.most_at_once == 2
    assert sorted(m.task_id for m in broker.sent) == sorted(t.task_id for t in tasks)
    for config in configs:
        assert (await kinds(redis, config.id)).count("fired") == 1
