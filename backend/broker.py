"""The RabbitMQ broker (taskiq-aio-pika): built at import, connected only in startup events."""

import asyncio
import logging
from typing import Any

from aio_pika.exceptions import AMQPError
from taskiq import AsyncTaskiqDecoratedTask
from taskiq_aio_pika import AioPikaBroker, Exchange, Queue, QueueType

from backend.config import Settings, get_settings
from backend.publisher import PipelinedBroker

logger = logging.getLogger(__name__)

MAX_PRIORITY = 9


class TaskhubBroker(PipelinedBroker):
    """With a `fallback_task` set (the worker sets it), a message naming a task this process
    lacks runs that task instead: taskiq's receiver would ack and drop it, with no record."""

    fallback_task: AsyncTaskiqDecoratedTask[Any, Any] | None = None

    def find_task(self, task_name: str) -> AsyncTaskiqDecoratedTask[Any, Any] | None:
        return super().find_task(task_name) or self.fallback_task


def build_broker(settings: Settings) -> TaskhubBroker:
    return TaskhubBroker(**broker_options(settings))


def broker_options(settings: Settings) -> dict[str, Any]:
    """The queues and connection of every broker; a peer that must publish as stock taskiq
    does builds the library's AioPikaBroker from them (bench/stock_scheduler.py)."""
    # A classic queue, because RabbitMQ 3.x honours message priorities only on classic queues
    # declared with x-max-priority; quorum queues (the library default) would ignore them.
    return dict(
        url=settings.rabbitmq_url,
        exchange=Exchange(name=settings.rabbitmq_exchange),
        task_queues=[
            Queue(
                name=settings.rabbitmq_queue,
                type=QueueType.CLASSIC,
                max_priority=MAX_PRIORITY,
            )
        ],
        dead_letter_queue=Queue(
            name=f"{settings.rabbitmq_queue}.dead_letter", type=QueueType.CLASSIC
        ),
        # Retry backoff (the `delay` label): a message waits here for its per-message TTL, then
        # is dead-lettered into the task queue. No plugin needed; a long delay at the head of
        # this queue holds shorter ones behind it, which is fine for retry backoffs.
        delay_queue=Queue(name=f"{settings.rabbitmq_queue}.delay", type=QueueType.CLASSIC),
        qos=settings.worker_prefetch,
    )


broker = build_broker(get_settings())


def is_connected(broker: AioPikaBroker) -> bool:
    return broker.write_conn is not None and not broker.write_conn.is_closed


async def connect(broker: AioPikaBroker, timeout: float = 5.0) -> None:
    """Open the client connection; aio-pika's robust connection then reconnects by itself."""
    if not is_connected(broker):
        await asyncio.wait_for(broker.startup(), timeout)


async def connect_quietly(broker: AioPikaBroker) -> None:
    """At API start an unreachable broker must not stop the API: /health reports it instead."""
    try:
        await connect(broker)
    except (AMQPError, OSError, TimeoutError) as exc:
        logger.warning("message broker unreachable at startup (%s); will retry on use", exc)


async def ping(broker: AioPikaBroker, timeout: float = 2.0) -> None:
    """Raise unless the broker answers: a passive exchange check is one real round trip."""
    await connect(broker, timeout)
    assert broker.write_channel is not None
    await asyncio.wait_for(
        broker.write_channel.get_exchange(broker._exchange.name, ensure=True), timeout
    )
