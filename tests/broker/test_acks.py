"""A worker's acks written together (backend/acks.py), against a real RabbitMQ: the acks of a
few runs go out as one frame, a run never waits for its ack's write, and no delivery is ever
acked before it was asked to be."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractQueue

import backend.acks
from backend.acks import Acks
from backend.config import get_settings
from tests.support.processes import eventually

AMQP_URL = get_settings().rabbitmq_url


@pytest.fixture
async def queue_name() -> AsyncIterator[str]:
    name = f"acks-test-{uuid.uuid4().hex[:8]}"
    yield name
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(name)


async def fill(channel: AbstractChannel, name: str, n: int) -> AbstractQueue:
    queue = await channel.declare_queue(name, auto_delete=False)
    for i in range(n):
        await channel.default_exchange.publish(aio_pika.Message(str(i).encode()), routing_key=name)
    return queue


async def take(queue: AbstractQueue, n: int) -> list[aio_pika.abc.AbstractIncomingMessage]:
    taken = []
    async with queue.iterator() as iterator:
        async for message in iterator:
            taken.append(message)
            if len(taken) == n:
                break
    return taken


class Spy:
    """Records each basic.ack the coalescer sends on a channel."""

    def __init__(self, channel: Any) -> None:
        self.sent: list[tuple[int, bool]] = []
        self._send = channel.basic_ack
        channel.basic_ack = self

    async def frames(self) -> list[tuple[int, bool]]:
        return self.sent

    async def __call__(self, tag: int, multiple: bool = False) -> None:
        self.sent.append((tag, multiple))
        await self._send(tag, multiple=multiple)


@asynccontextmanager
async def delivered(
    name: str, n: int, *, prefetch: int
) -> AsyncIterator[tuple[list[int], list[Callable[[], Awaitable[None]]], Acks, Spy]]:
    """n deliveries taken off a fresh queue on one channel: their tags, their acks (an Acks
    of the given prefetch) and the spy on what the acks write. The channel closes at the end:
    what was not acked goes back to the queue."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=max(prefetch, n))
        deliveries = await take(await fill(channel, name, n), n)
        acks, raw = Acks(prefetch=prefetch), deliveries[0].channel
        spy = Spy(raw)
        tags = [d.delivery_tag for d in deliveries]
        yield tags, [acks.delivered(raw, tag) for tag in tags], acks, spy  # type: ignore[arg-type]
        await channel.close()


async def left_in(name: str) -> int:
    """Messages ready in the queue once every consumer channel is closed (unacked requeued)."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            declared = await channel.declare_queue(name, passive=True)
            count = declared.declaration_result.message_count or 0
            if count or asyncio.get_running_loop().time() > deadline:
                return count
            await asyncio.sleep(0.05)  # the requeue follows the close


async def test_acks_asked_together_go_as_one_frame(
    queue_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backend.acks, "ACK_WINDOW_SECONDS", 0.2)
    async with delivered(queue_name, 20, prefetch=100) as (tags, ack_of, _, spy):
        for ack in reversed(ack_of):
            await ack()  # queued: returns before anything is written
        assert spy.sent == []
        await eventually(spy.frames)
        assert spy.sent == [(tags[-1], True)]
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue_name, passive=True)
        assert declared.declaration_result.message_count == 0  # all 20 acked


async def test_a_delivery_not_yet_asked_for_is_never_acked(queue_name: str) -> None:
    async with delivered(queue_name, 5, prefetch=100) as (tags, ack_of, acks, spy):
        first, second, third, *_ = ack_of
        await second()
        await third()  # the first is still being marked
        await acks.drain()
        assert spy.sent == [(tags[1], False), (tags[2], False)]  # one by one, not multiple
        await first()
        await acks.drain()
        assert spy.sent[-1] == (tags[0], True)  # the prefix now ends at the first
    # The fourth and fifth were never asked for: back in the queue, nothing else.
    assert await left_in(queue_name) == 2


async def test_half_the_prefetch_window_waiting_is_written_at_once(
    queue_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The acks are not held for the whole window when half the prefetch waits for them:
    RabbitMQ sends no more deliveries than the prefetch allows unacked."""
    monkeypatch.setattr(backend.acks, "ACK_WINDOW_SECONDS", 30)
    async with delivered(queue_name, 10, prefetch=10) as (tags, ack_of, acks, spy):
        for ack in ack_of[:4]:
            await ack()
        await ack_of[4]()  # the fifth: half of 10, written without waiting for the window
        await eventually(spy.frames, timeout=5)
        assert spy.sent == [(tags[4], True)]
        for ack in ack_of[5:]:
            await ack()
        await acks.drain()
        assert spy.sent[-1] == (tags[-1], True)
