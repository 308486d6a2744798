"""The one write path of execution records, and the worker's batching buffer in front of it.

finish(resources, endings)  writes the runs' rows in ONE `INSERT ... ON CONFLICT (task_id) DO
                         NOTHING` and commits; then, in one Redis transaction, drops the runs
                         from the in-flight set and appends the history event of each run
                         whose row this call inserted (a duplicate delivery or a reaper that
                         lost the race appends nothing). The reaper calls it directly.
RecordBuffer             (backend/worker/buffer.py) the worker's endings go through it: it
                         gathers them for `record_flush_seconds` and writes each gathered
                         batch with the two steps of `finish`, retrying until it succeeds.

Why no record is lost. A run stays in the in-flight set (Redis) until its row is committed.
While PostgreSQL is unreachable the buffer keeps the endings and retries; a worker killed
before its buffer was written leaves the runs in flight, and the reaper records them as lost
after their deadline: still exactly one record each. On shutdown the buffer is flushed.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

from backend import metrics
from backend.config import get_settings
from backend.resources import Resources
from backend.services.redis import history
from backend.services.redis import timeout as live_runs
from backend.worker import waiting


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
    scheduled_for: datetime | None = None  # the nominal fire time; None for manual runs


@dataclass(frozen=True)
class Ending:
    """A finished run: its record, and the history event appended if the record is new."""

    outcome: Outcome
    event: str
    task_type: str  # for the metrics: outcomes are counted per task type


# One statement for any number of records: the rows arrive as parallel arrays, so asyncpg
# prepares it once whatever the batch size, and one statement needs no BEGIN/COMMIT round
# trips. A run of a config deleted meanwhile keeps its record, with config_id NULL. The
# runs of configs with alert rules also go to the alert inbox, in the same statement: the
# notifier reads them later, so a record never waits for a notification, and none is lost.
_INSERT_MANY = """
WITH inserted AS (
    INSERT INTO task_executions (task_id, config_id, is_success, started_at, completed_at,
        duration_seconds, result, error_message, trigger, attempts, scheduled_for)
    SELECT r.task_id, c.id, r.is_success, r.started_at, r.completed_at,
        r.duration_seconds, r.result::jsonb, r.error_message, r.trigger, r.attempts,
        r.scheduled_for
    FROM unnest($1::varchar[], $2::integer[], $3::boolean[], $4::timestamptz[],
        $5::timestamptz[], $6::float8[], $7::text[], $8::text[], $9::varchar[], $10::integer[],
        $11::timestamptz[])
        AS r(task_id, config_id, is_success, started_at, completed_at, duration_seconds,
            result, error_message, trigger, attempts, scheduled_for)
    LEFT JOIN task_configs AS c ON c.id = r.config_id
    ON CONFLICT (task_id) DO NOTHING
    RETURNING task_id, config_id, is_success, started_at, completed_at, error_message, trigger
), inbox AS (
    INSERT INTO alert_inbox (kind, config_id, task_id, data)
    SELECT 'run', i.config_id, i.task_id, jsonb_build_object(
        'task_id', i.task_id, 'is_success', i.is_success, 'error_message', i.error_message,
        'started_at', i.started_at, 'completed_at', i.completed_at, 'trigger', i.trigger)
    FROM inserted AS i JOIN task_configs AS c ON c.id = i.config_id
    WHERE c.alerts IS NOT NULL OR c.pause_after_failures IS NOT NULL
)
SELECT task_id FROM inserted
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
        [o.scheduled_for for o in outcomes],
    )
    return {row["task_id"] for row in rows}


async def write_rows(connection: AsyncConnection, endings: Sequence[Ending]) -> set[str]:
    """Step 1: insert the records (one statement, committed); the task ids it inserted."""
    raw = await connection.get_raw_connection()
    outcomes = [e.outcome for e in endings]
    return await record_many(raw.driver_connection, outcomes=outcomes)


async def clear_live(resources: Resources, endings: Sequence[Ending], inserted: set[str]) -> None:
    """Step 2, after the commit: leave the in-flight set; history only for new records.

    One Redis transaction of a few commands per config, whatever the number of runs.
    """
    events: dict[int, list[tuple[str, dict[str, Any]]]] = {}
    appended: set[str] = set()  # the same run twice in one batch was inserted once
    for ending in endings:
        outcome = ending.outcome
        if outcome.config_id is None or outcome.task_id not in inserted:
            continue
        if outcome.task_id in appended:
            continue
        appended.add(outcome.task_id)
        data = {
            "task_id": outcome.task_id,
            "attempts": outcome.attempts,
            "error": outcome.error_message,
        }
        events.setdefault(outcome.config_id, []).append((ending.event, data))
    settings = get_settings()
    configs = sorted({e.outcome.config_id for e in endings if e.outcome.config_id is not None})
    async with resources.redis.pipeline(transaction=True) as pipe:
        runs = [(e.outcome.task_id, e.outcome.config_id) for e in endings]
        live_runs.queue_finish_many(pipe, runs)
        for config_id, config_events in events.items():
            history.queue_append_many(pipe, config_id, config_events)
        # buffer_one: a run waiting for these configs goes once their last run is gone.
        live_runs.queue_promote(
            pipe, configs, lease_seconds=settings.reaper_lease_seconds,
            ttl=settings.queued_run_ttl_seconds,
        )  # fmt: skip
        results = await pipe.execute()
    _count(endings, inserted)
    let_go = [message for message in results[len(results) - len(configs) :] if message]
    if let_go:
        await waiting.send_again(let_go)


def _count(endings: Sequence[Ending], inserted: set[str]) -> None:
    """Each run's outcome once: only the write that inserted its record counts it."""
    counted: set[str] = set()
    for ending in endings:
        outcome = ending.outcome
        if outcome.task_id not in inserted or outcome.task_id in counted:
            continue
        counted.add(outcome.task_id)
        duration = None
        if ending.event != "lost":  # a lost run's end is when it was found, not when it ended
            duration = (outcome.completed_at - outcome.started_at).total_seconds()
        metrics.run_finished(ending.task_type, outcome=ending.event, duration=duration)


async def finish(resources: Resources, endings: Sequence[Ending]) -> set[str]:
    """Record the runs once each; returns the task ids whose record this call inserted."""
    async with resources.engine.connect() as connection:
        inserted = await write_rows(connection, endings)
    await clear_live(resources, endings, inserted)
    return inserted
