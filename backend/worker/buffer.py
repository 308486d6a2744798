"""The worker's record buffer: endings gathered and written in batches, retried until they
land (see backend/worker/records.py for why no record is lost)."""

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.resources import Resources
from backend.worker.records import Ending, clear_live, write_rows

logger = logging.getLogger(__name__)

T = TypeVar("T")


def _is_bad_row(exc: BaseException) -> bool:
    """PostgreSQL refused a value (say a NUL character in a JSON string), not a failure."""
    return isinstance(exc, (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError))


class RecordBuffer:
    """Gathers the worker's endings and writes them in batches, retrying until they land.

    `add` returns once the ending is buffered; it waits only while `max_pending` endings
    are not yet written (PostgreSQL down), which stops the worker taking more runs.
    """

    def __init__(
        self,
        resources: Resources,
        *,
        flush_seconds: float,
        max_batch: int,
        max_pending: int,
        retry_max_seconds: float,
    ) -> None:
        self._resources = resources
        self._flush_seconds = flush_seconds
        self._max_batch = max_batch
        self._retry_max_seconds = retry_max_seconds
        self._buffer: list[Ending] = []
        self._ready = asyncio.Event()  # set while the buffer holds endings
        self._room = asyncio.Semaphore(max_pending)
        self._closing = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        # The buffer's own connection, held between batches: one round trip per batch.
        self._connection: AsyncConnection | None = None

    def start(self) -> None:
        self._flusher = asyncio.create_task(self._flush_forever(), name="record-buffer")
        self._flusher.add_done_callback(_report_stop)

    async def add(self, ending: Ending) -> None:
        if self._flusher is None or self._flusher.done():
            raise RuntimeError("the record buffer is not running")
        await self._room.acquire()
        self._buffer.append(ending)
        self._ready.set()

    async def close(self, timeout: float) -> None:
        """Write what is buffered, retrying for up to `timeout` seconds.

        Endings still unwritten then stay in flight in Redis: the reaper records them as lost.
        """
        if self._flusher is None:
            return
        self._closing.set()
        self._ready.set()
        done, _ = await asyncio.wait({self._flusher}, timeout=timeout)
        if not done:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            logger.error(
                "%d run records not written at shutdown; the reaper will record them as lost",
                len(self._buffer),
            )
            await self._drop_connection()
            return
        await self._close_connection()

    async def _close_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()

    async def _flush_forever(self) -> None:
        while True:
            await self._ready.wait()
            if not self._closing.is_set():
                # Let a batch gather, unless shutdown asks for it now.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), self._flush_seconds)
            while self._buffer:
                batch = self._buffer[: self._max_batch]
                await self._write(batch)
                # Only now: a batch leaves the buffer once it is written, so a cancelled
                # shutdown knows what is left.
                del self._buffer[: len(batch)]
                for _ in batch:
                    self._room.release()
            self._ready.clear()
            if self._closing.is_set():
                return

    async def _write(self, batch: list[Ending]) -> None:
        try:
            await self._write_batch(batch)
        except _BadRows:
            # A value in the batch was refused: write each alone, so only its own run waits.
            for ending in batch:
                try:
                    await self._write_batch([ending])
                except _BadRows as exc:
                    # Left in flight: the reaper records it as lost after its deadline.
                    logger.error(
                        "record of run %s refused by the database (%s); left to the reaper",
                        ending.outcome.task_id,
                        exc.__cause__,
                    )

    async def _write_batch(self, batch: list[Ending]) -> None:
        inserted = await self._retrying(functools.partial(self._write_rows, batch), batch)
        await self._retrying(functools.partial(clear_live, self._resources, batch, inserted), batch)

    async def _write_rows(self, batch: list[Ending]) -> set[str]:
        if self._connection is None:
            self._connection = await self._resources.engine.connect()
        try:
            return await write_rows(self._connection, batch)
        except Exception as exc:
            if not _is_bad_row(exc):
                await self._drop_connection()  # broken, most likely: the retry reconnects
            raise

    async def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            # Closing a connection that already failed may fail again; it is gone either way.
            with contextlib.suppress(Exception):
                await connection.invalidate()
                await connection.close()

    async def _retrying(self, step: Callable[[], Awaitable[T]], batch: list[Ending]) -> T:
        """Run a step until it succeeds; a refused value is raised as _BadRows instead."""
        delay = 0.05
        started = time.monotonic()
        while True:
            try:
                return await step()
            except Exception as exc:
                if _is_bad_row(exc):
                    raise _BadRows from exc
                # A store outage: keep the records (they stay in flight meanwhile) and retry.
                logger.warning(
                    "writing %d run records failed (%s: %s); retrying in %.2fs (%.0fs so far)",
                    len(batch),
                    type(exc).__name__,
                    exc,
                    delay,
                    time.monotonic() - started,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry_max_seconds)


def _report_stop(flusher: "asyncio.Task[None]") -> None:
    # Only a bug ends the flusher early (store errors are retried); say so at once, since
    # from then on `add` refuses endings and their runs are left to the reaper.
    if not flusher.cancelled() and (error := flusher.exception()) is not None:
        logger.error("the record buffer stopped", exc_info=error)


class _BadRows(Exception):
    """A batch's statement was refused for one of its values."""
