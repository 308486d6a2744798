"""A scheduler SIGKILLed during a burst of fires, then restarted: no fire is sent twice but one
the killed replica claimed and had not marked sent (the restarted one sends it again once its
lease ends, if still within the grace; a worker drops the copy), and every fire that was not
sent is accounted for by a `missed` event (the misfire policy)."""

import os
import time
from datetime import UTC, datetime, timedelta

import aio_pika
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from backend.services import schedule_entries, schedules
from backend.services.redis import history
from backend.services.redis import scheduler as schedule_state
from tests.support import processes
from tests.support.factories import create_config
from tests.support.schedule_state import unconfirmed_fires
from tests.support.worker_process import AMQP_URL

pytestmark = pytest.mark.e2e

CONFIGS = 150
EVERY = timedelta(seconds=2)


@pytest.fixture
def queue() -> tuple[str, str]:
    """This test's own queue and exchange: no worker consumes them, the test drains them."""
    name = f"{os.environ['RABBITMQ_QUEUE']}-kill"
    return name, f"{os.environ['RABBITMQ_EXCHANGE']}-kill"


async def message_count(channel: aio_pika.abc.AbstractChannel, queue: str) -> int:
    declared = await channel.declare_queue(queue, passive=True)
    return declared.declaration_result.message_count or 0


async def drain(queue: str, exchange: str) -> list[str]:
    """Every task id sent to the queue (the queue and exchange are deleted afterwards)."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        task_ids = []
        while (message := await declared.get(no_ack=True, fail=False)) is not None:
            task_ids.append(str(message.headers["task_id"]))
        for name in (queue, f"{queue}.dead_letter", f"{queue}.delay"):
            await channel.queue_delete(name)
        await channel.exchange_delete(exchange)
    return task_ids


async def kill_during_second_burst(process: object, queue: str, *, timeout: float = 30) -> None:
    """SIGKILL the scheduler as soon as the second burst's first messages arrive."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        deadline = time.monotonic() + timeout
        while await message_count(channel, queue) <= CONFIGS:
            assert time.monotonic() < deadline, "the second burst never came"
        processes.stop(process, kill=True)  # type: ignore[arg-type]


def covered(fire: datetime, missed: list[dict]) -> bool:
    return any(
        datetime.fromisoformat(e["first"]) <= fire <= datetime.fromisoformat(e["last"])
        for e in missed
    )


async def test_scheduler_killed_in_a_burst_loses_and_repeats_nothing(
    session: AsyncSession, redis: Redis, queue: tuple[str, str]
) -> None:
    queue_name, exchange = queue
    env = {"RABBITMQ_QUEUE": queue_name, "RABBITMQ_EXCHANGE": exchange}
    configs = [
        await create_config(session, scheduler_type="interval", schedule_config={"seconds": 2})
        for _ in range(CONFIGS)
    ]
    first = processes.start_scheduler("burst-killed", SCHEDULE_CLAIM_LEASE_SECONDS="1", **env)
    restarted = None
    try:
        await processes.eventually(
            lambda: _queue_exists(queue_name), timeout=30, interval=0.2
        )  # the scheduler is up
        anchor = datetime.now(UTC).replace(microsecond=0)
        for config in configs:  # one anchor: every config fires in the same second
            await schedules.apply_action(redis, config, "start", now=anchor)
        await kill_during_second_burst(first, queue_name)
        unconfirmed = await unconfirmed_fires(redis, [config.id for config in configs])
        restarted = processes.start_scheduler(
            "burst-restarted",
            MISFIRE_GRACE_SECONDS="3",
            SCHEDULE_CLAIM_LEASE_SECONDS="1",
            RECONCILE_INTERVAL_SECONDS="1",
            **env,
        )
        await processes.scheduler_ready(restarted)
        ready_at = datetime.now(UTC)  # on a busy machine this may be past a fire or two
        fires = [anchor + EVERY * k for k in range(1, 5)]

        async def accounted() -> int:
            """Configs whose first four fires are each fired or missed, by the history."""
            done = 0
            for config in configs:
                items, _ = await history.read(redis, config.id)
                fired = {
                    datetime.fromisoformat(e["fire_at"]) for e in items if e["event"] == "fired"
                }
                missed = [e for e in items if e["event"] == "missed"]
                done += all(f in fired or covered(f, missed) for f in fires)
            return done

        await processes.eventually(accounted, lambda n: n == CONFIGS, timeout=40, interval=0.5)
        before_stop = {c.id: (await schedule_state.read_state(redis, c.id)).status for c in configs}
    finally:
        processes.stop(first, kill=True)
        if restarted is not None:
            processes.stop(restarted)
        for config in configs:  # later schedulers of this session must not fire them
            await schedules.apply_action(redis, config, "stop")
    sent = await drain(queue_name, exchange)
    twice = {task_id for task_id in sent if sent.count(task_id) > 1}
    assert twice <= unconfirmed, "a fire was sent twice"
    assert all(sent.count(task_id) == 2 for task_id in twice)
    sent_ids = set(sent)
    for config in configs:
        items, _ = await history.read(redis, config.id)
        fired = [e for e in items if e["event"] == "fired"]
        missed = [e for e in items if e["event"] == "missed"]
        assert len({e["fire_at"] for e in fired}) == len(fired), "a fire recorded twice"
        unsent = [f for f in fires if schedule_entries.fire_task_id(config.id, f) not in sent_ids]
        for fire in unsent:
            assert covered(fire, missed), f"fire {fire} of config {config.id} lost silently"
        # A fire may go unsent only if it fell due while no scheduler was up to send it.
        assert all(fire <= ready_at for fire in unsent), (config.id, unsent, ready_at)
        assert {e["task_id"] for e in fired} <= sent_ids
        assert before_stop[config.id] == "active"


async def _queue_exists(name: str) -> bool:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        try:
            await channel.declare_queue(name, passive=True)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            return False
        return True
