"""The one write path of execution records, and the worker's batching buffer in front of it.

finish(stores, endings)  writes the runs' rows in ONE `INSERT ... ON CONFLICT (task_id) DO
                         NOTHING` and commits; then, in one Redis transaction, drops the runs
                         from the in-flight set and appends the history event of each run
                         whose row this call inserted (a duplicate delivery or a reaper that
                         lost the race appends nothing). The reaper calls it directly.
RecordBuffer             the worker's endings go through it: it gathers them for
                         `record_flush_seconds` and writes each gathered batch with the two
                         steps of `finish`, retrying each with backoff until it succeeds.

Why no record is lost. A run stays in the in-flight set (Redis) until its row is committed.
While PostgreSQL is unreachable the buffer keeps the endings and retries; a worker killed
before its buffer was written leaves the runs in flight, and the reaper records them as lost
after their deadline: still exactly one record each. On shutdown the buffer is flushed.
"""

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

from backend import metrics
from backend.services import executions
from backend.services.executions import Outcome
from backend.services.redis import history
from backend.services.redis import timeout as live_runs
from backend.stores import Stores

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Ending:
    """A finished run: its record, and the history event appended if the record is new."""

    outcome: Outcome
    event: str
    task_type: str  # for the metrics: outcomes are counted per task type


async def write_rows(connection: AsyncConnection, endings: Sequence[Ending]) -> set[str]:
    """Step 1: insert the records (one statement, committed); the task ids it inserted."""
    raw = await connection.get_raw_connection()
    outcomes = [e.outcome for e in endings]
    return await executions.record_many(raw.driver_connection, outcomes=outcomes)


async def clear_live(stores: Stores, endings: Sequence[Ending], inserted: set[str]) -> None:
    """Step 2, after the commit: leave the in-flight set; history only for new records.

    One Redis transaction of a few commands per config, whatever the number of runs.
    """
    events: dict[int, list[tuple[str, dict[str, Any]]]] = {}
    appended: set[str] = set()  # the same run twice in one batch was inserted once
    for ending in endings:
        outcome = ending.outcome
        if outcome.config_id is None or outcome.task_id not in inserted:
            continue
        if outcome.task_id in appended:
            continue
        appended.add(outcome.task_id)
        data = {
            "task_id": outcome.task_id,
            "attempts": outcome.attempts,
            "error": outcome.error_message,
        }
        events.setdefault(outcome.config_id, []).append((ending.event, data))
    async with stores.redis.pipeline(transaction=True) as pipe:
        runs = [(e.outcome.task_id, e.outcome.config_id) for e in endings]
        live_runs.queue_finish_many(pipe, runs)
        for config_id, config_events in events.items():
            history.queue_append_many(pipe, config_id, config_events)
        await pipe.execute()
    _count(endings, inserted)


def _count(endings: Sequence[Ending], inserted: set[str]) -> None:
    """Each run's outcome once: only the write that inserted its record counts it."""
    counted: set[str] = set()
    for ending in endings:
        outcome = ending.outcome
        if outcome.task_id not in inserted or outcome.task_id in counted:
            continue
        counted.add(outcome.task_id)
        duration = None
        if ending.event != "lost":  # a lost run's end is when it was found, not when it ended
            duration = (outcome.completed_at - outcome.started_at).total_seconds()
        metrics.run_finished(ending.task_type, outcome=ending.event, duration=duration)


async def finish(stores: Stores, endings: Sequence[Ending]) -> set[str]:
    """Record the runs once each; returns the task ids whose record this call inserted."""
    async with stores.engine.connect() as connection:
        inserted = await write_rows(connection, endings)
    await clear_live(stores, endings, inserted)
    return inserted


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
        stores: Stores,
        *,
        flush_seconds: float,
        max_batch: int,
        max_pending: int,
        retry_max_seconds: float,
    ) -> None:
        self._stores = stores
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
        await self._retrying(functools.partial(clear_live, self._stores, batch, inserted), batch)

    async def _write_rows(self, batch: list[Ending]) -> set[str]:
        if self._connection is None:
            self._connection = await self._stores.engine.connect()
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
