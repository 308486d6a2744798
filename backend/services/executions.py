"""Execution records: one row per finished run, written idempotently; reads and stats."""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, cast, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.models import TaskConfig, TaskExecution


@dataclass(frozen=True)
class Outcome:
    """How a run ended, as the recording middleware or the reaper saw it."""

    task_id: str
    config_id: int | None
    is_success: bool
    started_at: datetime
    completed_at: datetime
    trigger: str
    attempts: int
    result: Any = None
    error_message: str | None = None


def describe_error(exc: BaseException, *, max_chars: int) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def cap_result(value: Any, *, max_bytes: int) -> Any:
    """A JSON value for the `result` column; an oversized one is replaced by a marked preview."""
    encoded = json.dumps(value, default=str)
    if len(encoded.encode()) <= max_bytes:
        return json.loads(encoded)
    return {"truncated": True, "size_bytes": len(encoded.encode()), "preview": encoded[:max_bytes]}


async def record(session: AsyncSession, *, outcome: Outcome) -> bool:
    """Insert the run's one record; False if it already had one (duplicate delivery, reaper)."""
    # A run of a config deleted meanwhile keeps its record, with config_id NULL.
    live_config = select(TaskConfig.id).where(TaskConfig.id == outcome.config_id)
    statement = (
        insert(TaskExecution)
        .values(
            task_id=outcome.task_id,
            config_id=live_config.scalar_subquery(),
            is_success=outcome.is_success,
            started_at=outcome.started_at,
            completed_at=outcome.completed_at,
            duration_seconds=(outcome.completed_at - outcome.started_at).total_seconds(),
            result=outcome.result,
            error_message=outcome.error_message,
            trigger=outcome.trigger,
            attempts=outcome.attempts,
        )
        .on_conflict_do_nothing(index_elements=[TaskExecution.task_id])
        .returning(TaskExecution.id)
    )
    inserted = (await session.execute(statement)).scalar_one_or_none()
    await session.commit()
    return inserted is not None


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
