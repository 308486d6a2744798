"""Reconcile the queued fire entries with the schedule states, on scheduler start and each minute.

- misfires: when queued fires went unsent (no scheduler ran, or every send failed), the
  config's occurrences from the first unsent one up to now are worked out from its spec; the
  newest, if younger than the grace period and not sent, is queued to be sent now (several
  missed fires are coalesced into it); every other unsent occurrence is skipped and counted
  in one `missed` history event; the schedule then continues at its next future occurrence;
- a past entry whose claim is marked sent (its sender died before queueing the next):
  dropped, its `fired` event caught up;
- a past entry claimed but not marked sent is left alone within the grace period (its
  sender is still at it, or its lease will end and a replica take the fire over and send
  it); past the grace nobody sent it in time: missed, with that reason;
- an active config with fewer than QUEUE_DEPTH future entries is topped up;
- entries, state and status of configs missing from the database are removed, but only when
  two passes in a row find them missing: a config being created writes its schedule to Redis
  just before its database commit, so one pass may see it in Redis and not yet in the database.

Cost per pass with nothing to do: two SMEMBERS, one SQL query, and one pipelined round trip
of ZRANGEs for all active configs; only configs with a past entry or a short queue are
repaired, each in its own WATCH transaction.
"""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from backend import metrics
from backend.services import schedule_entries
from backend.services.redis import history
from backend.services.redis import scheduler as schedule_state
from backend.services.redis.scheduler import ScheduleState
from backend.triggers.fires import Fire, Timing, occurrences, upcoming

logger = logging.getLogger(__name__)

# A scheduler down for long on a fine-grained schedule: count at most this many missed
# occurrences one by one (the `missed` event then says `count_capped`).
MISSED_SCAN_LIMIT = 10_000
# Periodic passes leave entries due in the last seconds alone: a live scheduler is sending them.
SETTLE = timedelta(seconds=2)
PIPELINE_CHUNK = 1000

ExistingIds = Callable[[set[int]], Awaitable[set[int]]]
# Told of each config's missed fires once they are counted (the alert inbox hears of them).
MissedReport = Callable[[int, list[datetime]], Awaitable[None]]


async def reconcile(
    redis: Redis,
    *,
    now: datetime,
    grace: timedelta,
    existing: ExistingIds,
    suspects: frozenset[int] = frozenset(),
    settle: timedelta = SETTLE,
    on_missed: MissedReport | None = None,
) -> frozenset[int]:
    """One pass. `existing` answers which of the given config ids are in the database;
    `suspects` are the ids the previous pass found missing. Returns this pass's suspects."""
    known = await schedule_state.ids_with_status(redis, "inactive")  # every config not inactive
    active = await schedule_state.ids_with_status(redis, "active")
    # The database is read after Redis, so a config committed in between counts as existing.
    present = await existing(known)
    missing = known - present
    for config_id in sorted(missing & suspects):
        logger.info("reconcile: removing the schedule of deleted config %s", config_id)
        await schedule_entries.forget(redis, config_id)
    for config_id in await _needing_repair(redis, sorted(active & present), now=now - settle):
        await _repair(redis, config_id, now=now, grace=grace, settle=settle, on_missed=on_missed)
    return frozenset(missing - suspects)


async def _needing_repair(redis: Redis, config_ids: list[int], *, now: datetime) -> list[int]:
    """Configs with an entry due before `now` or fewer than QUEUE_DEPTH entries after it."""
    found = []
    for start in range(0, len(config_ids), PIPELINE_CHUNK):
        chunk = config_ids[start : start + PIPELINE_CHUNK]
        async with redis.pipeline(transaction=False) as pipe:
            for config_id in chunk:
                pipe.zrange(schedule_state.config_entries_key(config_id), 0, -1, withscores=True)
            results = await pipe.execute()
        cutoff = schedule_state.to_ms(now)
        for config_id, rows in zip(chunk, results, strict=True):
            ahead = sum(1 for _, score in rows if score > cutoff)
            if ahead < len(rows) or ahead < schedule_entries.QUEUE_DEPTH:
                found.append(config_id)
    return found


async def _repair(
    redis: Redis,
    config_id: int,
    *,
    now: datetime,
    grace: timedelta,
    settle: timedelta,
    on_missed: MissedReport | None,
) -> None:
    cutoff = now - settle
    missed: list[datetime] = []
    task_type = "unknown"

    async def write(pipe: Pipeline) -> None:
        nonlocal missed, task_type
        missed = []
        state = await schedule_state.read_state(pipe, config_id)
        if state.status != "active" or state.plan is None:
            # Not written by a schedule action (they always store the plan): nothing to fire.
            logger.warning("reconcile: config %s is %s without a plan", config_id, state.status)
            return
        entries = await schedule_state.queued_entries(pipe, config_id)
        past = [(entry_id, fire) for entry_id, fire in entries if fire <= cutoff]
        ahead = [fire for _, fire in entries if fire > cutoff]
        if past:
            # A replica claiming one of these meanwhile makes this transaction start over.
            await pipe.watch(
                *[schedule_state.claim_key(config_id, schedule_state.to_ms(f)) for _, f in past]
            )
        claims = await schedule_state.claim_values(pipe, config_id, [fire for _, fire in past])
        unsent, confirmed, abandoned, sending = _by_claim(past, claims, oldest=now - grace)
        plan = schedule_entries.Plan.model_validate(state.plan)
        timing, task_type = plan.timing(), plan.task_name
        state = schedule_entries.counted(state, [fire for _, fire in confirmed])
        room = _room(plan, state, kept=len(ahead) + len(sending))
        misfire = Misfire()
        if unsent:
            misfire = await _misfire(
                pipe, config_id, timing,
                state=state, first=unsent[0], now=now, grace=now - grace,
                in_flight={fire for fire in ahead if fire <= now}, may_send=room != 0,
            )  # fmt: skip
        coalesced = [misfire.coalesced] if misfire.coalesced else []
        fresh = _fresh(timing, state, ahead=ahead, now=now, room=room, coalesced=len(coalesced))
        coalesced_at = [fire.at for fire in coalesced]
        pending = sorted(ahead + [fire.at for fire in fresh] + coalesced_at)
        kept = sending | {entry_id for entry_id, _ in confirmed}
        dropped = [
            entry_id for entry_id, fire in past if fire not in coalesced_at and entry_id not in kept
        ]
        queued_fires = {fire for _, fire in entries}
        to_queue = fresh + [fire for fire in coalesced if fire.at not in queued_fires]
        unchanged = pending and pending[0] == state.next_run_at
        if unchanged and not (dropped or to_queue or misfire.missed or confirmed):
            return
        missed = misfire.missed + [fire for _, fire in abandoned]
        pipe.multi()
        for entry_id in dropped:
            schedule_state.queue_entry_removal(pipe, config_id, entry_id)
        claim_of = {entry_id: claim for (entry_id, _), claim in zip(past, claims, strict=True)}
        for entry_id, fire in confirmed:
            schedule_entries.queue_catch_up_fired(
                pipe, config_id, entry_id, fire, claim_of[entry_id]
            )
        schedule_entries.queue_fires(pipe, config_id, state, to_queue)
        _queue_missed(pipe, config_id, now=now, misfire=misfire, abandoned=abandoned)
        _queue_next(
            pipe, config_id, state, pending, now=now, sending=bool(sending), counted=bool(confirmed)
        )

    await redis.transaction(
        write, schedule_state.state_key(config_id), schedule_state.config_entries_key(config_id)
    )
    if missed:  # counted once the transaction went through (a WATCH conflict re-runs `write`)
        metrics.fires_were_missed(task_type, len(missed))
        if on_missed is not None:
            await on_missed(config_id, sorted(missed))


Entries = list[tuple[str, datetime]]


def _fresh(
    timing: Timing,
    state: ScheduleState,
    *,
    ahead: list[datetime],
    now: datetime,
    room: int | None,
    coalesced: int,
) -> list[Fire]:
    """The fires to queue after the ones ahead: up to QUEUE_DEPTH in all (an entry in flight
    counts as ahead: its post_send queues the following one), within max_runs' room."""
    count = schedule_entries.QUEUE_DEPTH - len(ahead)
    if room is not None:
        count = max(0, min(count, room - coalesced))
    return upcoming(timing, after=max([now, *ahead]), anchor=state.anchor, count=count)


def _room(plan: schedule_entries.Plan, state: ScheduleState, *, kept: int) -> int | None:
    """How many fires max_runs lets reconcile queue beside the `kept` entries (each to be
    sent once, and counted then); None without max_runs."""
    left = schedule_entries.remaining_runs(plan.max_runs, state)
    return None if left is None else left - kept


def _queue_next(
    pipe: Pipeline,
    config_id: int,
    state: ScheduleState,
    pending: list[datetime],
    *,
    now: datetime,
    sending: bool,
    counted: bool,
) -> None:
    if pending or not sending:  # a fire still being sent may yet queue the next one
        schedule_entries.queue_next_run(pipe, config_id, state, pending, now=now)
    elif counted:  # caught-up fires counted, even when the rest is left to a sender
        schedule_state.queue_state(pipe, config_id, state)


def _queue_missed(
    pipe: Pipeline, config_id: int, *, now: datetime, misfire: "Misfire", abandoned: Entries
) -> None:
    """One `missed` event for the fires a dead sender claimed, one for those nobody sent."""
    if abandoned:
        history.queue_append(
            pipe, config_id, "missed", at=now, count=len(abandoned),
            first=abandoned[0][1].isoformat(), last=abandoned[-1][1].isoformat(),
            reason="claimed by a scheduler that stopped before RabbitMQ confirmed it, and "
            "no replica sent it again within the grace: not known to be sent",
        )  # fmt: skip
    if misfire.missed:
        history.queue_append(
            pipe, config_id, "missed", at=now, count=len(misfire.missed),
            first=misfire.missed[0].isoformat(), last=misfire.missed[-1].isoformat(),
            **({"count_capped": True} if misfire.capped else {}),
        )  # fmt: skip
        logger.warning(
            "config %s: %d fires missed (%s .. %s)%s",
            config_id, len(misfire.missed), misfire.missed[0], misfire.missed[-1],
            f", the newest coalesced into {misfire.coalesced.at}" if misfire.coalesced else "",
        )  # fmt: skip


def _by_claim(
    past: Entries, claims: list[str | None], *, oldest: datetime
) -> tuple[list[datetime], Entries, Entries, set[str]]:
    """Past entries by their claim: unclaimed (their fire times); `sent` (its sender died
    before the bookkeeping: catch up its `fired`); a replica's claim past the grace (its
    sender died before RabbitMQ confirmed, and no replica took the claim over in time: not
    known sent, so missed); a replica's claim within the grace (still being sent or retried,
    or to be taken over once its lease ends: left alone)."""
    unsent: list[datetime] = []
    confirmed: Entries = []
    abandoned: Entries = []
    sending: set[str] = set()
    for (entry_id, fire), claim in zip(past, claims, strict=True):
        if claim is None:
            unsent.append(fire)
        elif schedule_state.is_sent(claim):
            confirmed.append((entry_id, fire))
        elif fire < oldest:
            abandoned.append((entry_id, fire))
        else:
            sending.add(entry_id)
    return unsent, confirmed, abandoned, sending


@dataclass(frozen=True)
class Misfire:
    """What to do about the unsent past fires of one config."""

    coalesced: Fire | None = None  # the one fire to send now
    missed: list[datetime] = field(default_factory=list)  # every other unsent one, skipped
    capped: bool = False


async def _misfire(
    pipe: Pipeline,
    config_id: int,
    timing: Timing,
    *,
    state: ScheduleState,
    first: datetime,
    now: datetime,
    grace: datetime,
    in_flight: set[datetime],
    may_send: bool = True,
) -> Misfire:
    """Every occurrence from the first unsent queued fire up to now, but for those a live
    scheduler is sending right now (`in_flight`): the newest is sent if it is younger than
    the grace period (`grace` is its oldest allowed time), nothing is in flight and max_runs
    leaves room (`may_send`); the others not sent (no claim) are missed."""
    fires = occurrences(
        timing, since=first, until=now, anchor=state.anchor, limit=MISSED_SCAN_LIMIT
    )
    capped = len(fires) >= MISSED_SCAN_LIMIT
    if capped:  # the scan stopped early: add the occurrences inside the grace window
        recent = occurrences(
            timing, since=max(grace, fires[-1].at), until=now, anchor=state.anchor, limit=1000
        )
        fires += [fire for fire in recent if fire.at > fires[-1].at]
    fires = [fire for fire in fires if fire.at not in in_flight]
    claims = await schedule_state.claim_values(pipe, config_id, [fire.at for fire in fires])
    sent = [claim is not None for claim in claims]
    newest_unsent = (
        bool(fires) and not sent[-1] and fires[-1].at >= grace and not in_flight and may_send
    )
    coalesced = fires[-1] if newest_unsent else None
    unsent = [fire for fire, was_sent in zip(fires, sent, strict=True) if not was_sent]
    missed = [fire.at for fire in unsent if fire != coalesced]
    return Misfire(coalesced=coalesced, missed=missed, capped=capped)
