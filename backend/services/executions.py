"""Execution records as the API reads them: one run, a config's page, recent counts and
per-config stats (one SQL statement for any number of configs). The worker writes them
(backend/worker/records.py)."""

from dataclasses import dataclass, replace
from datetime import datetime

from redis.asyncio import Redis
from sqlalchemy import Integer, cast, func, literal_column, or_, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from backend.errors import NotFound
from backend.models import TaskExecution
from backend.schemas.executions import ExecutionRead, ExecutionStats, LiveRunRead
from backend.services import schedules
from backend.services.redis import timeout as live_runs


async def get_run(
    session: AsyncSession, redis: Redis, *, task_id: str
) -> ExecutionRead | LiveRunRead:
    """One run: its record if it finished, else its live state (queued or running)."""
    # Live state first: a run's record is written before its live entry is removed, so a run
    # absent from Redis here is either recorded by the time we read the database, or unknown.
    live = await live_runs.get(redis, task_id) or await schedules.sent_fire(redis, task_id)
    record = await get_by_task_id(session, task_id=task_id)
    if record is not None:
        return ExecutionRead.model_validate(record)
    if live is not None:
        return live_read(live)
    raise NotFound(f"Run {task_id} not found")


def live_read(live: live_runs.LiveRun) -> LiveRunRead:
    """A live run as the API shows it: `cancelling` from the cancel until its record."""
    if live.cancel is not None:
        live = replace(live, state="cancelling")
    return LiveRunRead.model_validate(live)


async def get_by_task_id(session: AsyncSession, *, task_id: str) -> TaskExecution | None:
    statement = select(TaskExecution).where(TaskExecution.task_id == task_id)
    return (await session.execute(statement)).scalar_one_or_none()


@dataclass(frozen=True)
class ExecutionFilter:
    is_success: bool | None = None
    since: datetime | None = None
    until: datetime | None = None
    trigger: str | None = None


async def list_for_config(
    session: AsyncSession,
    *,
    config_id: int,
    filters: ExecutionFilter,
    limit: int,
    offset: int,
) -> tuple[list[TaskExecution], int]:
    """One page of a config's records, newest first, and the total matching."""
    conditions = [TaskExecution.config_id == config_id]
    if filters.is_success is not None:
        conditions.append(TaskExecution.is_success.is_(filters.is_success))
    if filters.since is not None:
        conditions.append(TaskExecution.started_at >= filters.since)
    if filters.until is not None:
        conditions.append(TaskExecution.started_at < filters.until)
    if filters.trigger is not None:
        conditions.append(TaskExecution.trigger == filters.trigger)
    page = (
        select(TaskExecution)
        .where(*conditions)
        .order_by(TaskExecution.started_at.desc(), TaskExecution.id.desc())
        .limit(limit)
        .offset(offset)
    )
    count = select(func.count()).select_from(TaskExecution).where(*conditions)
    items = list((await session.execute(page)).scalars())
    total = (await session.execute(count)).scalar_one()
    return items, total


@dataclass(frozen=True)
class RecentRuns:
    runs: int
    successes: int

    @property
    def success_rate(self) -> float | None:
        return self.successes / self.runs if self.runs else None


async def recent(session: AsyncSession, *, since: datetime) -> RecentRuns:
    """Runs that completed since `since`, and how many succeeded."""
    statement = select(
        func.count(), cast(func.count().filter(TaskExecution.is_success), Integer)
    ).where(TaskExecution.completed_at >= since)
    runs, successes = (await session.execute(statement)).one()
    return RecentRuns(runs=runs, successes=successes)


async def stats_for(
    session: AsyncSession | AsyncConnection, *, config_ids: list[int]
) -> dict[int, ExecutionStats]:
    """Stats for each id (zeros for a config that never ran), in one statement."""
    if not config_ids:
        return {}
    run = TaskExecution
    succeeded = run.is_success.is_(True)
    failed = run.is_success.is_(False)
    last_ok = (
        select(run.config_id, func.max(run.started_at).label("at"))
        .where(succeeded, run.config_id.in_(config_ids))
        .group_by(run.config_id)
        .subquery()
    )
    statement = (
        select(
            run.config_id,
            func.count().label("total_runs"),
            func.count().filter(succeeded).label("successes"),
            func.count().filter(failed).label("failures"),
            func.avg(run.duration_seconds).label("avg_duration_seconds"),
            func.percentile_cont(0.95)
            .within_group(run.duration_seconds)
            .label("p95_duration_seconds"),
            func.max(run.started_at).label("last_run_at"),
            func.array_agg(
                aggregate_order_by(run.is_success, run.started_at.desc(), run.id.desc())
            )[1].label("last_run_success"),
            func.max(run.started_at).filter(succeeded).label("last_success_at"),
            func.max(run.started_at).filter(failed).label("last_failure_at"),
            func.count()
            .filter(failed, or_(last_ok.c.at.is_(None), run.started_at > last_ok.c.at))
            .label("consecutive_failures"),
            # The error of the failed run started last: the first of them, newest first.
            literal_column(
                "(array_agg(task_executions.error_message ORDER BY task_executions.started_at"
                " DESC, task_executions.id DESC) FILTER (WHERE NOT task_executions.is_success))[1]"
            ).label("last_error"),
        )
        .outerjoin(last_ok, last_ok.c.config_id == run.config_id)
        .where(run.config_id.in_(config_ids))
        .group_by(run.config_id)
    )
    stats = {config_id: ExecutionStats() for config_id in config_ids}
    for row in await session.execute(statement):
        values = row._asdict()
        config_id = values.pop("config_id")
        values["success_rate"] = values["successes"] / values["total_runs"]
        stats[config_id] = ExecutionStats(**values)
    return stats
