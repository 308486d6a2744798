"""The one recording path: a taskiq middleware that turns every run into exactly one record.

pre_execute   marks the run in flight and claims its attempt for execution, in one script
              (the deliveries taken together: one pipeline): a second delivery of an attempt
              that started already is dropped (`duplicate`), so is a run cancelled before
              it started; an overlapping scheduled run meets
              its config's overlap policy: refused (`skipped`), kept waiting (`buffered`,
              buffer_one), or started after cancelling the runs in flight (cancel_other);
              while Redis is unreachable (a Sentinel failover) the mark is retried: the
              message is acked already
on_error      notes a failed attempt the retry middleware has re-sent (`retrying`)
post_execute  hands the run's ending to the worker's RecordBuffer (backend/worker/buffer.py), which
              writes its one `task_executions` row within milliseconds, batched with other
              runs' rows, then drops it from the in-flight set and appends `succeeded` /
              `failed` / `timed_out` to the config's history

It must be listed BEFORE SmartRetryMiddleware: taskiq calls on_error hooks in reverse order, so
ours then runs after the retry middleware has decided, and a re-sent attempt shows up as its
result's error replaced by NoResultError (`no_result_on_retry`). Task functions know nothing
of this.
"""

import functools
import logging
import time
from datetime import UTC, datetime
from typing import Any

from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult
from taskiq.exceptions import NoResultError

from backend import metrics, redis_retry
from backend.batching import Batcher
from backend.config import get_settings
from backend.models import TRIGGERS, Trigger
from backend.resources import Resources
from backend.services.redis import history
from backend.services.redis import timeout as live_runs
from backend.tasks import context as run_context
from backend.tasks.registry import SKIPPED, is_skipped
from backend.worker.buffer import RecordBuffer
from backend.worker.cancels import RunCancelled
from backend.worker.records import Ending, Outcome
from backend.worker.results import cap_result, describe_error
from backend.worker.retries import between_attempts_deadline

logger = logging.getLogger(__name__)

# Labels this middleware sets on a message while it runs. The first two travel on with the
# retry middleware's copy of the message: a retried run keeps the start of its first attempt.
STARTED_AT = "taskhub_started_at"
ATTEMPT = "taskhub_attempt"

MAX_TIMEOUT_SECONDS = 86400.0  # for messages sent without a `timeout` label
# Deliveries reach the worker one socket read apart, so the marks of one loop turn are one or
# two: a batch of marks waits until no other came for START_QUIET (START_MAX_WAIT at most), so
# a few share a round trip; it waits no longer once the whole prefetch window waits, as no
# other delivery can come before an ack.
START_QUIET, START_MAX_WAIT = 0.001, 0.002

# The error of a run cancelled because a newer scheduled run of its config came in.
CANCELLED_BY_OVERLAP = "Cancelled by overlap policy cancel_other"
_OVERLAP_POLICIES: frozenset[str] = frozenset({"skip", "buffer_one", "cancel_other"})


def _overlap(message: TaskiqMessage, trigger: Trigger, attempt: int) -> live_runs.Overlap:
    """Only a scheduled (or backfill) run's first attempt meets its overlap policy: a retry
    continues an admitted run, and manual runs always run. A backfill carries its own
    overlap_policy label."""
    policy = str(message.labels.get("overlap_policy", "allow"))
    if trigger not in ("scheduled", "backfill") or attempt != 1 or policy not in _OVERLAP_POLICIES:
        return "allow"
    return policy  # type: ignore[return-value]


def _config_id(message: TaskiqMessage) -> int | None:
    value = message.labels.get("config_id")
    return int(value) if value not in (None, "") else None


def _trigger(message: TaskiqMessage) -> Trigger:
    trigger = str(message.labels.get("trigger", "manual"))
    return trigger if trigger in TRIGGERS else "manual"  # type: ignore[return-value]


def _timeout(message: TaskiqMessage) -> float | None:
    value = message.labels.get("timeout")
    return float(value) if value not in (None, "") else None


def _timed_out(message: TaskiqMessage, result: TaskiqResult[Any]) -> bool:
    # anyio.fail_after (taskiq's `timeout` label) raises a bare TimeoutError at the limit.
    limit = _timeout(message)
    return (
        isinstance(result.error, TimeoutError)
        and limit is not None
        and result.execution_time >= limit - 0.01
    )


class RecordingMiddleware(TaskiqMiddleware):
    @property
    def resources(self) -> Resources:
        return self.broker.state.resources  # opened in the worker startup event

    @property
    def records(self) -> RecordBuffer:
        return self.broker.state.records  # started in the worker startup event

    @functools.cached_property
    def starts(self) -> Batcher[live_runs.Start, live_runs.Admission]:
        """The deliveries taken together mark themselves in flight in one round trip."""
        return Batcher(
            lambda attempts: live_runs.start_many(self.resources.redis, attempts),
            max_size=get_settings().worker_prefetch,
            quiet=START_QUIET,
            max_wait=START_MAX_WAIT,
        )

    async def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        settings = get_settings()
        labels = message.labels
        now = time.time()
        attempt = int(labels.get("_retries", 0)) + 1
        config_id = _config_id(message)
        trigger = _trigger(message)
        overlap = _overlap(message, trigger, attempt)
        deadline = now + (_timeout(message) or MAX_TIMEOUT_SECONDS)
        deadline += settings.lost_run_grace_seconds
        start = live_runs.Start(
            task_id=message.task_id,
            config_id=config_id,
            trigger=trigger,
            task_type=message.task_name,
            attempt=attempt,
            scheduled_for=run_context.scheduled_for(labels),
            started_at=float(labels.get(STARTED_AT, now)),
            deadline=deadline,
            overlap=overlap,
            ttl=int(deadline - now) + settings.queued_run_ttl_seconds,
            # buffer_one keeps the delivery itself, to send it again when its turn comes.
            message=message.model_dump_json() if overlap == "buffer_one" else "",
            cancel_message=CANCELLED_BY_OVERLAP if overlap == "cancel_other" else "",
        )
        admission = await redis_retry.while_unreachable(
            self.starts.submit, start, within=settings.redis_outage_wait_seconds
        )
        if admission != "started":
            await self._refuse(message, admission, config_id=config_id, attempt=attempt)
            return message
        if attempt == 1:
            metrics.run_started(message.task_name)
        labels.setdefault(STARTED_AT, now)
        labels[ATTEMPT] = attempt
        return message

    async def _refuse(
        self,
        message: TaskiqMessage,
        admission: live_runs.Admission,
        *,
        config_id: int | None,
        attempt: int,
    ) -> None:
        """The task wrapper will not run it (SKIPPED), and nothing records it: a duplicate's
        first delivery owns the run's one record, a skipped run has none."""
        message.labels[SKIPPED] = admission
        redis = self.resources.redis
        if admission == "cancelled":
            # Its record ("Cancelled by ...") is written by a reaper, from its live entry.
            logger.info(
                "run %s of config %s was cancelled before it started", message.task_id, config_id
            )
            return
        if admission == "buffered":
            if config_id is not None:
                await history.append(
                    redis, config_id, "buffered", task_id=message.task_id,
                    reason="waits for the run of this config in flight (buffer_one)",
                )  # fmt: skip
            logger.info(
                "run %s of config %s waits: overlap (buffer_one)", message.task_id, config_id
            )
            return
        if admission == "duplicate":
            metrics.run_duplicate(message.task_name)
            if config_id is not None:
                await history.append(
                    redis, config_id, "duplicate", task_id=message.task_id, attempt=attempt
                )
            logger.warning(
                "run %s (attempt %d) of config %s delivered again: dropped, not executed",
                message.task_id, attempt, config_id,
            )  # fmt: skip
            return
        metrics.run_skipped(message.task_name)
        if config_id is not None:
            await history.append(
                redis,
                config_id,
                "skipped",
                task_id=message.task_id,
                reason="another run of this config is in flight"
                if message.labels.get("overlap_policy") != "buffer_one"
                else "another run of this config waits already (buffer_one)",
            )
        logger.info("run %s of config %s skipped: overlap", message.task_id, config_id)

    async def on_error(
        self, message: TaskiqMessage, result: TaskiqResult[Any], exception: BaseException
    ) -> None:
        if is_skipped(message) or isinstance(exception, NoResultError):
            return
        if not isinstance(result.error, NoResultError):
            return  # the run ends here: post_execute records it
        settings = get_settings()
        config_id = _config_id(message)
        attempt = int(message.labels[ATTEMPT])
        # Live until the next attempt starts, however long the backoff; then lost if never.
        deadline = between_attempts_deadline(
            settings, run_timeout=_timeout(message) or MAX_TIMEOUT_SECONDS
        )
        requeued = await live_runs.requeue(
            self.resources.redis,
            task_id=message.task_id,
            config_id=config_id,
            attempt=attempt,
            deadline=deadline,
            ttl=int(deadline - time.time()) + settings.queued_run_ttl_seconds,
        )
        if requeued == "cancelled":
            # Cancelled while this attempt ran: the next one will not start; a reaper records it.
            logger.info("run %s cancelled between attempts", message.task_id)
            return
        if config_id is not None:
            await history.append(
                self.resources.redis,
                config_id,
                "retrying",
                task_id=message.task_id,
                attempt=attempt,
                error=describe_error(exception, max_chars=settings.error_max_chars),
            )

    async def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        if is_skipped(message) or isinstance(result.error, NoResultError):
            return  # skipped, or re-sent for another attempt: not the end of the run
        event, value, error = _ending(message, result)
        outcome = Outcome(
            task_id=message.task_id,
            config_id=_config_id(message),
            is_success=event == "succeeded",
            started_at=datetime.fromtimestamp(float(message.labels[STARTED_AT]), UTC),
            completed_at=datetime.now(UTC),
            trigger=_trigger(message),
            attempts=int(message.labels[ATTEMPT]),
            result=value,
            error_message=error,
            scheduled_for=run_context.scheduled_for(message.labels),
        )
        await self.records.add(Ending(outcome=outcome, event=event, task_type=message.task_name))


def _ending(message: TaskiqMessage, result: TaskiqResult[Any]) -> tuple[str, Any, str | None]:
    """The history event, the capped result and the error message of a run's last attempt."""
    settings = get_settings()
    if result.error is None:
        value = cap_result(result.return_value, max_bytes=settings.result_max_bytes)
        return "succeeded", value, None
    if isinstance(result.error, RunCancelled):
        return "cancelled", None, str(result.error)
    if _timed_out(message, result):
        limit = _timeout(message)
        return "timed_out", None, f"TimeoutError: the run exceeded its timeout of {limit:g} s"
    error = describe_error(result.error, max_chars=settings.error_max_chars)
    return "failed", None, error
