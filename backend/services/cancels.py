"""Cancelling a run: `POST /api/v1/tasks/executions/{task_id}/cancel`.

The decision is one script on the run's live state in Redis (the `timeout` store), atomic
against a worker starting the run: a run not started yet (queued, a scheduled fire sent but
not started, a buffer_one run waiting, a retry in its backoff) never starts, and a reaper
writes its one record from that state; a running run is asked to stop, and its worker
(backend/worker/cancels.py) cancels the task within a poll interval and records it. Either
way the record says `Cancelled by <username>`, with the history event `cancelled`.
"""

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from backend.config import Settings
from backend.errors import Conflict, NotFound
from backend.models import TaskConfig
from backend.schemas.executions import ExecutionRead, LiveRunRead
from backend.services import audit, executions, schedules
from backend.services.audit import Actor
from backend.services.redis import timeout as live_runs


def cancelled_by(username: str) -> str:
    """The error message of a run cancelled by hand."""
    return f"Cancelled by {username}"


async def cancel(
    session: AsyncSession,
    redis: Redis,
    *,
    settings: Settings,
    task_id: str,
    actor: Actor,
) -> ExecutionRead | LiveRunRead:
    """Cancel a run that has not finished; returns its state after the cancel (`cancelling`
    until its record is written). Asking again changes nothing (and audits nothing)."""
    if await executions.get_by_task_id(session, task_id=task_id) is not None:
        raise Conflict(f"Run {task_id} has already finished")
    live = await live_runs.get(redis, task_id)
    # A scheduled run sent but not started has no live entry yet, only its scheduler's claim.
    known = live or await schedules.sent_fire(redis, task_id)
    config_id = known.config_id if known is not None else None
    found = await live_runs.cancel(
        redis,
        task_id=task_id,
        config_id=config_id,
        message=cancelled_by(actor.username),
        ttl=settings.queued_run_ttl_seconds,
        sent_fire=live is None and known is not None,
    )
    if found == "gone":
        # Nothing live: it finished since the first read (its record exists), or never ran.
        if await executions.get_by_task_id(session, task_id=task_id) is not None:
            raise Conflict(f"Run {task_id} has already finished")
        raise NotFound(f"Run {task_id} not found")
    if found != "already":
        config = await session.get(TaskConfig, config_id) if config_id is not None else None
        audit.record(
            session, actor=actor, action="run.cancel", target_type="config",
            target_id=config_id, target_name=config.name if config else None,
            changes={"task_id": task_id, "state": found},
        )  # fmt: skip
        await session.commit()
    return await executions.get_run(session, redis, task_id=task_id)
