"""The worker's acks, coalesced: acks asked for together go out as one `basic.ack` frame.

taskiq acks each delivery on its own (a Taskhub worker acks on receipt, once the run is
marked in flight), and aiormq writes each ack in a socket write of its own and waits for it
to drain: per run, about as costly as the run's own bookkeeping. Here the acks asked for in
one loop turn are sent together: `multiple=True` on the last of the oldest deliveries that
were all asked to be acked, so one frame acks them all.

Never acked early: `multiple` acks every unacked delivery up to its tag on that channel, so
it covers only a prefix of deliveries each of which was asked to be acked. A delivery not
yet asked for (its in-flight mark still being written, or acked later by its own ack type)
holds back no other: the deliveries after it that are asked for are acked one by one. Each
channel keeps its own order (delivery tags are per channel, and start again when a robust
channel reconnects).
"""

import asyncio
import weakref
from collections import deque
from collections.abc import Awaitable, Callable

from aiormq.abc import AbstractChannel


class ChannelAcks:
    """The acks of one channel's deliveries."""

    def __init__(self, channel: AbstractChannel) -> None:
        self._channel = channel
        self._unacked: deque[int] = deque()  # delivery tags, in delivery order
        self._acked_alone: set[int] = set()  # acked one by one, still in _unacked
        self._asked: dict[int, asyncio.Future[None]] = {}
        self._flusher: asyncio.Task[None] | None = None

    def delivered(self, tag: int) -> Callable[[], Awaitable[None]]:
        """Note a delivery; returns its ack."""
        self._unacked.append(tag)

        async def ack() -> None:
            await self.ack(tag)

        return ack

    async def ack(self, tag: int) -> None:
        future = asyncio.get_running_loop().create_future()
        self._asked[tag] = future
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # the acks asked for in this loop turn go together
        try:
            while self._asked:
                asked, self._asked = self._asked, {}
                try:
                    await self._send(set(asked))
                except BaseException as exc:
                    for future in asked.values():
                        if not future.done():
                            future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for future in asked.values():
                    if not future.done():
                        future.set_result(None)
        finally:
            self._flusher = None

    async def _send(self, asked: set[int]) -> None:
        last = None
        while self._unacked and (
            self._unacked[0] in asked or self._unacked[0] in self._acked_alone
        ):
            tag = self._unacked.popleft()
            if tag in self._acked_alone:
                self._acked_alone.discard(tag)
            else:
                asked.discard(tag)
                last = tag
        if last is not None:
            await self._channel.basic_ack(last, multiple=True)
        for tag in sorted(asked):  # behind a delivery not asked for yet: each on its own
            await self._channel.basic_ack(tag)
            self._acked_alone.add(tag)


class Acks:
    """The coalesced acks of every channel a worker consumes from."""

    def __init__(self) -> None:
        self._channels: weakref.WeakKeyDictionary[AbstractChannel, ChannelAcks] = (
            weakref.WeakKeyDictionary()
        )

    def delivered(self, channel: AbstractChannel, tag: int) -> Callable[[], Awaitable[None]]:
        acks = self._channels.get(channel)
        if acks is None:
            acks = self._channels[channel] = ChannelAcks(channel)
        return acks.delivered(tag)
