"""The schedule source the scheduler process reads: taskiq's ScheduleSource over the
scheduler store's fire entries (backend/services/redis/scheduler.py), indexed by fire time.

It implements the ABC directly rather than subclassing taskiq-redis's ListRedisScheduleSource:
every hook of that class would be overridden, and its add/delete_schedule would write keys
nothing reads. Entries are written only by the schedule rules
(backend/services/schedule_entries.py).

- get_schedules returns the entries due from `now - grace` to `now + lookahead` (one
  ZRANGEBYSCORE, and an MGET per 1,000 entries not parsed already: an entry never changes
  under its id), so a fresh entry is in memory before its second comes;
- pre_send claims the fire (SET NX on config + fire time, after checking the schedule is
  still active and the entry current) for a lease (SCHEDULE_CLAIM_LEASE_SECONDS): a replica
  that loses the claim does not send, but raises ClaimHeld, so the sender looks again when
  the lease ends: sent by then, it is done; still unsent (its claimer died between claim and
  publish), it takes the claim over and sends the fire itself, within the misfire grace;
- the claims of the sends started together (a minute boundary can bring thousands) go to
  Redis in one pipeline per batch, which ends with a WAIT for REDIS_CLAIM_REPLICAS replicas
  (with Sentinel), so a claim the fire is sent on survives a failover;
- post_send marks the claim `sent` at once (reconcile tells a dead sender's sent fires from
  its unconfirmed ones by that; one pipeline per batch), then, once the burst of sends has
  passed, drops the entry and queues the following occurrence; a claim taken over meanwhile
  (this replica published after its lease) is not marked: the replica that took it over
  sends and books the fire, and the workers drop the second copy as a duplicate;
- send_failed (called by backend/scheduler/sender.py when the publish raised) gives the
  claim back;
- the claims, the sent marks, each fire's bookkeeping and send_failed's writes wait out a
  Redis outage (a Sentinel failover takes seconds) for REDIS_OUTAGE_WAIT_SECONDS, retried
  (backend/redis_retry.py) rather than failing a fire under way; each is safe to run again
  after a reply lost with the connection: a claim batch wins back its own claims (by the
  batch's attempt name), a sent mark finds the claim its own, after_fire its claim recorded;
- startup reconciles (misfires, chains to top up, deleted configs) and then does so each minute.
"""

import asyncio
import contextlib
import logging
import os
import socket
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg
from pydantic import ValidationError
from redis.exceptions import LockError
from taskiq import ScheduledTask, ScheduleSource
from taskiq.exceptions import ScheduledTaskCancelledError

from backend import metrics, redis_retry
from backend.batching import Batcher
from backend.config import Settings
from backend.scheduler import database, late
from backend.scheduler.reconcile import SETTLE, reconcile
from backend.services import alert_inbox, schedule_entries
from backend.services.redis import history
from backend.services.redis import scheduler as schedule_state
from backend.services.redis.keys import client_for

logger = logging.getLogger(__name__)

CLAIM_BATCH_SIZE = 1000  # claims (and sent marks) per Redis pipeline
# Entries read (one MGET) and parsed at a time: a boundary's 10,000 read at once would hold
# all their JSON (some 5 MB) beside the parsed entries at the peak.
READ_CHUNK = 1000
AFTER_FIRE_CONCURRENCY = 20  # after_fire transactions in flight at once, each on a connection

T = TypeVar("T")


class ClaimHeld(ScheduledTaskCancelledError):
    """Another replica holds the fire's claim, unsent, for `retry_in` more seconds."""

    def __init__(self, retry_in: float) -> None:
        super().__init__()
        self.retry_in = retry_in


class TaskhubScheduleSource(ScheduleSource):
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        # No I/O here: Redis connects on first use; the database pool is opened in startup.
        # Both are closed in shutdown.
        self._redis = client_for(settings)
        self._pool: asyncpg.Pool | None = None
        self._owner = f"{socket.gethostname()}:{os.getpid()}"
        self._reconciler: asyncio.Task[None] | None = None
        self._late_checks: asyncio.Task[None] | None = None
        self._suspects: frozenset[int] = frozenset()  # configs found missing by the last pass
        self._parsed: dict[str, ScheduledTask] = {}
        self._claims = Batcher(self._claim_batch, max_size=CLAIM_BATCH_SIZE)
        self._marks = Batcher(self._mark_batch, max_size=CLAIM_BATCH_SIZE)
        # The bookkeeping after a send waits for the burst of sends to pass (10 s at most),
        # so a minute boundary's thousands of publishes are not slowed by it: the next
        # QUEUE_DEPTH - 1 fires of each schedule are queued already.
        self._bookkeeping = Batcher(
            self._after_fire_batch, max_size=CLAIM_BATCH_SIZE, quiet=0.05, max_wait=10.0
        )

    @property
    def _grace(self) -> timedelta:
        return timedelta(seconds=self._settings.misfire_grace_seconds)

    @property
    def _database(self) -> asyncpg.Pool:
        assert self._pool is not None, "opened in startup"
        return self._pool

    async def startup(self) -> None:
        self._pool = await database.open_pool(self._settings.database_url)
        # No fire of this process is in flight yet: settle every past entry at once.
        await self.reconcile_once(settle=timedelta(0))
        self._reconciler = asyncio.create_task(self._reconcile_forever())
        self._late_checks = asyncio.create_task(
            late.run_forever(self._redis, self._pool, self._settings)
        )

    async def shutdown(self) -> None:
        # Sends already made still get their bookkeeping (fired event, next fire queued).
        for batcher in (self._claims, self._marks, self._bookkeeping):
            await batcher.drain()
        for loop in (self._reconciler, self._late_checks):
            if loop is not None:
                loop.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await loop
        await self._redis.aclose()
        if self._pool is not None:
            await self._pool.close()

    async def get_schedules(self) -> list[ScheduledTask]:
        now = datetime.now(UTC)
        lookahead = timedelta(seconds=self._settings.schedule_lookahead_seconds)
        redis = self._redis
        ids = await schedule_state.due_ids(redis, start=now - self._grace, end=now + lookahead)
        unread = [i for i in ids if i not in self._parsed]
        known = dict(self._parsed)
        for start in range(0, len(unread), READ_CHUNK):
            new = await schedule_state.entries_data(redis, unread[start : start + READ_CHUNK])
            for entry_id, data in new.items():
                try:
                    known[entry_id] = _compact(ScheduledTask.model_validate_json(data))
                except ValidationError:  # one bad entry must not stop every other schedule
                    logger.exception("skipping a malformed schedule entry: %.300s", data)
        self._parsed = {i: known[i] for i in ids if i in known}
        return list(self._parsed.values())

    async def pre_send(self, task: ScheduledTask) -> None:
        claim = await self._claims.submit(task.schedule_id)
        outcome = claim.outcome
        if outcome in ("ok", "taken_over"):
            if outcome == "taken_over":
                metrics.fire_recovered(task.task_name)
                logger.warning(
                    "fire %s: its claimer stopped before sending it; sending it now",
                    task.schedule_id,
                )
            return
        if outcome == "held":
            raise ClaimHeld(claim.lease_left)
        if outcome in ("inactive", "stale"):
            await schedule_entries.drop_stale_entry(self._redis, task.schedule_id)
        if outcome == "sent":
            metrics.fire_claimed_elsewhere(task.task_name)
        logger.info("fire %s not sent by this replica: %s", task.schedule_id, outcome)
        raise ScheduledTaskCancelledError

    async def post_send(self, task: ScheduledTask) -> None:
        if not await self._marks.submit(task.schedule_id):
            logger.warning(
                "fire %s was taken over by another replica while this one published it (after "
                "its %g s lease): that replica books it; workers drop the second copy",
                task.schedule_id, self._settings.schedule_claim_lease_seconds,
            )  # fmt: skip
            return
        _, _, fire_ms = schedule_state.parse_schedule_id(task.schedule_id)
        metrics.fire_sent(task.task_name, lag=time.time() - fire_ms / 1000)
        await self._bookkeeping.submit((task.schedule_id, task.task_id))

    def within_grace(self, task: ScheduledTask, *, after: float) -> bool:
        """Whether the fire will still be younger than the grace period in `after` seconds."""
        _, _, fire_ms = schedule_state.parse_schedule_id(task.schedule_id)
        fire_at = schedule_state.from_ms(fire_ms)
        return datetime.now(UTC) + timedelta(seconds=after) < fire_at + self._grace

    async def _while_unreachable(
        self, call: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any
    ) -> T:
        within = self._settings.redis_outage_wait_seconds
        return await redis_retry.while_unreachable(call, *args, within=within, **kwargs)

    async def _claim_batch(self, entry_ids: list[str]) -> list[schedule_state.Claim]:
        return await self._while_unreachable(
            schedule_state.claim_fires,
            self._redis,
            entry_ids,
            owner=self._owner,
            lease_seconds=self._settings.schedule_claim_lease_seconds,
            attempt=uuid.uuid4().hex[:12],  # the same on each try of this batch
            replicas=self._settings.claim_replicas,
            wait_ms=self._settings.redis_claim_wait_ms,
        )

    async def _mark_batch(self, entry_ids: list[str]) -> list[bool]:
        return await self._while_unreachable(
            schedule_state.mark_sent, self._redis, entry_ids, owner=self._owner
        )

    async def _after_fire_batch(self, sent: list[tuple[str, str | None]]) -> list[None]:
        for start in range(0, len(sent), AFTER_FIRE_CONCURRENCY):
            chunk = sent[start : start + AFTER_FIRE_CONCURRENCY]
            await asyncio.gather(*(self._after_fire(entry, task_id) for entry, task_id in chunk))
        return [None] * len(sent)

    async def _after_fire(self, entry_id: str, task_id: str | None) -> None:
        await self._while_unreachable(
            schedule_entries.after_fire, self._redis, entry_id, task_id=task_id, owner=self._owner
        )

    async def send_failed(self, task: ScheduledTask, error: Exception, *, retry_in: float) -> bool:
        """The send after a won claim raised: give the claim back and say whether to retry in
        `retry_in` seconds (the fire will still be younger than the grace period then)."""
        config_id, _, fire_ms = schedule_state.parse_schedule_id(task.schedule_id)
        fire_at = schedule_state.from_ms(fire_ms)
        retry = self.within_grace(task, after=retry_in)
        await self._while_unreachable(
            schedule_state.release_claim, self._redis, task.schedule_id, owner=self._owner
        )
        await self._while_unreachable(
            history.append, self._redis, config_id, "send_failed", fire_at=fire_at.isoformat(),
            task_id=task.task_id, error=_describe(error), retry=retry,
        )  # fmt: skip
        logger.error(
            "sending fire %s (task %s, config %s) failed: %s; %s",
            task.schedule_id, task.task_name, config_id, _describe(error),
            "retrying" if retry else "giving up: past the grace period, reconcile counts it missed",
        )  # fmt: skip
        return retry

    async def reconcile_once(self, *, settle: timedelta = SETTLE) -> None:
        redis = self._redis
        try:
            # One replica at a time; another replica's pass is just as good.
            async with redis.lock(schedule_state.reconcile_lock_key(), timeout=60, blocking=False):
                self._suspects = await reconcile(
                    redis,
                    now=datetime.now(UTC),
                    grace=self._grace,
                    existing=self._existing,
                    suspects=self._suspects,
                    settle=settle,
                    on_missed=self._missed,
                )
        except LockError:
            logger.debug("reconcile skipped: another scheduler is reconciling")

    async def _missed(self, config_id: int, fires: list[datetime]) -> None:
        await alert_inbox.note_missed(self._database, config_id, fires)

    async def _existing(self, config_ids: set[int]) -> set[int]:
        return await database.existing_configs(self._database, config_ids)

    async def _reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(self._settings.reconcile_interval_seconds)
            try:
                await self.reconcile_once()
            except Exception:  # the loop must outlive one failed pass; the next one retries
                logger.exception("reconcile failed")


def _compact(task: ScheduledTask) -> ScheduledTask:
    """The entry as held in memory until its fire leaves the window read (at a minute boundary
    with 10,000 schedules, 10,000 of them): 1.1 kB rather than 2.2 kB.

    - pydantic gives each model its own set of the fields its JSON named, 728 bytes, a third
      of the entry; every entry names the same fields, so they share one frozenset. Only
      exclude_unset dumps and copies read it, and an assignment to a field (which adds to
      it) would raise rather than change every entry's: nothing assigns to an entry.
    - the labels' strings repeat from entry to entry (trigger, overlap policy, ack type, and
      the fire time, one for every entry of a boundary): interned, each is held once.
    """
    fields = frozenset(task.__pydantic_fields_set__)
    object.__setattr__(task, "__pydantic_fields_set__", _FIELD_SETS.setdefault(fields, fields))
    for name, value in task.labels.items():
        if isinstance(value, str):
            task.labels[name] = sys.intern(value)  # same keys: the dict is not resized
    return task


_FIELD_SETS: dict[frozenset[str], frozenset[str]] = {}


def _describe(error: BaseException) -> str:
    """taskiq wraps the broker's error in SendTaskError: name the cause."""
    cause = error.__cause__ or error
    return f"{type(cause).__name__}: {cause}"
