"""Execution records: one row per finished run, written idempotently; reads and stats."""

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import Integer, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.models import TaskExecution


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
    text = _storable_text(text)
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def cap_result(value: Any, *, max_bytes: int) -> Any:
    """A JSON value for the `result` column; an oversized one is replaced by a marked preview.

    PostgreSQL refuses NUL characters and NaN/Infinity in JSONB: they are replaced here, so a
    task's odd return value still gives its run a true record instead of a refused write.
    """
    encoded = json.dumps(value, default=str)
    if any(token in encoded for token in _REFUSED_TOKENS):  # rare: walk the value only then
        encoded = json.dumps(_storable(json.loads(encoded)))
    if len(encoded.encode()) <= max_bytes:
        return json.loads(encoded)
    return {"truncated": True, "size_bytes": len(encoded.encode()), "preview": encoded[:max_bytes]}


# What json.dumps writes for the values PostgreSQL's JSONB refuses.
_REFUSED_TOKENS = ("NaN", "Infinity", "\\u0000")


def _storable_text(text: str) -> str:
    return text.replace("\x00", "\ufffd")


def _storable(value: Any) -> Any:
    if isinstance(value, str):
        return _storable_text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "nan", "inf", "-inf"
    if isinstance(value, list):
        return [_storable(item) for item in value]
    if isinstance(value, dict):
        return {_storable_text(key): _storable(item) for key, item in value.items()}
    return value


# One statement for any number of records: the rows arrive as parallel arrays, so asyncpg
# prepares it once whatever the batch size, and one statement needs no BEGIN/COMMIT round
# trips. A run of a config deleted meanwhile keeps its record, with config_id NULL.
_INSERT_MANY = """
INSERT INTO task_executions (task_id, config_id, is_success, started_at, completed_at,
    duration_seconds, result, error_message, trigger, attempts)
SELECT r.task_id, c.id, r.is_success, r.started_at, r.completed_at,
    r.duration_seconds, r.result::jsonb, r.error_message, r.trigger, r.attempts
FROM unnest($1::varchar[], $2::integer[], $3::boolean[], $4::timestamptz[],
    $5::timestamptz[], $6::float8[], $7::text[], $8::text[], $9::varchar[], $10::integer[])
    AS r(task_id, config_id, is_success, started_at, completed_at, duration_seconds,
        result, error_message, trigger, attempts)
LEFT JOIN task_configs AS c ON c.id = r.config_id
ON CONFLICT (task_id) DO NOTHING
RETURNING task_id
"""


async def record_many(connection: asyncpg.Connection, *, outcomes: Sequence[Outcome]) -> set[str]:
    """Insert the runs' records in one statement; returns the task ids it inserted.

    A run that already had its record (duplicate delivery, a reaper racing a slow worker)
    is left alone and not returned; within `outcomes`, a run's first outcome counts. Takes a
    driver connection: this is the workers' hot path, one round trip per batch.
    """
    first: dict[str, Outcome] = {}
    for outcome in outcomes:
        first.setdefault(outcome.task_id, outcome)  # a run twice in one batch: the first wins
    outcomes = list(first.values())
    if not outcomes:
        return set()
    rows = await connection.fetch(
        _INSERT_MANY,
        [o.task_id for o in outcomes],
        [o.config_id for o in outcomes],
        [o.is_success for o in outcomes],
        [o.started_at for o in outcomes],
        [o.completed_at for o in outcomes],
        [(o.completed_at - o.started_at).total_seconds() for o in outcomes],
        # A failed run stores SQL NULL; a successful run's value is JSON (even `null`).
        [json.dumps(o.result) if o.is_success else None for o in outcomes],
        [o.error_message for o in outcomes],
        [o.trigger for o in outcomes],
        [o.attempts for o in outcomes],
    )
    return {row["task_id"] for row in rows}


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
