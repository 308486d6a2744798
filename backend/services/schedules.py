"""Schedule rules: the action state machine and the queued fire entries of each config.

Each active config keeps its next QUEUE_DEPTH fire times queued as one-shot entries; the
scheduler sends an entry when its time comes (after a claim, see the scheduler store) and
then queues the following occurrence. Every change is one Redis transaction that WATCHes
the config's state and entries, so actions, fires and reconcile never interleave halfway.
"""

import logging
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import LockError
from taskiq import ScheduledTask

from backend.errors import Conflict, InvalidInput
from backend.models import ScheduleStatus, TaskConfig
from backend.services import config_validation, runs
from backend.services.redis import history
from backend.services.redis import scheduler as schedule_state
from backend.services.redis import timeout as live_runs
from backend.services.redis.scheduler import ScheduleState
from backend.triggers.fires import Fire, Timing, upcoming
from backend.triggers.specs import ScheduleSpec, parse_schedule

logger = logging.getLogger(__name__)

QUEUE_DEPTH = 3
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


# pydantic's mypy plugin clashes with a field named like its __init__'s **kwargs; the name is
# part of the plans stored in Redis, so it stays.
class Plan(BaseModel):  # type: ignore[no-redef]
    """What the scheduler needs to fire a config without the database."""

    scheduler_type: str
    schedule_config: dict[str, Any]
    task_name: str
    kwargs: dict[str, Any]
    labels: dict[str, Any]
    late_after_seconds: int | None = None  # the dead-man's switch of the config's alerts

    @classmethod
    def of(cls, config: TaskConfig) -> "Plan":
        return cls(
            scheduler_type=config.scheduler_type,
            schedule_config=config.schedule_config,
            task_name=config.task_type,
            kwargs=config_validation.stored_parameters(config),
            labels=runs.labels_for(config, trigger="scheduled"),
            late_after_seconds=_late_after(config),
        )

    def spec(self) -> ScheduleSpec:
        return parse_schedule(self.scheduler_type, self.schedule_config)

    def timing(self) -> Timing:
        # Seeded with the config id: jitter differs between configs, never between replicas.
        return Timing(self.spec(), seed=int(self.labels["config_id"]))

    @property
    def max_runs(self) -> int | None:
        max_runs = self.schedule_config.get("max_runs")
        return int(max_runs) if max_runs is not None else None


def runs_left(plan: Plan, state: ScheduleState) -> int | None:
    """How many more scheduled fires `max_runs` allows (None: no limit)."""
    if plan.max_runs is None:
        return None
    return max(0, plan.max_runs - state.fired)


def counted(state: ScheduleState, fires: list[datetime]) -> ScheduleState:
    """The state with these sent fires counted; a fire from before the last start (sent just
    before a stop and start, recorded after) belongs to the earlier run and is not."""
    own = [fire for fire in fires if state.anchor is None or fire > state.anchor]
    return replace(state, fired=state.fired + len(own)) if own else state


def _capped(count: int, left: int | None) -> int:
    return max(0, count if left is None else min(count, left))


def fire_task_id(config_id: int, fire_at: datetime) -> str:
    """The task id of a scheduled run: one per (config, fire time), so a duplicate send of a
    fire could never make a second record."""
    return f"s{config_id}-{schedule_state.to_ms(fire_at)}"


_FIRE_TASK_ID = re.compile(r"^s(\d{1,10})-(\d{1,15})$")


def parse_fire_task_id(task_id: str) -> tuple[int, datetime] | None:
    """The config and fire time a scheduled run's task id names; None for any other id."""
    match = _FIRE_TASK_ID.match(task_id)
    if match is None:
        return None
    return int(match[1]), schedule_state.from_ms(int(match[2]))


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


def _late_after(config: TaskConfig) -> int | None:
    alerts = config.alerts or {}
    return alerts.get("late_after_seconds") if "late" in alerts.get("on", []) else None


def _entry(config_id: int, generation: int, plan: Plan, fire: Fire) -> tuple[str, str]:
    entry_id = schedule_state.schedule_id(config_id, generation, fire.at)
    late = {"late_after": plan.late_after_seconds} if plan.late_after_seconds else {}
    task = ScheduledTask(
        task_name=plan.task_name,
        # scheduled_for: the nominal fire time the run is for (the worker records it and
        # passes it to the task's RunContext); fire_at: when it is sent (after jitter).
        labels={
            **plan.labels,
            "fire_at": fire.at.isoformat(),
            "scheduled_for": fire.nominal.isoformat(),
            **late,
        },
        args=[],
        kwargs=plan.kwargs,
        # One task id per fire: even a duplicate send could only ever make one record.
        task_id=fire_task_id(config_id, fire.at),
        schedule_id=entry_id,
        time=fire.at,
    )
    return entry_id, task.model_dump_json()


def queue_fires(pipe: Pipeline, config_id: int, state: ScheduleState, fires: list[Fire]) -> None:
    plan = Plan.model_validate(state.plan)
    for fire in fires:
        entry_id, data = _entry(config_id, state.generation, plan, fire)
        schedule_state.queue_entry(pipe, config_id, entry_id, fire.at, data)


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
            left = runs_left(plan, target)
            count = _capped(QUEUE_DEPTH, None if left is None else left - sending)
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
    plan = Plan.of(config) if action in ("start", "reload") else Plan.model_validate(state.plan)
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


async def forget(redis: Redis, config_id: int) -> None:
    """Remove a deleted config's queued entries and schedule state (its history stays)."""

    async def write(pipe: Pipeline) -> None:
        old = await schedule_state.queued_ids(pipe, config_id)
        pipe.multi()
        for entry_id in old:
            schedule_state.queue_entry_removal(pipe, config_id, entry_id)
        schedule_state.queue_forget(pipe, config_id)

    await redis.transaction(
        write, schedule_state.state_key(config_id), schedule_state.config_entries_key(config_id)
    )


def queue_catch_up_fired(
    pipe: Pipeline, config_id: int, entry_id: str, fire_at: datetime, claim: str | None
) -> None:
    """A fire known sent whose sender died before its bookkeeping (or has not done it yet):
    drop it, say it fired, and mark its claim so that sender's after_fire does not again."""
    schedule_state.queue_entry_removal(pipe, config_id, entry_id)
    schedule_state.queue_recorded(pipe, config_id, fire_at, claim)
    history.queue_append(
        pipe, config_id, "fired", fire_at=fire_at.isoformat(),
        task_id=fire_task_id(config_id, fire_at), recorded_by="reconcile",
    )  # fmt: skip


async def after_fire(
    redis: Redis, entry_id: str, *, task_id: str | None = None, now: datetime | None = None
) -> None:
    """Called once the claimed entry was sent: drop it, queue the following occurrence.

    Only entries still ahead count as queued: a past entry is either claimed (sent by a
    scheduler that died before its bookkeeping: its `fired` event is written here; or still
    being sent, or never sent by one that died: reconcile settles it) or still to be sent (a
    retry, or a misfire reconcile settles), and neither is a next run."""
    config_id, generation, fire_ms = schedule_state.parse_schedule_id(entry_id)
    fire_at = schedule_state.from_ms(fire_ms)

    now = now or datetime.now(UTC)

    async def write(pipe: Pipeline) -> None:
        state = await schedule_state.read_state(pipe, config_id)
        queued = await schedule_state.queued_entries(pipe, config_id)
        others = [(other, fire) for other, fire in queued if other != entry_id]
        past = [(other, fire) for other, fire in others if fire <= now]
        claims = await schedule_state.claim_values(pipe, config_id, [fire for _, fire in past])
        pending = [fire for (_, fire), claim in zip(past, claims, strict=True) if claim is None]
        # The `fired` event is this sender's to write unless a catch-up (a replica's after_fire
        # or a reconcile: both WATCH the entries) wrote it and marked the claim. An entry gone
        # without that mark was dropped by an action (stop, pause, reload) or as stale by a
        # replica that lost the claim, after this send: its `fired` event is still owed.
        caught_up = False
        if all(other != entry_id for other, _ in queued):
            [own_claim] = await schedule_state.claim_values(pipe, config_id, [fire_at])
            caught_up = schedule_state.is_recorded(own_claim)
        caught = [
            (other, other_fire, claim)
            for (other, other_fire), claim in zip(past, claims, strict=True)
            if schedule_state.is_sent(claim)
        ]
        before = state
        state = counted(state, ([] if caught_up else [fire_at]) + [fire for _, fire, _ in caught])
        pipe.multi()
        schedule_state.queue_entry_removal(pipe, config_id, entry_id)
        if not caught_up:
            history.queue_append(
                pipe, config_id, "fired", fire_at=fire_at.isoformat(), task_id=task_id
            )
            late_after = (state.plan or {}).get("late_after_seconds")
            if late_after:
                schedule_state.queue_late_check(
                    pipe, task_id=task_id or fire_task_id(config_id, fire_at), config_id=config_id,
                    due=fire_at + timedelta(seconds=late_after),
                )  # fmt: skip
        for other, other_fire, claim in caught:
            queue_catch_up_fired(pipe, config_id, other, other_fire, claim)
        if state.status != "active" or state.plan is None or state.generation != generation:
            _queue_settled(
                pipe, config_id, state, changed=state != before, others=bool(others), now=now
            )
            return
        plan = Plan.model_validate(state.plan)
        left = runs_left(plan, state)
        ahead = sorted(fire for _, fire in others if fire > now)
        caught_ids = {other for other, _, _ in caught}
        uncounted = [other for other, _ in others if other not in caught_ids]
        count = _capped(QUEUE_DEPTH - len(ahead), None if left is None else left - len(uncounted))
        after = max([fire_at, *(fire for _, fire in others)])
        fresh = upcoming(plan.timing(), after=after, anchor=state.anchor, count=count)
        queue_fires(pipe, config_id, state, fresh)
        queue_next_run(
            pipe, config_id, state, ahead + [fire.at for fire in fresh] or pending, now=now
        )

    await redis.transaction(
        write, schedule_state.state_key(config_id), schedule_state.config_entries_key(config_id)
    )


def _queue_settled(
    pipe: Pipeline,
    config_id: int,
    state: ScheduleState,
    *,
    changed: bool,
    others: bool,
    now: datetime,
) -> None:
    """After a fire of an earlier generation (an action rebuilt the entries meanwhile) or of a
    schedule no longer active: keep its count; when it was the last one max_runs allows, the
    rebuild left its place free, so completing the schedule is this fire's to do."""
    spent = state.plan is not None and runs_left(Plan.model_validate(state.plan), state) == 0
    if state.status == "active" and spent and not others:
        queue_next_run(pipe, config_id, state, [], now=now)
        return
    if changed:
        schedule_state.queue_state(pipe, config_id, state)


def queue_next_run(
    pipe: Pipeline, config_id: int, state: ScheduleState, fires: list[datetime], *, now: datetime
) -> None:
    """The one way a schedule moves on: its next run is the earliest of `fires`, and with
    none left it is `completed` (a one-off that fired, a schedule past its last fire)."""
    if fires:
        schedule_state.queue_state(pipe, config_id, replace(state, next_run_at=min(fires)))
        return
    schedule_state.queue_state(
        pipe, config_id, replace(state, status="completed", next_run_at=None)
    )
    history.queue_append(pipe, config_id, "completed", at=now)


async def drop_stale_entry(redis: Redis, entry_id: str) -> None:
    config_id, _, _ = schedule_state.parse_schedule_id(entry_id)
    async with redis.pipeline(transaction=True) as pipe:
        schedule_state.queue_entry_removal(pipe, config_id, entry_id)
        await pipe.execute()
