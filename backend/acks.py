"""A worker's acks, written together: one `basic.ack` frame for the acks of a few runs.

taskiq acks each delivery on its own, and aiormq writes each ack in a socket write of its
own and waits for it: on these machines that write was a fifth of a run's worker CPU. Here
an ack is queued and the run goes on at once; the acks queued within ACK_WINDOW_SECONDS (or
until half the prefetch window waits) go out as one frame: `multiple=True` on the last of the
oldest deliveries that were all asked to be acked.

Why no guarantee changes. A Taskhub worker acks a delivery once its run is marked in flight
and its attempt claimed (backend/worker/recording.py); an ack written a few milliseconds
later changes only what a worker killed in those milliseconds leaves behind: the delivery
comes again, and its copy finds the attempt claimed and is dropped, as any redelivery after
the mark is. Never acked early: `multiple` acks every unacked delivery up to its tag on that
channel, so it covers only a prefix of deliveries that were all asked to be acked; one not
asked for yet holds back no other (the later ones asked for are acked one by one). Each
channel keeps its own order: delivery tags are per channel, and start again when a robust
channel reconnects.
"""

import asyncio
import contextlib
import logging
import weakref
from collections import deque
from collections.abc import Awaitable, Callable

from aiormq.abc import AbstractChannel

logger = logging.getLogger(__name__)

ACK_WINDOW_SECONDS = 0.002


class ChannelAcks:
    """The acks of one channel's deliveries."""

    def __init__(self, channel: AbstractChannel, *, flush_at: int) -> None:
        self._channel = channel
        self._flush_at = flush_at
        # Delivery tags not acked yet, in delivery order: at most the prefetch window.
        self._unacked: deque[int] = deque()
        self._asked: set[int] = set()
        self._enough = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None

    def delivered(self, tag: int) -> Callable[[], Awaitable[None]]:
        """Note a delivery; returns its ack."""
        self._unacked.append(tag)

        async def ack() -> None:
            self.ask(tag)

        return ack

    def ask(self, tag: int) -> None:
        self._asked.add(tag)
        if len(self._asked) >= self._flush_at:
            self._enough.set()
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())

    async def drain(self) -> None:
        if self._flusher is not None:
            self._enough.set()
            await asyncio.shield(self._flusher)

    async def _flush(self) -> None:
        try:
            while self._asked:
                with contextlib.suppress(TimeoutError):  # the window ends, or enough wait
                    await asyncio.wait_for(self._enough.wait(), ACK_WINDOW_SECONDS)
                asked, self._asked = self._asked, set()
                self._enough.clear()
                await self._send(asked)
        except Exception:
            # The channel is gone: RabbitMQ gives its unacked deliveries to a consumer again,
            # and their copies find their attempts claimed.
            logger.warning("acks not written: their deliveries come again", exc_info=True)
            self._asked.clear()
        finally:
            self._flusher = None

    async def _send(self, asked: set[int]) -> None:
        last = None
        while self._unacked and self._unacked[0] in asked:
            last = self._unacked.popleft()
            asked.discard(last)
        if last is not None:
            await self._channel.basic_ack(last, multiple=True)
        for tag in sorted(asked):  # behind a delivery not asked for yet: each on its own
            await self._channel.basic_ack(tag)
            self._unacked.remove(tag)


class Acks:
    """The acks of every channel a worker consumes from."""

    def __init__(self, *, prefetch: int) -> None:
        self._flush_at = max(1, prefetch // 2)  # so deliveries keep coming meanwhile
        self._channels: weakref.WeakKeyDictionary[AbstractChannel, ChannelAcks] = (
            weakref.WeakKeyDictionary()
        )

    def delivered(self, channel: AbstractChannel, tag: int) -> Callable[[], Awaitable[None]]:
        acks = self._channels.get(channel)
        if acks is None:
            acks = self._channels[channel] = ChannelAcks(channel, flush_at=self._flush_at)
        return acks.delivered(tag)

    async def drain(self) -> None:
        """Write the acks still queued (on shutdown)."""
        for acks in list(self._channels.values()):
            await acks.drain()
