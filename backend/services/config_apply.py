"""The declarative apply: a whole document of configs, matched by name, planned and applied
at once.

Every item is validated exactly like a create, and every field error is reported (located
at `["configs", index, ...]`) before anything is written. The config changes are one
PostgreSQL transaction with their audit rows (all or nothing); their history events go to
Redis in one transaction just before the commit, so a Redis failure applies nothing either.
The schedule changes follow the commit, each through the schedule state machine; one that
fails is named in the answer, never silently dropped. A document already in force plans
all-unchanged and writes nothing at all.
"""

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.errors import UNAVAILABLE_ERRORS, Conflict, InvalidInput, TaskhubError
from backend.models import ScheduleStatus, TaskConfig
from backend.schemas.apply import AppliedConfig, ApplyPlan, ApplyRequest, ConfigChange
from backend.services import audit, config_validation, configs, schedule_entries, schedules
from backend.services.audit import Actor
from backend.services.redis import history
from backend.services.redis import scheduler as schedule_state
from backend.services.schedule_plan import schedule_actions, status_after
from backend.triggers.fires import Timing, upcoming
from backend.triggers.specs import DateSpec, ScheduleSpec

logger = logging.getLogger(__name__)

FieldError = dict[str, Any]
# What a schedule action may fail with once the configs are committed: named in the answer.
SCHEDULE_FAILURES: tuple[type[Exception], ...] = (TaskhubError, *UNAVAILABLE_ERRORS)


@dataclass
class _Item:
    """One config of the document, checked and compared with what is stored."""

    data: AppliedConfig
    values: dict[str, Any]  # the stored fields, normalised as a create stores them
    spec: ScheduleSpec
    existing: TaskConfig | None
    changes: dict[str, list[Any]] = field(default_factory=dict)
    actions: list[schedules.Action] = field(default_factory=list)
    status: ScheduleStatus = "inactive"  # after the apply


def _at(index: int, errors: list[FieldError]) -> list[FieldError]:
    return [{**error, "loc": ["configs", index, *error["loc"]]} for error in errors]


def _refuse_bad_document(request: ApplyRequest) -> None:
    if request.prune and not request.configs and not request.confirm_empty:
        raise InvalidInput(
            "Pruning with no configs deletes every config",
            fields=[
                {
                    "loc": ["configs"],
                    "msg": "empty with prune: send confirm_empty: true to delete every config",
                    "type": "value_error",
                }
            ],
        )
    seen: dict[str, int] = {}
    errors: list[FieldError] = []
    for index, item in enumerate(request.configs):
        if item.name in seen:
            message = f"duplicate name: item {seen[item.name]} has the same name"
            errors += _at(index, [{"loc": ["name"], "msg": message, "type": "value_error"}])
        seen.setdefault(item.name, index)
    if errors:
        raise InvalidInput("Each config may appear once in a document", fields=errors)


async def _stored(session: AsyncSession, *, names: list[str], prune: bool) -> dict[str, TaskConfig]:
    """The configs the plan touches, locked until the commit: two applies do not interleave."""
    query = select(TaskConfig).order_by(TaskConfig.id).with_for_update()
    if not prune:
        query = query.where(TaskConfig.name.in_(names))
    return {config.name: config for config in await session.scalars(query)}


def _check(index: int, data: AppliedConfig, existing: TaskConfig | None) -> _Item:
    """The item's values to store, or InvalidInput located in the document."""
    schedule_changed = existing is None or (data.scheduler_type, data.schedule_config) != (
        existing.scheduler_type,
        existing.schedule_config,
    )
    try:
        checked = config_validation.check(
            task_type=data.task_type,
            parameters=data.parameters,
            scheduler_type=data.scheduler_type,
            schedule_config=data.schedule_config,
            schedule_changed=schedule_changed,
        )
    except InvalidInput as exc:
        raise InvalidInput(exc.message, fields=_at(index, exc.fields)) from exc
    values = data.model_dump(include=set(configs.STORED_FIELDS)) | {
        "parameters": checked.parameters,
        "schedule_config": checked.schedule_config,
    }
    item = _Item(data=data, values=values, spec=checked.schedule, existing=existing)
    if existing is not None:
        item.changes = audit.diff(configs.snapshot(existing), values)
    return item


def _plan_schedule(index: int, item: _Item, status: ScheduleStatus) -> list[FieldError]:
    """Set the item's schedule actions; field errors for an unreachable desired status."""
    desired, manual = item.data.schedule_status, item.values["scheduler_type"] == "manual"
    if manual and desired in ("active", "paused"):
        message = "a manual config is never scheduled: leave out schedule_status or say inactive"
        return _at(index, [{"loc": ["schedule_status"], "msg": message, "type": "value_error"}])
    schedule_keys = ("scheduler_type", "schedule_config")
    item.actions = schedule_actions(
        status=status,
        desired=desired,
        config_changed=bool(item.changes),
        schedule_changed=any(key in item.changes for key in schedule_keys),
        manual=manual,
    )
    item.status = status_after(status, item.actions)
    if item.status != status:
        item.changes["schedule_status"] = [status, item.status]
    now = datetime.now(UTC).replace(microsecond=0)
    if "start" in item.actions and not upcoming(Timing(item.spec), after=now, anchor=now, count=1):
        key = "run_date" if isinstance(item.spec, DateSpec) else "end_at"
        message = f"{key} must be in the future to start the schedule"
        error = {"loc": ["schedule_config", key], "msg": message, "type": "value_error"}
        return _at(index, [error])
    return []


async def _plan(redis: Redis, request: ApplyRequest, stored: dict[str, TaskConfig]) -> list[_Item]:
    items: list[_Item] = []
    errors: list[FieldError] = []
    for index, data in enumerate(request.configs):
        try:
            items.append(_check(index, data, stored.get(data.name)))
        except InvalidInput as exc:
            errors += exc.fields
    if errors:  # every item's errors at once, before the schedule states are read
        raise InvalidInput("Invalid configs in the document", fields=errors)
    ids = [item.existing.id for item in items if item.existing is not None]
    states = await schedule_state.read_states(redis, ids)
    for index, item in enumerate(items):
        status = states[item.existing.id].status if item.existing is not None else "inactive"
        errors += _plan_schedule(index, item, status)
    if errors:
        raise InvalidInput("Invalid schedule status in the document", fields=errors)
    return items


def _answer(items: list[_Item], pruned: list[TaskConfig], *, applied: bool) -> ApplyPlan:
    return ApplyPlan(
        create=[item.data.name for item in items if item.existing is None],
        update=[
            ConfigChange(name=item.data.name, changes=item.changes)
            for item in items
            if item.existing is not None and item.changes
        ],
        delete=[config.name for config in pruned],
        unchanged=[item.data.name for item in items if item.existing and not item.changes],
        applied=applied,
        schedule_status={item.data.name: item.status for item in items},
    )


async def apply(
    session: AsyncSession, redis: Redis, *, request: ApplyRequest, actor: Actor
) -> ApplyPlan:
    """Plan the document; unless it is a dry run, apply the plan (see the module doc)."""
    _refuse_bad_document(request)
    names = [item.name for item in request.configs]
    stored = await _stored(session, names=names, prune=request.prune)
    items = await _plan(redis, request, stored)
    named = set(names)
    pruned = [config for name, config in stored.items() if name not in named]
    plan = _answer(items, pruned, applied=not request.dry_run)
    if request.dry_run or not (plan.create or plan.update or plan.delete):
        await session.rollback()  # releases the row locks; nothing was written
        return plan
    await _write_configs(session, redis, items=items, pruned=pruned, actor=actor, plan=plan)
    plan.schedule_errors = await _change_schedules(session, redis, items=items, actor=actor)
    final = await schedule_state.read_states(redis, [_config(item).id for item in items])
    plan.schedule_status = {item.data.name: final[_config(item).id].status for item in items}
    return plan


def _config(item: _Item) -> TaskConfig:
    assert item.existing is not None, "written configs are set on their item"
    return item.existing


def _audit(
    session: AsyncSession, config: TaskConfig, *, actor: Actor, action: str, changes: Any
) -> None:
    audit.record(
        session, actor=actor, action=action, target_type="config", target_id=config.id,
        target_name=config.name, changes=changes,
    )  # fmt: skip


def _stage(session: AsyncSession, items: list[_Item]) -> tuple[list[TaskConfig], list[_Item]]:
    """Add the new configs to the session and set the changed fields: (created, updated)."""
    created, updated = [], []
    for item in items:
        if item.existing is None:
            item.existing = TaskConfig(**item.values)
            session.add(item.existing)
            created.append(item.existing)
        elif set(item.changes) - {"schedule_status"}:
            for name, value in item.values.items():
                setattr(item.existing, name, value)
            updated.append(item)
    return created, updated


async def _write_configs(
    session: AsyncSession,
    redis: Redis,
    *,
    items: list[_Item],
    pruned: list[TaskConfig],
    actor: Actor,
    plan: ApplyPlan,
) -> None:
    """Every config change and its audit row in one transaction."""
    created, updated = _stage(session, items)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent create took a name; nothing is applied
        raise Conflict("A config of the document was created meanwhile: apply again") from exc
    for config in pruned:
        # As a delete does: unschedule first, so no fire of a deleted config is ever sent.
        await schedule_entries.forget(redis, config.id)
        _audit(session, config, actor=actor, action="config.delete",
               changes=configs.snapshot(config))  # fmt: skip
        await session.delete(config)
    async with redis.pipeline(transaction=True) as pipe:
        for config in created:
            history.queue_append(pipe, config.id, "created")
            _audit(session, config, actor=actor, action="config.create",
                   changes=configs.snapshot(config))  # fmt: skip
        for item in updated:
            fields = sorted(set(item.changes) - {"schedule_status"})
            history.queue_append(pipe, _config(item).id, "updated", fields=fields)
            changes = {name: item.changes[name] for name in fields}
            _audit(session, _config(item), actor=actor, action="config.update", changes=changes)
        await pipe.execute()
    audit.record(
        session, actor=actor, action="config.apply", target_type="config", target_id=None,
        target_name=None, changes=plan.model_dump(include={"create", "update", "delete"}),
    )  # fmt: skip
    await session.commit()
    for config in pruned:
        await history.append(redis, config.id, "deleted")


async def _change_schedules(
    session: AsyncSession, redis: Redis, *, items: list[_Item], actor: Actor
) -> dict[str, str]:
    """Each item's schedule actions, after the commit; the failures by config name."""
    failures: dict[str, str] = {}
    for item in items:
        config = _config(item)
        for action in item.actions:
            try:
                state = await schedules.apply_action(redis, config, action)
            except SCHEDULE_FAILURES as exc:
                logger.warning("apply: %s of config %s failed: %s", action, config.id, exc)
                failures[config.name] = f"{action} failed: {getattr(exc, 'message', exc)}"
                break
            changes = {"schedule_status": state.status, "next_run_at": _iso(state.next_run_at)}
            _audit(session, config, actor=actor, action=f"schedule.{action}", changes=changes)
    await session.commit()
    return failures


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
