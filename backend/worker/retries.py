"""Retries of a failed run: taskiq's SmartRetryMiddleware re-sends the message with the same
task id after an exponential backoff, while the attempt is under the `max_retries` label
(which backend.services.runs.labels_for sets to the config's max_retries + 1 attempts).

The backoff settings are read here only: the middleware uses them, and so does the deadline
a run keeps in flight between two attempts.
"""

import time
from typing import Any

from taskiq import SmartRetryMiddleware, TaskiqMessage, TaskiqResult

from backend.config import Settings
from backend.worker.cancels import RunCancelled


class RetryMiddleware(SmartRetryMiddleware):
    """SmartRetryMiddleware that leaves a cancelled run alone: a cancel ends the run."""

    async def on_error(
        self, message: TaskiqMessage, result: TaskiqResult[Any], exception: BaseException
    ) -> None:
        if isinstance(exception, RunCancelled):
            return
        await super().on_error(message, result, exception)


def retry_middleware(settings: Settings) -> SmartRetryMiddleware:
    return RetryMiddleware(
        default_retry_count=1,  # runs always carry `max_retries`; without it, no retry
        default_delay=settings.retry_delay_seconds,
        use_delay_exponent=True,
        max_delay_exponent=settings.retry_max_delay_seconds,
    )


def between_attempts_deadline(settings: Settings, *, run_timeout: float) -> float:
    """When a run waiting for its next attempt counts as lost: after the longest backoff,
    the next attempt's timeout and the grace period, however long the backoff."""
    return (
        time.time()
        + settings.retry_max_delay_seconds
        + run_timeout
        + settings.lost_run_grace_seconds
    )
