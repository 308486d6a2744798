"""Reconcile the queued fire entries with the schedule states, on scheduler start and each minute.

- a fire older than the grace period that nobody claimed is dropped with a `missed` event;
  of several fires inside the grace period only the newest is kept (they are coalesced);
- an active config with fewer than QUEUE_DEPTH future entries is topped up (a scheduler that
  died between sending and queueing the next fire would otherwise stop the chain);
- entries, state and status of configs deleted from the database are removed.
"""

import logging
from dataclasses import replace
from datetime import datetime, timedelta

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from backend import metrics
from backend.services import schedules
from backend.services.redis import history
from backend.services.redis import scheduler as store
from backend.services.redis.scheduler import ScheduleState

logger = logging.getLogger(__name__)


async def reconcile(
    redis: Redis, *, now: datetime, grace: timedelta, existing_ids: set[int]
) -> None:
    known = await store.ids_with_status(redis, "inactive")  # every config not inactive
    for config_id in sorted(known - existing_ids):
        logger.info("reconcile: removing the schedule of deleted config %s", config_id)
        await schedules.forget(redis, config_id)
    for config_id in sorted(await store.ids_with_status(redis, "active") & existing_ids):
        await _repair(redis, config_id, now=now, grace=grace)


async def _repair(redis: Redis, config_id: int, *, now: datetime, grace: timedelta) -> None:
    missed: list[datetime] = []
    task_type = "unknown"

    async def write(pipe: Pipeline) -> None:
        nonlocal missed, task_type
        missed = []
        state = ScheduleState.from_hash(await pipe.hgetall(store.state_key(config_id)))
        if state.status != "active" or state.plan is None:
            # Not written by a schedule action (they always store the plan): nothing to fire.
            logger.warning("reconcile: config %s is %s without a plan", config_id, state.status)
            return
        rows = await pipe.zrange(store.config_entries_key(config_id), 0, -1, withscores=True)
        entries = [(entry_id, store.from_ms(score)) for entry_id, score in rows]
        past = [(e, fire) for e, fire in entries if fire <= now]
        future = [fire for _, fire in entries if fire > now]
        keep = [(e, fire) for e, fire in past if fire >= now - grace][-1:]
        dropped = [(e, fire) for e, fire in past if (e, fire) not in keep]
        claimed = await _claimed(pipe, config_id, dropped)
        plan = schedules.Plan.model_validate(state.plan)
        task_type = plan.task_name
        after = max(future, default=now)
        fresh = schedules.upcoming(
            plan.spec(), after=after, anchor=state.anchor, count=schedules.QUEUE_DEPTH - len(future)
        )
        pipe.multi()
        for entry_id, _ in dropped:
            store.queue_entry_removal(pipe, config_id, entry_id)
        missed = [
            fire for (_, fire), was_claimed in zip(dropped, claimed, strict=True) if not was_claimed
        ]
        if missed:
            history.queue_append(
                pipe, config_id, "missed", count=len(missed),
                first=missed[0].isoformat(), last=missed[-1].isoformat(),
            )  # fmt: skip
        schedules.queue_fires(pipe, config_id, state, fresh)
        pending = sorted([fire for _, fire in keep] + future + fresh)
        if pending != sorted(fire for _, fire in entries) or missed:
            store.queue_state(pipe, config_id, _with_next(state, pending))

    await redis.transaction(write, store.state_key(config_id), store.config_entries_key(config_id))
    if missed:  # counted once the transaction went through (a WATCH conflict re-runs `write`)
        metrics.fires_were_missed(task_type, len(missed))


async def _claimed(
    pipe: Pipeline, config_id: int, entries: list[tuple[str, datetime]]
) -> list[bool]:
    """A claimed fire was sent (its sender died before queueing the next): not a miss."""
    result = []
    for _, fire in entries:
        result.append(bool(await pipe.exists(store.claim_key(config_id, store.to_ms(fire)))))
    return result


def _with_next(state: ScheduleState, pending: list[datetime]) -> ScheduleState:
    if pending:
        return replace(state, next_run_at=pending[0])
    return replace(state, status="completed", next_run_at=None)
