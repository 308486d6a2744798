"""Gather calls made close together into one batch: one Redis round trip for many.

The taskiq scheduler sends every due task in its own asyncio task, all created in one loop
iteration, and a worker takes its prefetched deliveries each in its own task; each calls
`submit`, and the first one starts a flusher that runs once those tasks have all submitted,
then again for whatever arrived while it ran.

With `quiet`, each batch waits until no item arrived for that long (at most `max_wait`, and
no longer once `max_size` items wait): work that can wait (bookkeeping after a send) then
leaves the CPU to a burst of sends, and calls that arrive a little apart (a worker's
deliveries, one socket read each) still share a round trip.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    def __init__(
        self,
        run: Callable[[list[T]], Awaitable[list[R]]],
        *,
        max_size: int,
        quiet: float = 0.0,
        max_wait: float = 0.0,
    ) -> None:
        self._run = run
        self._max_size = max_size
        self._quiet = quiet
        self._max_wait = max_wait
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._full: asyncio.Future[None] | None = None  # ends a quiet wait once max_size wait

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        elif self._full is not None and len(self._pending) >= self._max_size:
            _wake(self._full)
        return await future

    async def drain(self) -> None:
        """Wait until every item submitted so far has been run (on shutdown)."""
        while self._flusher is not None:
            await asyncio.shield(self._flusher)

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # the sends started in the same tick submit first
        try:
            while self._pending:
                await self._settle()
                batch = self._pending[: self._max_size]
                del self._pending[: self._max_size]
                await self._run_batch(batch)
        finally:
            self._flusher = None

    async def _settle(self) -> None:
        if not self._quiet:
            return
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self._max_wait
        seen = -1
        while (waiting := len(self._pending)) != seen and waiting < self._max_size:
            if loop.time() >= give_up:
                return
            seen = waiting
            self._full = loop.create_future()
            timer = loop.call_later(self._quiet, _wake, self._full)
            try:
                await self._full
            finally:
                timer.cancel()
                self._full = None

    async def _run_batch(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._run([item for item, _ in batch])
        except BaseException as exc:  # every caller in the batch gets the error
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
