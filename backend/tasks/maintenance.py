"""`maintenance.purge_executions`: deletes old execution records in batches."""

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select

from backend.models import TaskExecution
from backend.resources import Resources
from backend.tasks.registry import task_type

# Each batch is its own short transaction, so a large purge never holds locks for long.
BATCH_SIZE = 1000


class PurgeParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    older_than_days: int = Field(ge=1, le=36500)
    config_id: int | None = Field(default=None, ge=1)


@task_type(
    "maintenance.purge_executions",
    description="Delete execution records that started more than `older_than_days` days ago "
    "(only those of `config_id` if given), in batches; reports how many were deleted.",
    parameters=PurgeParameters,
)
async def purge_executions(params: PurgeParameters, *, resources: Resources) -> dict[str, Any]:
    cutoff = datetime.now(UTC) - timedelta(days=params.older_than_days)
    batch = select(TaskExecution.id).where(TaskExecution.started_at < cutoff)
    if params.config_id is not None:
        batch = batch.where(TaskExecution.config_id == params.config_id)
    # SKIP LOCKED: two purges running at once split the rows instead of waiting on each other.
    batch = batch.order_by(TaskExecution.id).limit(BATCH_SIZE).with_for_update(skip_locked=True)
    deleted = 0
    while True:
        async with resources.sessionmaker() as session:
            result = await session.execute(
                delete(TaskExecution).where(TaskExecution.id.in_(batch.scalar_subquery()))
            )
            await session.commit()
        count: int = result.rowcount  # type: ignore[attr-defined]
        deleted += count
        if count < BATCH_SIZE:
            return {"deleted": deleted, "cutoff": cutoff.isoformat()}
