"""Backfill: one run per occurrence of a config's schedule in a past range, each with trigger
`backfill` and its nominal fire time as `scheduled_for`.

A backfill run's task id is `b{config_id}-{nominal time in ms}`, so the same backfill again
does not run an occurrence twice: occurrences that already have a record (of a backfill or
of the schedule itself, found by `scheduled_for`) or that are queued or in flight are
skipped; and should two identical backfills race, both sends carry the same task id, which
the worker runs once (its duplicate check).
"""

from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from taskiq_aio_pika import AioPikaBroker

from backend.config import Settings
from backend.errors import Conflict, InvalidInput
from backend.models import TaskConfig, TaskExecution
from backend.schemas.backfill import (
    MAX_OCCURRENCES,
    BackfillRequest,
    BackfillResponse,
    BackfillSkip,
    SkipReason,
)
from backend.services import audit, runs, schedule_entries, schedules
from backend.services.audit import Actor
from backend.services.redis import history
from backend.services.redis import scheduler as schedule_state
from backend.services.redis import timeout as live_runs
from backend.triggers.fires import Timing, occurrences
from backend.triggers.specs import IntervalSpec, ScheduleSpec

# Counting stops here: a range over it is refused naming this as a lower bound.
COUNT_LIMIT = 10 * MAX_OCCURRENCES


def task_id_for(config_id: int, scheduled_for: datetime) -> str:
    return f"b{config_id}-{schedule_state.to_ms(scheduled_for)}"


def _field_error(field: str, message: str) -> InvalidInput:
    return InvalidInput(message, fields=[{"loc": [field], "msg": message, "type": "value_error"}])


def _grid_anchor(spec: ScheduleSpec, anchor: datetime | None, start: datetime) -> datetime | None:
    """Cron has no anchor to keep (every occurrence in the range counts, also those before the
    schedule was started). An interval keeps its schedule's grid (anchored when it was
    started), stepped back to before `start`; one never started the grid of a start at
    `start` (its first fire one interval later, as a real start's)."""
    if not isinstance(spec, IntervalSpec):
        return None
    if anchor is None:
        return start
    steps = max(0, -(-(anchor - start) // spec.every)) + 1
    return anchor - steps * spec.every


async def plan(
    redis: Redis, *, config: TaskConfig, start: datetime, end: datetime, now: datetime
) -> list[datetime]:
    """The occurrences in [start, end], or the 4xx that says why there is no backfill."""
    if config.scheduler_type not in ("cron", "interval"):
        raise Conflict(
            f"Config {config.id} is a {config.scheduler_type} schedule: only cron and interval "
            "schedules have occurrences to backfill"
        )
    if end < start:
        raise _field_error("end", "end must not be before start")
    if end > now:
        raise _field_error("end", f"end must not be in the future (now is {now.isoformat()})")
    state = await schedule_state.read_state(redis, config.id)
    # Window and excluded days apply; jitter does not (a backfill run is sent at once).
    spec = schedules.plan_of(config).spec().model_copy(update={"jitter_seconds": 0})
    timing = Timing(spec, seed=config.id)
    found = occurrences(
        timing, since=start, until=end, anchor=_grid_anchor(spec, state.anchor, start),
        limit=COUNT_LIMIT + 1,
    )  # fmt: skip
    fires = [fire.nominal for fire in found]
    if len(fires) > MAX_OCCURRENCES:
        count = f"more than {COUNT_LIMIT:,}" if len(fires) > COUNT_LIMIT else f"{len(fires):,}"
        raise _field_error(
            "end",
            f"The range holds {count} occurrences; a backfill runs at most "
            f"{MAX_OCCURRENCES:,}: narrow the range",
        )
    return fires


async def _already_run(
    session: AsyncSession, redis: Redis, *, config_id: int, fires: list[datetime]
) -> dict[datetime, BackfillSkip]:
    """The occurrences with a record or a run queued or in flight: one SQL statement and one
    Redis round trip, whatever their number."""
    ids = {fire: task_id_for(config_id, fire) for fire in fires}
    fired = {fire: schedule_entries.fire_task_id(config_id, fire) for fire in fires}
    rows = await session.execute(
        select(TaskExecution.task_id, TaskExecution.scheduled_for).where(
            or_(
                TaskExecution.task_id.in_([*ids.values(), *fired.values()]),
                (TaskExecution.config_id == config_id) & TaskExecution.scheduled_for.in_(fires),
            )
        )
    )
    recorded_ids = set()
    recorded_times = set()
    for task_id, scheduled_for in rows.all():
        recorded_ids.add(task_id)
        if scheduled_for is not None:
            recorded_times.add(scheduled_for)
    live, taken = await live_runs.seen_among(redis, [*ids.values(), *fired.values()])
    skipped: dict[datetime, BackfillSkip] = {}
    for fire in fires:
        reason: SkipReason | None = None
        if fire in recorded_times or {ids[fire], fired[fire]} & recorded_ids:
            reason = "recorded"
        elif {ids[fire], fired[fire]} & live:
            reason = "in_flight"
        elif ids[fire] in taken:
            # Taken by a worker, not live and unrecorded: refused by `overlap_policy: skip`.
            # Its task id stays claimed (the worker's duplicate check), so it cannot run again.
            reason = "refused"
        if reason is not None:
            skipped[fire] = BackfillSkip(scheduled_for=fire, task_id=ids[fire], reason=reason)
    return skipped


async def backfill(
    session: AsyncSession,
    *,
    broker: AioPikaBroker,
    redis: Redis,
    settings: Settings,
    config: TaskConfig,
    request: BackfillRequest,
    actor: Actor,
    now: datetime | None = None,
) -> BackfillResponse:
    """Send one run per occurrence not run yet (none on a dry run); history `backfill` and
    audit `run.backfill` name the range once anything was sent."""
    now = now or datetime.now(UTC)
    fires = await plan(redis, config=config, start=request.start, end=request.end, now=now)
    skipped = await _already_run(session, redis, config_id=config.id, fires=fires)
    due = [fire for fire in fires if fire not in skipped]
    planned = [
        runs.PlannedRun(
            task_id=task_id_for(config.id, fire),
            labels={"scheduled_for": fire.isoformat(), "overlap_policy": request.overlap_policy},
        )
        for fire in due
    ]
    if request.dry_run or not planned:
        return BackfillResponse(
            dry_run=request.dry_run,
            count=len(planned),
            task_ids=[run.task_id for run in planned],
            occurrences=due,
            skipped=list(skipped.values()),
        )
    sent, not_sent = await runs.kick_each(
        broker=broker, redis=redis, settings=settings, config=config, trigger="backfill",
        planned=planned,
    )  # fmt: skip
    sent_ids = {queued.task_id for queued in sent}
    sent_fires = [fire for fire, run in zip(due, planned, strict=True) if run.task_id in sent_ids]
    summary: dict[str, Any] = {
        "start": request.start.isoformat(),
        "end": request.end.isoformat(),
        "count": len(sent),
        "skipped": len(skipped),
        "not_sent": len(not_sent),
        "overlap_policy": request.overlap_policy,
    }
    await history.append(redis, config.id, "backfill", **summary)
    audit.record(
        session, actor=actor, action="run.backfill", target_type="config", target_id=config.id,
        target_name=config.name, changes=summary,
    )  # fmt: skip
    await session.commit()
    return BackfillResponse(
        dry_run=False,
        count=len(sent),
        task_ids=[run.task_id for run in sent],
        occurrences=sent_fires,
        skipped=list(skipped.values()),
        not_sent=[fire for fire, run in zip(due, planned, strict=True) if run in not_sent],
    )
