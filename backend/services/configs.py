"""Task config rules: create, list, update and delete, each response merged with the live
schedule state from Redis.

PostgreSQL holds the config; Redis holds its schedule status and next run. Listing a page
costs one SQL statement (the total and the page) and one Redis round trip for all live
states, whatever the page size (plus one Redis read when filtering by status); config_pages
renders it.
"""

from typing import Any

from redis.asyncio import Redis
from sqlalchemy import ColumnElement, or_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db import Reader
from backend.errors import Conflict, InvalidInput
from backend.models import ScheduleStatus, TaskConfig
from backend.schemas.configs import TaskConfigCreate, TaskConfigRead, TaskConfigUpdate
from backend.schemas.notifications import AlertRules
from backend.services import (
    alerts,
    audit,
    config_pages,
    config_validation,
    executions,
    notifications,
    schedule_entries,
    schedules,
)
from backend.services.audit import Actor
from backend.services.redis import history
from backend.services.redis import scheduler as schedule_state
from backend.triggers.options import max_runs_of

NAME_CONSTRAINT = "uq_task_configs_name"
RECENT_HISTORY = 10
NOTED_ACTIONS = ("pause", "resume", "stop")
STORED_FIELDS = (
    "name", "description", "task_type", "scheduler_type", "schedule_config", "parameters",
    "max_retries", "timeout_seconds", "priority", "overlap_policy", "alerts",
    "pause_after_failures",
)  # fmt: skip


def snapshot(config: TaskConfig) -> dict[str, Any]:
    """The stored fields, as the audit trail keeps a created or deleted config."""
    return {field: getattr(config, field) for field in STORED_FIELDS}


def _audit(
    session: AsyncSession, config: TaskConfig, *, actor: Actor, action: str, changes: dict[str, Any]
) -> None:
    audit.record(
        session, actor=actor, action=action, target_type="config", target_id=config.id,
        target_name=config.name, changes=changes,
    )  # fmt: skip


def _violated_constraint(exc: IntegrityError) -> str | None:
    # asyncpg's error (the DBAPI error's cause) names the constraint.
    cause = exc.orig.__cause__ if exc.orig is not None else None
    return getattr(cause, "constraint_name", None)


async def _flush_or_conflict(session: AsyncSession, name: str) -> None:
    """Flush; a duplicate name is a 409, also when a concurrent request took it first."""
    try:
        await session.flush()
    except IntegrityError as exc:
        if _violated_constraint(exc) == NAME_CONSTRAINT:
            raise Conflict(f"A task config named {name!r} already exists") from exc
        raise


async def create(
    session: AsyncSession,
    redis: Redis,
    *,
    data: TaskConfigCreate,
    actor: Actor,
    auto_start: bool = False,
) -> TaskConfig:
    checked = config_validation.check(
        task_type=data.task_type,
        parameters=data.parameters,
        scheduler_type=data.scheduler_type,
        schedule_config=data.schedule_config,
        schedule_changed=True,
    )
    if auto_start and data.scheduler_type == "manual":
        raise Conflict("A manual config is never scheduled: run it with POST .../run")
    await _refuse_unknown_channels(session, data.alerts)
    values = data.model_dump() | {
        "parameters": checked.parameters,
        "schedule_config": checked.schedule_config,
    }
    config = TaskConfig(**values)
    session.add(config)
    await _flush_or_conflict(session, data.name)
    # Redis is written before the commit: if it fails, nothing was created. A schedule
    # started for a row whose commit then fails is removed by the scheduler's reconcile.
    await history.append(redis, config.id, "created")
    _audit(session, config, actor=actor, action="config.create", changes=snapshot(config))
    if auto_start:
        state = await schedules.apply_action(redis, config, "start")
        _audit(session, config, actor=actor, action="schedule.start", changes=_status(state))
    await session.commit()
    return config


async def _refuse_unknown_channels(session: AsyncSession, alerts: AlertRules | None) -> None:
    if alerts is None:
        return
    missing = await notifications.missing_channels(session, alerts.channel_ids)
    if missing:
        raise InvalidInput(
            "Unknown notification channels",
            fields=[{"loc": ["alerts", "channel_ids"], "type": "value_error",
                     "msg": f"no channel with id {', '.join(map(str, missing))}"}],
        )  # fmt: skip


def _status(state: schedule_state.ScheduleState) -> dict[str, Any]:
    next_run = state.next_run_at.isoformat() if state.next_run_at else None
    return {"schedule_status": state.status, "next_run_at": next_run}


def _conditions(
    *,
    task_type: str | None,
    scheduler_type: str | None,
    search: str | None,
    status_ids: tuple[bool, set[int]] | None,
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if task_type is not None:
        conditions.append(TaskConfig.task_type == task_type)
    if scheduler_type is not None:
        conditions.append(TaskConfig.scheduler_type == scheduler_type)
    if search:
        escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        conditions.append(
            or_(
                TaskConfig.name.ilike(pattern, escape="\\"),
                TaskConfig.description.ilike(pattern, escape="\\"),
            )
        )
    if status_ids is not None:
        include, ids = status_ids
        conditions.append(TaskConfig.id.in_(ids) if include else TaskConfig.id.not_in(ids))
    return conditions


async def list_page(
    reader: Reader,
    redis: Redis,
    *,
    limit: int,
    offset: int,
    task_type: str | None = None,
    scheduler_type: str | None = None,
    schedule_status: ScheduleStatus | None = None,
    search: str | None = None,
    include_stats: bool = False,
) -> bytes:
    """One page ordered by id and the total matching the filters, as JSON (config_pages)."""
    status_ids = None
    if schedule_status is not None:
        # Status lives in Redis: turn it into an id filter (inactive = in no other set).
        ids = await schedule_state.ids_with_status(redis, schedule_status)
        status_ids = (schedule_status != "inactive", ids)
    conditions = _conditions(
        task_type=task_type, scheduler_type=scheduler_type, search=search, status_ids=status_ids
    )
    return await config_pages.render_page(
        reader, redis, conditions=conditions, limit=limit, offset=offset,
        include_stats=include_stats,
    )  # fmt: skip


async def update(
    session: AsyncSession,
    redis: Redis,
    *,
    config: TaskConfig,
    changes: TaskConfigUpdate,
    actor: Actor,
) -> TaskConfig:
    """Apply the fields sent, validate the merged config as a whole, then store it."""
    before = snapshot(config)
    if "alerts" in changes.model_fields_set:
        await _refuse_unknown_channels(session, changes.alerts)
    sent = changes.model_dump(exclude_unset=True)
    merged = {
        field: sent.get(field, getattr(config, field))
        for field in ("task_type", "parameters", "scheduler_type", "schedule_config")
    }
    schedule_changed = (merged["scheduler_type"], merged["schedule_config"]) != (
        config.scheduler_type,
        config.schedule_config,
    )
    checked = config_validation.check(**merged, schedule_changed=schedule_changed)
    sent |= {"parameters": checked.parameters, "schedule_config": checked.schedule_config}
    changed = sorted(field for field, value in sent.items() if getattr(config, field) != value)
    for field, value in sent.items():
        setattr(config, field, value)
    await _flush_or_conflict(session, config.name)
    if changed:
        await history.append(redis, config.id, "updated", fields=changed)
        _audit(
            session, config, actor=actor, action="config.update",
            changes=audit.diff(before, snapshot(config)),
        )  # fmt: skip
        # Before the commit, so a failure here leaves both stores as they were.
        await schedules.reload_if_scheduled(redis, config)
    await session.commit()
    await session.refresh(config)  # updated_at is set by the database
    return config


async def delete(session: AsyncSession, redis: Redis, *, config: TaskConfig, actor: Actor) -> None:
    """Unschedule, then delete. Execution records stay: their config_id becomes NULL
    (the foreign key is ON DELETE SET NULL)."""
    config_id = config.id
    await schedule_entries.forget(redis, config_id)
    _audit(session, config, actor=actor, action="config.delete", changes=snapshot(config))
    await session.delete(config)
    await session.commit()
    await history.append(redis, config_id, "deleted")


def _merge(config: TaskConfig, state: schedule_state.ScheduleState) -> TaskConfigRead:
    read = TaskConfigRead.model_validate(config)
    read.schedule_status = state.status
    # Only an active schedule has a next run; a paused one keeps no stale time on show.
    read.next_run_at = state.next_run_at if state.status == "active" else None
    read.schedule_note = state.note
    read.remaining_runs = schedule_entries.remaining_runs(
        max_runs_of(config.schedule_config), state
    )
    return read


async def apply_action(
    session: AsyncSession,
    redis: Redis,
    *,
    config: TaskConfig,
    action: schedules.Action,
    actor: Actor,
    note: str | None = None,
) -> TaskConfigRead:
    """Run a schedule action and return the config with the state the action wrote. The
    change lives in Redis: its audit row commits right after it succeeded (with a resume's
    reset of the failure streak)."""
    if note is not None and action not in NOTED_ACTIONS:
        raise InvalidInput(
            f"A note goes with {', '.join(NOTED_ACTIONS)}, not {action}",
            fields=[{"loc": ["note"], "msg": "not taken by this action", "type": "value_error"}],
        )
    state = await schedules.apply_action(redis, config, action, note=note)
    changes = _status(state) | ({"note": note} if note else {})
    _audit(session, config, actor=actor, action=f"schedule.{action}", changes=changes)
    if action == "resume":
        await alerts.clear_streak(session, config.id)
    await session.commit()
    return _merge(config, state)


async def present(
    session: AsyncSession,
    redis: Redis,
    *,
    config: TaskConfig,
    include_stats: bool = False,
    include_history: bool = False,
) -> TaskConfigRead:
    read = _merge(config, await schedule_state.read_state(redis, config.id))
    if include_stats:
        stats = await executions.stats_for(session, config_ids=[config.id])
        read.stats = stats[config.id]
    if include_history:
        read.recent_history, _ = await history.read(redis, config.id, limit=RECENT_HISTORY)
    return read
