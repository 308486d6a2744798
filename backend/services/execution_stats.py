"""Execution statistics per config, computed in one SQL statement for any number of configs."""

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from backend.models import TaskExecution


class ExecutionStats(BaseModel):
    """Durations in seconds; the `last_*` times are when those runs started."""

    total_runs: int = 0
    successes: int = 0
    failures: int = 0
    success_rate: float | None = None  # successes / total_runs; None before the first run
    avg_duration_seconds: float | None = None
    p95_duration_seconds: float | None = None
    last_run_at: datetime | None = None
    last_run_success: bool | None = None  # the outcome of the run started last
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None


async def stats_for(session: AsyncSession, *, config_ids: list[int]) -> dict[int, ExecutionStats]:
    """Stats for each id (zeros for a config that never ran), in one statement."""
    if not config_ids:
        return {}
    run = TaskExecution
    succeeded = run.is_success.is_(True)
    failed = run.is_success.is_(False)
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
        )
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
