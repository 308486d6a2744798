"""Sending a due fire: taskiq's TaskiqScheduler, with a failed send retried, not lost, and a
shutdown that waits for the sends already under way."""

import asyncio
import itertools
import logging
import signal
from typing import Any

from taskiq import AsyncBroker, ScheduledTask, ScheduleSource, TaskiqScheduler
from taskiq.exceptions import ScheduledTaskCancelledError

from backend import gc_tuning, publisher
from backend.scheduler.source import CLAIM_BATCH_SIZE, ClaimHeld, TaskhubScheduleSource

logger = logging.getLogger(__name__)

RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 15.0)  # then every 15 s until the grace period ends
SHUTDOWN_WAIT = 12.0  # seconds a shutdown waits for sends in flight (bookkeeping: 10 s at most)
LEASE_MARGIN = 0.05  # look at a held claim this long after its lease ends (Redis's clock)
# Fires claimed and sent at once. taskiq starts a boundary's every fire together; unbounded,
# each builds its message at once and waits in the publisher for room among its 1,000
# unconfirmed publishes: at 10,000 fires some 30 MiB of messages held at the burst's peak,
# kept by the process as RSS. Two claim batches' worth keeps the publisher's window full.
MAX_SENDING = 2 * CLAIM_BATCH_SIZE


class TaskhubScheduler(TaskiqScheduler):
    """taskiq's on_ready, except that a failed send is not lost: the claim is given back, a
    `send_failed` event recorded, and the send retried (claim first, so a pause in between
    wins) while the fire is younger than the grace period. Nor is a fire whose claim another
    replica holds: it is looked at again when that claim's lease ends, and sent from here if
    its claimer died before sending it.

    On shutdown (SIGINT, or SIGTERM, which taskiq's CLI would not handle) the sends taskiq's
    loop started are waited for: from claim to bookkeeping each runs in its own asyncio task,
    which the cancelled loop leaves running and asyncio.run would cancel once the sources are
    shut down, with the fire claimed or sent but not recorded."""

    def __init__(self, broker: AsyncBroker, sources: list[ScheduleSource]) -> None:
        super().__init__(broker=broker, sources=sources)
        self._in_flight: set[asyncio.Task[Any]] = set()  # on_ready calls claiming or sending
        self._stopping = False
        self._sending = asyncio.Semaphore(MAX_SENDING)

    async def startup(self) -> None:
        await super().startup()
        main = asyncio.current_task()  # taskiq's run_scheduler: cancelled, it shuts down
        if main is not None:
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
        gc_tuning.tune(gc_tuning.SCHEDULER_THRESHOLDS)

    async def shutdown(self) -> None:
        self._stopping = True  # a send waiting out its retry delay (claim given back) stops
        if self._in_flight:
            _, late = await asyncio.wait(set(self._in_flight), timeout=SHUTDOWN_WAIT)
            if late:
                logger.warning("shutting down with %d sends still in flight", len(late))
        await super().shutdown()

    async def on_ready(self, source: ScheduleSource, task: ScheduledTask) -> None:
        assert isinstance(source, TaskhubScheduleSource)
        current = asyncio.current_task()
        assert current is not None
        for attempt in itertools.count():
            if self._stopping:
                return
            self._in_flight.add(current)
            try:
                # The claim and the send only, not the bookkeeping (it waits for the burst to
                # pass); the claim's coroutine is made once a place is free: a fire waiting
                # for one holds little.
                async with self._sending:
                    retry_in, sent = await self._claim_and_send(source, task, attempt)
                if sent:
                    await source.post_send(task)
            finally:
                self._in_flight.discard(current)
            if retry_in is None:
                return
            await asyncio.sleep(retry_in)

    async def _claim_and_send(
        self, source: TaskhubScheduleSource, task: ScheduledTask, attempt: int
    ) -> tuple[float | None, bool]:
        """Claim and send the fire: (the delay before the next try, or None if no other try is
        to be made; whether it was sent)."""
        try:
            await source.pre_send(task)
        except ClaimHeld as held:
            retry_in = held.retry_in + LEASE_MARGIN
            if source.within_grace(task, after=retry_in):
                return retry_in, False
            logger.warning(
                "fire %s: claimed elsewhere and unsent until past the grace; reconcile "
                "settles it", task.schedule_id,
            )  # fmt: skip
            return None, False
        except ScheduledTaskCancelledError:
            logger.info("fire %s of %s cancelled", task.schedule_id, task.task_name)
            return None, False
        try:
            await self._send(task)
        except Exception as exc:  # any publish error: record it and retry, never drop it
            delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
            return (delay if await source.send_failed(task, exc, retry_in=delay) else None), False
        return None, True

    async def _send(self, task: ScheduledTask) -> None:
        assert task.task_id is not None  # every entry names its fire's task id
        await publisher.send(
            self.broker, task_name=task.task_name, task_id=task.task_id,
            labels={**task.labels, "schedule_id": task.schedule_id}, kwargs=task.kwargs,
        )  # fmt: skip
