"""Cancelling runs in this worker: the task calls it runs, and the loop that stops the ones
asked to stop.

A cancel (backend/services/cancels.py, or a newer run under `cancel_other`) sets `cancel` on
the run's live entry in Redis. Every `cancel_poll_seconds` this worker reads that field for
all the runs it executes, in one round trip, and cancels the task of each one asked: its
coroutine gets CancelledError, and the run ends as `RunCancelled`, recorded like any failure.

Why polling a field, not a pub/sub channel: the field is the run's state itself, so a cancel
asked while the run was starting here, before its task existed, or while this worker's Redis
connection was down, is still found at the next poll; a published message would be lost
then. The cost is one pipelined read per poll per worker with runs; the bound is the poll
interval (0.5 s by default), inside the 2 seconds promised.
"""

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from backend.resources import Resources
from backend.services.redis import timeout as live_runs

logger = logging.getLogger(__name__)

T = TypeVar("T")


class RunCancelled(Exception):
    """A run stopped on request; the message is its record's error (`Cancelled by ...`)."""


@dataclass
class _Running:
    task: "asyncio.Task[Any]"
    reason: str | None = None


class RunningRuns:
    """The task calls this worker executes, each cancellable by its task id."""

    def __init__(self, resources: Resources, *, poll_seconds: float) -> None:
        self._resources = resources
        self._poll_seconds = poll_seconds
        self._runs: dict[str, _Running] = {}

    async def run(self, task_id: str, call: Coroutine[Any, Any, T]) -> T:
        """Run the task's coroutine in its own asyncio task, so a cancel stops only it (the
        recording middleware around it still records the run); raises RunCancelled then."""
        entry = _Running(asyncio.create_task(call))
        self._runs[task_id] = entry
        try:
            result = await entry.task
        except asyncio.CancelledError:
            if entry.reason is not None and not _cancelled_from_outside():
                raise RunCancelled(entry.reason) from None
            raise  # the run's timeout, or the worker shutting down
        finally:
            self._runs.pop(task_id, None)
        if entry.reason is not None:
            raise RunCancelled(entry.reason)  # the task caught the cancel and returned
        return result

    async def poll_once(self) -> int:
        """Cancel the runs asked to stop; returns how many this poll cancelled."""
        if not self._runs:
            return 0
        asked = await live_runs.cancel_requests(self._resources.redis, list(self._runs))
        cancelled = 0
        for task_id, reason in asked.items():
            entry = self._runs.get(task_id)
            if entry is None or entry.reason is not None:
                continue  # ended meanwhile, or cancelled at an earlier poll
            entry.reason = reason
            entry.task.cancel(reason)
            cancelled += 1
            logger.info("run %s cancelled: %s", task_id, reason)
        return cancelled

    async def poll_forever(self) -> None:
        while True:
            try:
                await self.poll_once()
            except Exception:
                # The loop's boundary: a Redis outage must not end it; the cancel stays
                # asked in Redis and is found by a later poll.
                logger.exception("polling for cancelled runs failed; retrying")
            await asyncio.sleep(self._poll_seconds)


def _cancelled_from_outside() -> bool:
    """Whether the caller itself is being cancelled (timeout, shutdown), not just the call."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
