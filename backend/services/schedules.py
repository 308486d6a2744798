"""Schedule rules: the action state machine (start, stop, pause, resume, reload) over a
config's queued fire entries (backend/services/schedule_entries.py).

An action rebuilds the config's entries from its plan (built here from the config row, on
start and reload) in one Redis transaction that WATCHes the config's state and entries, so
actions, fires and reconcile never interleave halfway.
"""

import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Literal

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import LockError

from backend.errors import Conflict, InvalidInput
from backend.models import ScheduleStatus, TaskConfig
from backend.services import config_validation, runs
from backend.services.redis import history
from backend.services.redis import scheduler as schedule_state
from backend.services.redis import timeout as live_runs
from backend.services.redis.scheduler import ScheduleState
from backend.services.schedule_entries import (
    QUEUE_DEPTH,
    Plan,
    capped,
    parse_fire_task_id,
    queue_fires,
    remaining_runs,
)
from backend.triggers.fires import Fire, upcoming

logger = logging.getLogger(__name__)

Action = Literal["start", "stop", "pause", "resume", "reload"]

TRANSITIONS: dict[str, tuple[frozenset[str], str | None]] = {
    # action: (allowed from, resulting status; None keeps the current one)
    "start": (frozenset({"inactive", "completed"}), "active"),
    "pause": (frozenset({"active"}), "paused"),
    "resume": (frozenset({"paused"}), "active"),
    "stop": (frozenset({"active", "paused"}), "inactive"),
    "reload": (frozenset({"active", "paused"}), None),
}


ACTION_EVENTS = {  # the history event each action leaves
    "start": "started",
    "pause": "paused",
    "resume": "resumed",
    "stop": "stopped",
    "reload": "reloaded",
}


def plan_of(config: TaskConfig) -> Plan:
    """What the scheduler needs to fire the config without the database."""
    return Plan(
        scheduler_type=config.scheduler_type,
        schedule_config=config.schedule_config,
        task_name=config.task_type,
        kwargs=config_validation.stored_parameters(config),
        labels=runs.labels_for(config, trigger="scheduled"),
        late_after_seconds=_late_after(config),
    )


def _late_after(config: TaskConfig) -> int | None:
    alerts = config.alerts or {}
    return alerts.get("late_after_seconds") if "late" in alerts.get("on", []) else None


async def sent_fire(redis: Redis, task_id: str) -> live_runs.LiveRun | None:
    """A scheduled run a scheduler has sent (or is sending) that no worker started yet, as a
    queued run: read from its claim, so sending a fire costs no extra write for this."""
    fire = parse_fire_task_id(task_id)
    if fire is None:
        return None
    config_id, fire_at = fire
    [claim] = await schedule_state.claim_values(redis, config_id, [fire_at])
    if claim is None:
        return None
    return live_runs.LiveRun(
        task_id=task_id,
        config_id=config_id,
        trigger="scheduled",
        state=live_runs.QUEUED,
        attempt=0,
        task_type="unknown",
        queued_at=fire_at,
        started_at=None,
        deadline=None,
    )


async def _rebuild(
    redis: Redis,
    config_id: int,
    target: ScheduleState,
    *,
    now: datetime,
    event: str,
    details: dict[str, Any] | None = None,
) -> ScheduleState:
    """Replace every queued entry of the config with `target`'s next fires, atomically."""
    written = target

    async def write(pipe: Pipeline) -> None:
        nonlocal written
        queued = await schedule_state.queued_entries(pipe, config_id)
        old = [entry_id for entry_id, _ in queued]
        fires: list[Fire] = []
        if target.status == "active" and target.plan is not None:
            plan = Plan.model_validate(target.plan)
            # A fire being sent right now is counted by its after_fire: keep its place.
            sending = await _being_sent(pipe, config_id, [fire for _, fire in queued], now=now)
            left = remaining_runs(plan.max_runs, target)
            count = capped(QUEUE_DEPTH, None if left is None else left - sending)
            fires = upcoming(plan.timing(), after=now, anchor=target.anchor, count=count)
        written = replace(target, next_run_at=fires[0].at if fires else None)
        pipe.multi()
        for entry_id in old:
            schedule_state.queue_entry_removal(pipe, config_id, entry_id)
        queue_fires(pipe, config_id, written, fires)
        schedule_state.queue_state(pipe, config_id, written)
        extra: dict[str, Any] = {"note": written.note} if written.note else {}
        history.queue_append(
            pipe, config_id, event, at=now, status=written.status, **extra, **(details or {})
        )

    await redis.transaction(
        write, schedule_state.state_key(config_id), schedule_state.config_entries_key(config_id)
    )
    return written


async def apply_action(
    redis: Redis,
    config: TaskConfig,
    action: Action,
    *,
    now: datetime | None = None,
    note: str | None = None,
    event: str | None = None,
    details: dict[str, Any] | None = None,
) -> ScheduleState:
    """Run one action of the state machine; 409 when it does not fit the current status.

    `note` is kept as the schedule's note until the next action; `event` names the history
    event when it is not the action's own (a pause on failure is `auto_paused`)."""
    # Whole seconds: the scheduler loop ticks on whole seconds, so an interval grid anchored
    # there fires exactly on time instead of up to a second late.
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    try:
        async with redis.lock(
            schedule_state.action_lock_key(config.id), timeout=30, blocking_timeout=10
        ):
            return await _apply_locked(
                redis, config, action, now=now, note=note, event=event, details=details
            )
    except LockError as exc:
        raise Conflict(f"Another action on config {config.id} is still running") from exc


async def _apply_locked(
    redis: Redis,
    config: TaskConfig,
    action: Action,
    *,
    now: datetime,
    note: str | None,
    event: str | None,
    details: dict[str, Any] | None,
) -> ScheduleState:
    state = await schedule_state.read_state(redis, config.id)
    allowed, result = TRANSITIONS[action]
    if state.status not in allowed:
        raise Conflict(f"Cannot {action} config {config.id}: its schedule is {state.status}")
    if config.scheduler_type == "manual" and action in ("start", "resume", "reload"):
        raise Conflict(f"Config {config.id} is manual: it is only run by hand, never scheduled")
    status: ScheduleStatus = result or state.status  # type: ignore[assignment]
    plan = plan_of(config) if action in ("start", "reload") else Plan.model_validate(state.plan)
    anchor = now if action == "start" else state.anchor
    if status == "active":
        _require_a_future_fire(plan, now=now, anchor=anchor)
    target = ScheduleState(
        status=status,
        generation=state.generation + 1,
        anchor=anchor,
        plan=plan.model_dump(),
        note=note,
        fired=0 if action == "start" else state.fired,  # max_runs counts from the start
    )
    return await _rebuild(
        redis, config.id, target, now=now, event=event or ACTION_EVENTS[action], details=details
    )


async def _being_sent(
    pipe: Pipeline, config_id: int, fires: list[datetime], *, now: datetime
) -> int:
    past = [fire for fire in fires if fire <= now]
    claims = await schedule_state.claim_values(pipe, config_id, past)
    return sum(1 for claim in claims if claim is not None and not schedule_state.is_recorded(claim))


def _require_a_future_fire(plan: Plan, *, now: datetime, anchor: datetime | None) -> None:
    if upcoming(plan.timing(), after=now, anchor=anchor, count=1):
        return
    key = "run_date" if plan.scheduler_type == "date" else "end_at"
    raise InvalidInput(
        f"The schedule has no future fire time ({key} has passed)",
        fields=[
            {
                "loc": ["schedule_config", key],
                "msg": f"{key} must be in the future to start the schedule",
                "type": "value_error",
            }
        ],
    )


async def reload_if_scheduled(redis: Redis, config: TaskConfig) -> ScheduleState:
    """After a config change: rebuild an active or paused schedule from the new settings."""
    state = await schedule_state.read_state(redis, config.id)
    if state.status not in ("active", "paused"):
        return state
    if config.scheduler_type == "manual":
        return await apply_action(redis, config, "stop")
    return await apply_action(redis, config, "reload")
