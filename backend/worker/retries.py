"""Retries of a failed run: taskiq's SmartRetryMiddleware re-sends the message with the same
task id after an exponential backoff, while the attempt is under the `max_retries` label
(which backend.services.runs.labels_for sets to the config's max_retries + 1 attempts).

The backoff settings are read here only: the middleware uses them, and so does the deadline
a run keeps in flight between two attempts.
"""

import time

from taskiq import SmartRetryMiddleware

from backend.config import Settings


def retry_middleware(settings: Settings) -> SmartRetryMiddleware:
    return SmartRetryMiddleware(
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
