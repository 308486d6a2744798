"""The one way runs are sent: by task type name, with the config's parameters and labels.

Used by run now and batch run; a schedule's plan stores `labels_for(config, "scheduled")`
in its fire entries, so the scheduler sends its runs with the same labels.
"""

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from taskiq.exceptions import SendTaskError
from taskiq_aio_pika import AioPikaBroker

from backend import broker as broker_client
from backend import publisher
from backend.config import Settings
from backend.errors import (
    UNAVAILABLE_ERRORS,
    InvalidInput,
    NotFound,
    StoreUnavailable,
    TaskhubError,
    unavailable,
)
from backend.models import TaskConfig, Trigger
from backend.schemas.executions import RunQueued
from backend.services import audit, config_validation
from backend.services.audit import Actor
from backend.services.redis import timeout as live_runs

logger = logging.getLogger(__name__)

_SEND_FAILURES: tuple[type[Exception], ...] = (StoreUnavailable, *UNAVAILABLE_ERRORS)
SEND_CONCURRENCY = 32  # runs of one batch in the broker's hands at once, awaiting confirms


def labels_for(config: TaskConfig, *, trigger: Trigger) -> dict[str, Any]:
    """What the worker needs to know about a run: the worker never reads the config."""
    return {
        "config_id": config.id,
        "trigger": trigger,
        "overlap_policy": config.overlap_policy,
        "priority": config.priority,  # RabbitMQ message priority (the queue has max 9)
        "timeout": config.timeout_seconds,  # taskiq cancels the run after this many seconds
        "retry_on_error": config.max_retries > 0,
        # SmartRetryMiddleware retries while attempt < max_retries: the label counts attempts.
        "max_retries": config.max_retries + 1,
        # Ack after pre_execute has marked the run in flight, before it executes: a killed
        # worker's run is then recorded as lost, never executed twice (README, "Ack mode").
        # On the message, so a worker started without `--ack-type` behaves the same.
        "ack_type": "when_received",
    }


async def send(
    broker: AioPikaBroker,
    *,
    task_name: str,
    task_id: str,
    labels: dict[str, Any],
    parameters: dict[str, Any],
    timeout: float,
) -> None:
    sent = publisher.send(
        broker, task_name=task_name, task_id=task_id, labels=labels, kwargs=parameters
    )
    try:
        await asyncio.wait_for(sent, timeout)
    except SendTaskError as exc:
        raise StoreUnavailable("The message broker is unavailable") from exc


async def kick(
    *,
    broker: AioPikaBroker,
    redis: Redis,
    settings: Settings,
    config: TaskConfig,
    trigger: Trigger,
    parameters: dict[str, Any] | None = None,
    task_id: str | None = None,
    labels: dict[str, Any] | None = None,
) -> RunQueued:
    """Send one run of `config` (with `parameters` instead of its own, if given; under
    `task_id`, else a fresh one; `labels` added to the config's); its `queued` marker is
    removed again if sending fails."""
    if parameters is None:
        run_parameters = config_validation.stored_parameters(config)
    else:
        run_parameters = config_validation.check_parameters(config.task_type, parameters)
    await broker_client.connect(broker, settings.broker_send_timeout_seconds)
    task_id = task_id or uuid.uuid4().hex
    queued_at = datetime.now(UTC)
    await live_runs.mark_queued(
        redis,
        task_id=task_id,
        config_id=config.id,
        trigger=trigger,
        ttl=settings.queued_run_ttl_seconds,
    )
    try:
        await send(
            broker,
            task_name=config.task_type,
            task_id=task_id,
            labels={**labels_for(config, trigger=trigger), **(labels or {})},
            parameters=run_parameters,
            timeout=settings.broker_send_timeout_seconds,
        )
    except BaseException:
        await live_runs.forget(redis, task_id)
        raise
    return RunQueued(task_id=task_id, config_id=config.id, queued_at=queued_at)


async def run_now(
    session: AsyncSession,
    *,
    broker: AioPikaBroker,
    redis: Redis,
    settings: Settings,
    config: TaskConfig,
    actor: Actor,
    parameters: dict[str, Any] | None = None,
) -> RunQueued:
    """Run now by hand; its audit row commits once the run is sent."""
    run = await kick(
        broker=broker, redis=redis, settings=settings, config=config, trigger="manual",
        parameters=parameters,
    )  # fmt: skip
    audit.record(
        session, actor=actor, action="run.now", target_type="config", target_id=config.id,
        target_name=config.name, changes={"task_id": run.task_id, "parameters": parameters},
    )  # fmt: skip
    await session.commit()
    return run


@dataclass(frozen=True)
class BatchItem:
    config_id: int
    run: RunQueued | None = None
    error: TaskhubError | None = None


async def kick_many(
    session: AsyncSession,
    *,
    broker: AioPikaBroker,
    redis: Redis,
    settings: Settings,
    config_ids: list[int],
    actor: Actor,
) -> list[BatchItem]:
    """Send one run per id, in order; an unknown id or unfit parameters fail only that item,
    and so does an unreachable broker or Redis once an earlier item was sent. One audit row
    names what was sent and what failed."""
    rows = await session.execute(select(TaskConfig).where(TaskConfig.id.in_(config_ids)))
    configs = {config.id: config for config in rows.scalars()}
    items = []
    for config_id in config_ids:
        config = configs.get(config_id)
        if config is None:
            items.append(BatchItem(config_id, error=NotFound(f"Task config {config_id} not found")))
            continue
        try:
            run = await kick(
                broker=broker, redis=redis, settings=settings, config=config, trigger="manual"
            )
        except InvalidInput as exc:
            items.append(BatchItem(config_id, error=exc))
        except _SEND_FAILURES as exc:
            if not any(item.run for item in items):
                raise  # nothing sent: the whole batch is a 503, safe to retry as a whole
            # Runs sent before the failure are running: their ids must reach the caller.
            logger.error("batch run of config %s not sent: %s", config_id, exc)
            error = exc if isinstance(exc, StoreUnavailable) else unavailable(exc)
            items.append(BatchItem(config_id, error=error))
        else:
            items.append(BatchItem(config_id, run=run))
    if any(item.run for item in items):
        audit.record(
            session, actor=actor, action="run.batch", target_type="config", target_id=None,
            target_name=None, changes={
                "sent": {str(i.config_id): i.run.task_id for i in items if i.run},
                "failed": {str(i.config_id): i.error.code for i in items if i.error},
            },
        )  # fmt: skip
        await session.commit()
    return items


@dataclass(frozen=True)
class PlannedRun:
    """A run to send under a task id of its own choosing, with labels of its own."""

    task_id: str
    labels: dict[str, Any]


async def kick_each(
    *,
    broker: AioPikaBroker,
    redis: Redis,
    settings: Settings,
    config: TaskConfig,
    trigger: Trigger,
    planned: list[PlannedRun],
    concurrency: int = SEND_CONCURRENCY,
) -> tuple[list[RunQueued], list[PlannedRun]]:
    """Send the runs of one config, oldest first, `concurrency` at a time (publisher
    confirms are a round trip each): the ones sent, and the ones not sent because the broker
    or Redis failed midway, after which none is started. As batch run does: if nothing was
    sent, the failure is raised (a 503, safe to retry as a whole)."""
    await broker_client.connect(broker, settings.broker_send_timeout_seconds)
    outcomes: list[RunQueued | None] = [None] * len(planned)
    failures: list[BaseException] = []
    slots = asyncio.Semaphore(concurrency)

    async def send_one(index: int, run: PlannedRun) -> None:
        async with slots:
            if failures:
                return  # the broker or Redis failed: send no more
            try:
                outcomes[index] = await kick(
                    broker=broker, redis=redis, settings=settings, config=config,
                    trigger=trigger, task_id=run.task_id, labels=run.labels,
                )  # fmt: skip
            except _SEND_FAILURES as exc:
                failures.append(exc)

    await asyncio.gather(*(send_one(index, run) for index, run in enumerate(planned)))
    sent = [queued for queued in outcomes if queued is not None]
    if failures and not sent:
        raise failures[0]
    if failures:
        logger.error("%d runs of config %s not sent: %s", len(planned) - len(sent), config.id,
                     failures[0])  # fmt: skip
    not_sent = [run for run, queued in zip(planned, outcomes, strict=True) if queued is None]
    return sent, not_sent
