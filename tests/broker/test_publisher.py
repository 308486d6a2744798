"""The batched publish path (backend/publisher.py) against a real RabbitMQ: what it writes,
that every publish is confirmed or fails, and that a publish cancelled before its batch is
written sends nothing."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest
from aiormq.abc import ChannelFrame
from taskiq.exceptions import SendTaskError
from taskiq.kicker import AsyncKicker
from taskiq_aio_pika import AioPikaBroker

from backend import publisher
from backend.broker import build_broker
from backend.config import get_settings
from backend.publisher import MAX_UNCONFIRMED, PipelinedBroker
from tests.support.infra import delete_queues

AMQP_URL = get_settings().rabbitmq_url


@pytest.fixture
async def broker() -> AsyncIterator[PipelinedBroker]:
    name = f"publisher-test-{uuid.uuid4().hex[:8]}"
    settings = get_settings().model_copy(update={"rabbitmq_queue": name, "rabbitmq_exchange": name})
    made = build_broker(settings)
    assert isinstance(made, PipelinedBroker)
    await made.startup()
    yield made
    await made.shutdown()
    await delete_queues(name, name)


async def drain(queue_name: str, n: int, timeout: float = 30) -> list[aio_pika.IncomingMessage]:
    """Read n messages off a queue (waiting for them up to `timeout`), then check it is empty."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, passive=True)
        got: list[aio_pika.IncomingMessage] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while len(got) < n:
            message = await queue.get(fail=False, no_ack=True)
            if message is None:
                assert asyncio.get_running_loop().time() < deadline, f"{len(got)} of {n}"
                await asyncio.sleep(0.05)
                continue
            got.append(message)
        assert await queue.get(fail=False, no_ack=True) is None
        return got


def kicker(broker: PipelinedBroker, task_id: str, **labels: Any) -> AsyncKicker[Any, Any]:
    return AsyncKicker(
        "demo.sleep", broker, {"config_id": 7, "priority": 3, **labels}
    ).with_task_id(task_id)


async def test_concurrent_publishes_are_confirmed_and_written_in_few_socket_writes(
    broker: PipelinedBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes = 0
    marshall = ChannelFrame.marshall.__func__  # type: ignore[attr-defined]

    def counting(cls: type[ChannelFrame], *args: Any, **kwargs: Any) -> ChannelFrame:
        nonlocal writes
        writes += 1
        return marshall(cls, *args, **kwargs)

    monkeypatch.setattr(ChannelFrame, "marshall", classmethod(counting))
    ids = [uuid.uuid4().hex for _ in range(300)]
    await asyncio.gather(*(kicker(broker, i).kiq(seconds=i) for i in ids))
    assert writes <= 3  # 300 publishes started together: one batch (a few on a slow machine)

    got = await drain(get_queue(broker), len(ids))
    assert sorted(m.headers["task_id"] for m in got) == sorted(ids)  # type: ignore[type-var]


async def test_a_message_is_the_one_the_library_would_publish(broker: PipelinedBroker) -> None:
    message = broker.formatter.dumps(
        kicker(broker, "same")._prepare_message(seconds=1)  # what kiq hands to kick
    )
    await AioPikaBroker.kick(broker, message)
    await broker.kick(message)
    library, ours = await drain(get_queue(broker), 2)
    assert ours.body == library.body
    assert ours.headers == library.headers
    assert ours.headers["config_id"] == "7"  # taskiq sends labels as strings
    assert (ours.priority, ours.delivery_mode) == (library.priority, library.delivery_mode)
    assert (ours.priority, ours.delivery_mode) == (3, aio_pika.DeliveryMode.PERSISTENT)


async def test_send_publishes_what_the_kicker_would(broker: PipelinedBroker) -> None:
    labels = {"config_id": 7, "priority": 3, "retry_on_error": False, "fire_at": "2026-01-01"}
    await AsyncKicker("demo.sleep", broker, dict(labels)).with_task_id("same").kiq(seconds=1)
    await publisher.send(
        broker, task_name="demo.sleep", task_id="same", labels=labels, kwargs={"seconds": 1}
    )
    library, ours = await drain(get_queue(broker), 2)
    assert ours.body == library.body
    assert ours.headers == library.headers
    assert (ours.priority, ours.delivery_mode) == (library.priority, library.delivery_mode)


async def test_send_raises_send_task_error_when_the_publish_fails(
    broker: PipelinedBroker,
) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        await (await connection.channel()).exchange_delete(broker._exchange.name)
    with pytest.raises(SendTaskError):
        await publisher.send(broker, task_name="demo.sleep", task_id="x", labels={}, kwargs={})


async def test_a_publish_cancelled_before_its_batch_is_written_sends_nothing(
    broker: PipelinedBroker,
) -> None:
    cancelled = asyncio.create_task(kicker(broker, "cancelled").kiq())
    sent = asyncio.create_task(kicker(broker, "sent").kiq())
    await asyncio.sleep(0)  # both queued; the flush runs on the next iteration
    cancelled.cancel()
    await sent
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    got = await drain(get_queue(broker), 1)
    assert got[0].headers["task_id"] == "sent"


async def test_a_publish_the_broker_refuses_raises(broker: PipelinedBroker) -> None:
    # The exchange gone, RabbitMQ closes the channel: no confirm comes, each publish raises.
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        await (await connection.channel()).exchange_delete(broker._exchange.name)
    results = await asyncio.gather(
        *(kicker(broker, f"refused-{i}").kiq() for i in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, SendTaskError) for r in results), results


async def test_a_delayed_message_goes_through_the_library_path(broker: PipelinedBroker) -> None:
    await kicker(broker, "later", delay=60).kiq()
    got = await drain(f"{get_queue(broker)}.delay", 1)
    assert got[0].headers["task_id"] == "later"
    assert got[0].expiration is not None


def get_queue(broker: PipelinedBroker) -> str:
    return broker._task_queues[0].name


async def test_state_left_by_another_event_loop_does_not_stall_publishing(
    broker: PipelinedBroker,
) -> None:
    # The module-level broker outlives a loop (a second asyncio.run): confirms that loop
    # still counted as outstanding will never come.
    dead = asyncio.new_event_loop()
    dead.close()
    broker._publish_loop, broker._unconfirmed = dead, MAX_UNCONFIRMED
    await asyncio.wait_for(kicker(broker, "after").kiq(), timeout=10)
    got = await drain(get_queue(broker), 1)
    assert got[0].headers["task_id"] == "after"
