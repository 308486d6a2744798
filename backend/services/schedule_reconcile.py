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

from backend.services import schedules
from backend.services.redis import history
from backend.services.redis import scheduler as store
from backend.services.redis.scheduler import ScheduleState

logger = logging.getLogger(__name__)

READ_CHUNK = 1000


async def reconcile(
    redis: Redis, *, now: datetime, grace: timedelta, existing_ids: set[int]
) -> None:
    known = await store.ids_with_status(redis, "inactive")  # every config not inactive
    for config_id in sorted(known - existing_ids):
        logger.info("reconcile: removing the schedule of deleted config %s", config_id)
        await schedules.forget(redis, config_id)
    active = sorted(await store.ids_with_status(redis, "active") & existing_ids)
    for offset in range(0, len(active), READ_CHUNK):
        chunk = active[offset : offset + READ_CHUNK]
        for config_id in await _needing_repair(redis, chunk, now=now, grace=grace):
            await _repair(redis, config_id, now=now, grace=grace)


async def _needing_repair(
    redis: Redis, config_ids: list[int], *, now: datetime, grace: timedelta
) -> list[int]:
    """A first look, one pipeline per chunk: most schedules are sound and need no transaction.

    `_repair` decides again under WATCH; this only skips the configs it would leave as
    they are (a plan, nothing past beyond the one newest fire in the grace period, and
    QUEUE_DEPTH fires queued)."""
    async with redis.pipeline(transaction=False) as pipe:
        for config_id in config_ids:
            pipe.hget(store.state_key(config_id), "plan")
            pipe.zrange(store.config_entries_key(config_id), 0, -1, withscores=True)
        found = await pipe.execute()
    needing = []
    for i, config_id in enumerate(config_ids):
        plan, rows = found[2 * i], found[2 * i + 1]
        fires = [store.from_ms(score) for _, score in rows]
        past = [fire for fire in fires if fire <= now]
        future = len(fires) - len(past)
        sound_past = not past or (len(past) == 1 and past[0] >= now - grace)
        # A past fire inside the grace period is being sent (or about to be): its post-send
        # queues the following fire, so it counts towards the queue depth. Repairing it here
        # would race thousands of post-sends right after a busy minute boundary.
        if not plan or not sound_past or future + len(past) < schedules.QUEUE_DEPTH:
            needing.append(config_id)
    return needing


async def _repair(redis: Redis, config_id: int, *, now: datetime, grace: timedelta) -> None:
    async def write(pipe: Pipeline) -> None:
        state = ScheduleState.from_hash(await pipe.hgetall(store.state_key(config_id)))
        if state.status != "active" or state.plan is None:
            # Not written by a schedule action (they always store the plan): nothing to fire.
            logger.warning("reconcile: config %s is %s without a plan", config_id, state.status)
            return
        rows = await pipe.zrange(store.config_entries_key(config_id), 0, -1, withscores=True)
        entries = [(entry_id, store.from_ms(score)) for entry_id, score in rows]
        past = [(e, fire) for e, fire in entries if fire <= now]
        future = [fire for _, fire in entries if fire > now]
        claims = await _claims(pipe, config_id, past)
        # A claimed fire is its sender's for the grace period (it may still be sending, or
        # be waiting to do its bookkeeping); after that its claim tells whether it was sent.
        unclaimed = [entry for entry, claim in zip(past, claims, strict=True) if claim is None]
        settled = [
            (entry, claim)
            for entry, claim in zip(past, claims, strict=True)
            if claim is not None and entry[1] < now - grace
        ]
        keep = [(e, fire) for e, fire in unclaimed if fire >= now - grace][-1:]
        missed = [fire for e, fire in unclaimed if (e, fire) not in keep]
        sent = [fire for (_, fire), claim in settled if claim == store.SENT]
        unconfirmed = [fire for (_, fire), claim in settled if claim != store.SENT]
        plan = schedules.Plan.model_validate(state.plan)
        after = max(future, default=now)
        fresh = schedules.upcoming(
            plan.spec(), after=after, anchor=state.anchor, count=schedules.QUEUE_DEPTH - len(future)
        )
        pipe.multi()
        removed = [e for e, fire in unclaimed if fire in missed] + [e for (e, _), _ in settled]
        for entry_id in removed:
            store.queue_entry_removal(pipe, config_id, entry_id)
        _queue_outcomes(pipe, config_id, missed=missed, sent=sent, unconfirmed=unconfirmed)
        schedules.queue_fires(pipe, config_id, state, fresh)
        left = [fire for e, fire in entries if e not in removed and fire <= now]
        pending = sorted(left + future + fresh)
        if pending != sorted(fire for _, fire in entries) or removed:
            store.queue_state(pipe, config_id, _with_next(state, pending))

    await redis.transaction(write, store.state_key(config_id), store.config_entries_key(config_id))


def _queue_outcomes(
    pipe: Pipeline,
    config_id: int,
    *,
    missed: list[datetime],
    sent: list[datetime],
    unconfirmed: list[datetime],
) -> None:
    """History for the fires reconcile removes: missed, or sent by a sender that died."""
    if missed:
        history.queue_append(
            pipe, config_id, "missed", count=len(missed), reason="no scheduler sent it in time",
            first=missed[0].isoformat(), last=missed[-1].isoformat(),
        )  # fmt: skip
    for fire in sent:  # its sender died before writing the event itself
        task_id = schedules.fire_task_id(config_id, fire)
        history.queue_append(pipe, config_id, "fired", fire_at=fire.isoformat(), task_id=task_id)
    if unconfirmed:
        history.queue_append(
            pipe, config_id, "missed", count=len(unconfirmed),
            reason="its scheduler stopped after claiming it: not known to be sent, never resent",
            first=unconfirmed[0].isoformat(), last=unconfirmed[-1].isoformat(),
        )  # fmt: skip


async def _claims(
    pipe: Pipeline, config_id: int, entries: list[tuple[str, datetime]]
) -> list[str | None]:
    """Each fire's claim: None (unclaimed), SENT (the send was confirmed), or its claimer."""
    result = []
    for _, fire in entries:
        claim = await pipe.get(store.claim_key(config_id, store.to_ms(fire)))
        result.append(None if claim is None else str(claim))
    return result


def _with_next(state: ScheduleState, pending: list[datetime]) -> ScheduleState:
    if pending:
        return replace(state, next_run_at=pending[0])
    return replace(state, status="completed", next_run_at=None)
