"""When messages reach a RabbitMQ queue: a consumer that notes each arrival's time and headers."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime

import aio_pika
from aiormq.exceptions import ChannelNotFoundEntity

from bench import common


@dataclass(frozen=True)
class Arrival:
    at: float  # time.time() when the consumer got it
    headers: dict


@dataclass
class Arrivals:
    items: list[Arrival] = field(default_factory=list)

    def since(self, moment: float) -> list[Arrival]:
        return [a for a in self.items if a.at >= moment]

    def for_fire(self, fire_at: datetime) -> list[Arrival]:
        stamp = fire_at.isoformat()
        return [a for a in self.items if a.headers.get("fire_at") == stamp]


async def queue_exists(name: str) -> bool:
    connection = await aio_pika.connect(common.AMQP_URL)
    async with connection:
        channel = await connection.channel()
        try:
            await channel.declare_queue(name, passive=True)
        except ChannelNotFoundEntity:
            return False
        return True


@contextlib.asynccontextmanager
async def consuming(queue_name: str) -> AsyncIterator[Arrivals]:
    """Consume (no ack, so nothing is redelivered) the queue a scheduler declared."""
    arrivals = Arrivals()
    connection = await aio_pika.connect(common.AMQP_URL)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, passive=True)

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            arrivals.items.append(Arrival(time.time(), dict(message.headers)))

        tag = await queue.consume(on_message, no_ack=True)
        try:
            yield arrivals
        finally:
            await queue.cancel(tag)


async def wait_count(
    arrivals: Arrivals, select: Callable[[Arrivals], list[Arrival]], n: int, *, timeout: float
) -> None:
    """Wait until `select(arrivals)` holds n items (or fail at the deadline)."""
    deadline = time.monotonic() + timeout
    while len(select(arrivals)) < n:
        if time.monotonic() > deadline:
            got = len(select(arrivals))
            raise TimeoutError(f"only {got} of {n} messages arrived within {timeout}s")
        await asyncio.sleep(0.1)
