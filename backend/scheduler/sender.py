"""Sending a due fire: taskiq's TaskiqScheduler, with a failed send retried, not lost."""

import asyncio
import itertools
import logging
from typing import Any

from taskiq import ScheduledTask, ScheduleSource, TaskiqScheduler
from taskiq.exceptions import ScheduledTaskCancelledError
from taskiq.kicker import AsyncKicker

from backend.scheduler.source import TaskhubScheduleSource

logger = logging.getLogger(__name__)

RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 15.0)  # then every 15 s until the grace period ends


class TaskhubScheduler(TaskiqScheduler):
    """taskiq's on_ready, except that a failed send is not lost: the claim is given back, a
    `send_failed` event recorded, and the send retried (claim first, so a pause in between
    wins) while the fire is younger than the grace period."""

    async def on_ready(self, source: ScheduleSource, task: ScheduledTask) -> None:
        assert isinstance(source, TaskhubScheduleSource)
        for attempt in itertools.count():
            try:
                await source.pre_send(task)
            except ScheduledTaskCancelledError:
                logger.info("fire %s of %s cancelled", task.schedule_id, task.task_name)
                return
            try:
                await self._send(task)
            except Exception as exc:  # any publish error: record it and retry, never drop it
                delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
                if not await source.send_failed(task, exc, retry_in=delay):
                    return
                await asyncio.sleep(delay)
                continue
            await source.post_send(task)
            return

    async def _send(self, task: ScheduledTask) -> None:
        kicker: AsyncKicker[Any, Any] = AsyncKicker(task.task_name, self.broker, task.labels)
        await (
            kicker.with_labels(schedule_id=task.schedule_id)
            .with_task_id(task_id=task.task_id)
            .kiq(*task.args, **task.kwargs)
        )
