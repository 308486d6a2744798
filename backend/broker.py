"""The RabbitMQ broker (taskiq-aio-pika): built at import, connected only in startup events."""

import asyncio
import logging
import re
from collections.abc import AsyncGenerator
from typing import Any

from aio_pika import IncomingMessage
from aio_pika.exceptions import AMQPError
from aiormq.exceptions import ChannelPreconditionFailed
from taskiq import AckableMessage, AsyncTaskiqDecoratedTask
from taskiq_aio_pika import AioPikaBroker, Exchange, Queue, QueueType

from backend.acks import Acks
from backend.config import Settings, get_settings
from backend.publisher import PipelinedBroker

logger = logging.getLogger(__name__)

MAX_PRIORITY = 9


class QueueMismatch(Exception):
    """A queue exists with other arguments (its type) than this process declares it with."""


class TaskhubBroker(PipelinedBroker):
    """The one publish path (PipelinedBroker), and a worker's acks written together
    (backend/acks.py). With a `fallback_task` set (the worker sets it), a message naming a
    task this process lacks runs that task instead: taskiq's receiver would ack and drop it,
    with no record. A queue that exists with another type is a clear error at start."""

    fallback_task: AsyncTaskiqDecoratedTask[Any, Any] | None = None
    _acks: Acks | None = None

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        """The library's deliveries, their acks written together (backend/acks.py)."""
        self._acks = acks = Acks(prefetch=self._qos)
        async for delivery in super().listen():
            # taskiq-aio-pika passes the delivery's bound `ack`: its owner is the delivery.
            incoming = getattr(delivery.ack, "__self__", None)
            if not isinstance(incoming, IncomingMessage) or incoming.delivery_tag is None:
                yield delivery
                continue
            ack = acks.delivered(incoming.channel, incoming.delivery_tag)
            yield AckableMessage(data=delivery.data, ack=ack)

    async def shutdown(self) -> None:
        if self._acks is not None:
            await self._acks.drain()
        await super().shutdown()

    def find_task(self, task_name: str) -> AsyncTaskiqDecoratedTask[Any, Any] | None:
        return super().find_task(task_name) or self.fallback_task

    async def startup(self) -> None:
        try:
            await super().startup()
        except ChannelPreconditionFailed as exc:
            message = queue_mismatch_message(str(exc), task_queue=self._task_queues[0].name)
            logger.critical("%s", message)
            for connection in (self.read_conn, self.write_conn):
                if connection is not None:
                    await connection.close()
            if self.is_worker_process or self.is_scheduler_process:
                # Nothing to retry and no stack to read: the process stops with the message.
                raise SystemExit(message) from None
            raise QueueMismatch(message) from None


_TYPE_CHANGED = re.compile(
    r"inequivalent arg 'x-queue-type' for queue '(?P<queue>[^']+)'.*"
    r"received '(?P<wanted>[^']+)' but current is '(?P<current>[^']+)'"
)


def queue_mismatch_message(error: str, *, task_queue: str) -> str:
    """What RabbitMQ's PRECONDITION_FAILED means here, and what to do about it."""
    found = _TYPE_CHANGED.search(error)
    if found is None:
        return (
            f"RabbitMQ refused to declare a queue ({error}): it exists with other arguments; "
            "drain and delete it, then start again"
        )
    queue, current = found["queue"], found["current"]
    return (
        f"RabbitMQ queue {queue!r} exists as a {current} queue, but RABBITMQ_QUEUE_TYPE is "
        f"{found['wanted']}: a queue's type cannot change. Either set RABBITMQ_QUEUE_TYPE="
        f"{current}, or stop every process, let the workers drain the queues, delete "
        f"{task_queue}, {task_queue}.delay and {task_queue}.dead_letter (`rabbitmqctl "
        "delete_queue <name>`), then start again"
    )


def task_queues(settings: Settings) -> tuple[Queue, Queue, Queue]:
    """The task queue, its dead-letter queue and its retry delay queue, all of one type.

    classic: message priorities are honoured (x-max-priority). quorum: replicated across a
    cluster's nodes; RabbitMQ 3.x refuses x-max-priority on a quorum queue and ignores message
    priorities there (4.0 gives quorum queues two levels: priority > 4 before the others)."""
    name = settings.rabbitmq_queue
    kind = QueueType(settings.rabbitmq_queue_type)
    priority = MAX_PRIORITY if kind is QueueType.CLASSIC else None
    return (
        Queue(name=name, type=kind, max_priority=priority),
        Queue(name=f"{name}.dead_letter", type=kind),
        # Retry backoff (the `delay` label): a message waits here for its per-message TTL,
        # then is dead-lettered into the task queue. No plugin needed; a long delay at the
        # head of this queue holds shorter ones behind it, which is fine for retry backoffs.
        Queue(name=f"{name}.delay", type=kind),
    )


def build_broker(settings: Settings) -> TaskhubBroker:
    return TaskhubBroker(**broker_options(settings))


def broker_options(settings: Settings) -> dict[str, Any]:
    """The queues and connection of every broker; a peer that must publish as stock taskiq
    does builds the library's AioPikaBroker from them (bench/stock_scheduler.py)."""
    task_queue, dead_letter_queue, delay_queue = task_queues(settings)
    return dict(
        url=settings.rabbitmq_url,
        exchange=Exchange(name=settings.rabbitmq_exchange),
        task_queues=[task_queue],
        dead_letter_queue=dead_letter_queue,
        delay_queue=delay_queue,
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
