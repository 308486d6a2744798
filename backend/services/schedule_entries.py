"""A config's queued fire entries: the plan they are built from, queueing them, and the
bookkeeping after each fire (`after_fire`: drop the entry, say it fired, queue the following
occurrence), shared by the schedule actions (backend/services/schedules.py) and the
scheduler process.

Each active config keeps its next QUEUE_DEPTH fire times queued as one-shot entries; the
scheduler sends an entry when its time comes (after a claim, see the scheduler store) and
then queues the following occurrence. Every change is one Redis transaction that WATCHes
the config's state and entries, so actions, fires and reconcile never interleave halfway.

Apart from the actions, which build a plan from a config row, so that the scheduler imports
neither the ORM nor the run and validation rules behind it (SQLAlchemy: some 21 MiB of RSS).
"""

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from taskiq import ScheduledTask

from backend.services.redis import history
from backend.services.redis import scheduler as schedule_state
from backend.services.redis.scheduler import ScheduleState, ScheduleView
from backend.triggers.fires import Fire, Timing, upcoming
from backend.triggers.options import max_runs_of
from backend.triggers.specs import ScheduleSpec, parse_schedule

QUEUE_DEPTH = 3


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

    def spec(self) -> ScheduleSpec:
        return parse_schedule(self.scheduler_type, self.schedule_config)

    def timing(self) -> Timing:
        # Seeded with the config id: jitter differs between configs, never between replicas.
        return Timing(self.spec(), seed=int(self.labels["config_id"]))

    @property
    def max_runs(self) -> int | None:
        return max_runs_of(self.schedule_config)


def remaining_runs(max_runs: int | None, state: ScheduleState | ScheduleView) -> int | None:
    """How many more scheduled fires `max_runs` allows (None: no limit); an inactive
    schedule's count starts anew (a start sets `fired` to 0)."""
    if max_runs is None:
        return None
    return max(0, max_runs - (state.fired if state.status != "inactive" else 0))


def counted(state: ScheduleState, fires: list[datetime]) -> ScheduleState:
    """The state with these sent fires counted; a fire from before the last start (sent just
    before a stop and start, recorded after) belongs to the earlier run and is not."""
    own = [fire for fire in fires if state.anchor is None or fire > state.anchor]
    return replace(state, fired=state.fired + len(own)) if own else state


def capped(count: int, left: int | None) -> int:
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
    redis: Redis,
    entry_id: str,
    *,
    task_id: str | None = None,
    owner: str | None = None,
    now: datetime | None = None,
) -> None:
    """Called once the claimed entry was sent: drop it, queue the following occurrence.

    With the sender's `owner`, its claim (`sent|<owner>`) is marked recorded with the
    `fired` event, as a catch-up marks it: run again after its reply was lost (a dropped
    connection, a failover), this finds the entry gone and its claim recorded, and does not
    write the event, nor count the fire, twice.

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
            if owner is not None:
                schedule_state.queue_recorded(pipe, config_id, fire_at, schedule_state.SENT + owner)
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
        left = remaining_runs(plan.max_runs, state)
        ahead = sorted(fire for _, fire in others if fire > now)
        caught_ids = {other for other, _, _ in caught}
        uncounted = [other for other, _ in others if other not in caught_ids]
        count = capped(QUEUE_DEPTH - len(ahead), None if left is None else left - len(uncounted))
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
    spent = (
        state.plan is not None
        and remaining_runs(Plan.model_validate(state.plan).max_runs, state) == 0
    )
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
