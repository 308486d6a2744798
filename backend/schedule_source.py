"""The schedule source the scheduler process reads: taskiq-redis's ListRedisScheduleSource,
with its data-key layout and JSON serializer, indexed by fire time instead of by minute.

- get_schedules returns the entries due from `now - grace` to `now + lookahead` (one
  ZRANGEBYSCORE, and one MGET for the entries not parsed already: an entry never changes
  under its id), so a fresh entry is in memory before its second comes;
- pre_send claims the fire (SET NX on config + fire time, after checking the schedule is
  still active and the entry current): a replica that loses the claim does not send;
- post_send marks the claim `sent` at once, then drops the entry and queues the following
  occurrence (reconcile tells a dead sender's sent fires from its unconfirmed ones by that);
- claims and post_sends of the sends started together (a minute boundary can bring
  thousands) are batched: one pipeline of claims, one transaction of post_sends per batch;
- startup reconciles (misfires, chains to top up, deleted configs) and then does so each minute.
"""

import asyncio
import contextlib
import logging
import os
import socket
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis
from redis.exceptions import LockError
from sqlalchemy import select
from taskiq import ScheduledTask
from taskiq.exceptions import ScheduledTaskCancelledError
from taskiq.serializers import JSONSerializer
from taskiq_redis import ListRedisScheduleSource

from backend.batching import Batcher
from backend.config import Settings
from backend.db import create_engine, create_sessionmaker
from backend.models import TaskConfig
from backend.services import schedules
from backend.services.redis import scheduler as store
from backend.services.schedule_reconcile import reconcile

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000


class TaskhubScheduleSource(ListRedisScheduleSource):
    def __init__(self, settings: Settings) -> None:
        super().__init__(
            settings.redis_url,
            prefix=store.source_prefix(),
            serializer=JSONSerializer(),
            skip_past_schedules=True,
            decode_responses=True,
        )
        self._settings = settings
        self._owner = f"{socket.gethostname()}:{os.getpid()}"
        self._reconciler: asyncio.Task[None] | None = None
        self._engine = create_engine(settings.database_url, pool_size=2)
        self._sessionmaker = create_sessionmaker(self._engine)
        self._parsed: dict[str, ScheduledTask] = {}
        self._claims = Batcher(self._claim_batch, max_size=BATCH_SIZE)
        self._marks = Batcher(self._mark_batch, max_size=BATCH_SIZE)
        # Bookkeeping after a send waits for the burst of sends to pass (10 s at most): the
        # next QUEUE_DEPTH - 1 fires of each config are queued already.
        self._sent = Batcher(self._after_send_batch, max_size=BATCH_SIZE, quiet=0.05, max_wait=10.0)

    def _redis(self) -> Redis:
        return Redis(connection_pool=self._connection_pool)

    @property
    def _grace(self) -> timedelta:
        return timedelta(seconds=self._settings.misfire_grace_seconds)

    async def startup(self) -> None:
        await super().startup()
        await self.reconcile_once()
        self._reconciler = asyncio.create_task(self._reconcile_forever())

    async def shutdown(self) -> None:
        if self._reconciler is not None:
            self._reconciler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconciler
        await self._engine.dispose()
        await self._connection_pool.disconnect()

    async def get_schedules(self) -> list[ScheduledTask]:
        now = datetime.now(UTC)
        lookahead = timedelta(seconds=self._settings.schedule_lookahead_seconds)
        async with self._redis() as redis:
            ids = await store.due_ids(redis, start=now - self._grace, end=now + lookahead)
            new = await store.entries_data(redis, [i for i in ids if i not in self._parsed])
        known = {**self._parsed}
        known.update((i, ScheduledTask.model_validate_json(data)) for i, data in new.items())
        self._parsed = {i: known[i] for i in ids if i in known}
        return list(self._parsed.values())

    async def pre_send(self, task: ScheduledTask) -> None:
        outcome = await self._claims.submit(task.schedule_id)
        if outcome in ("inactive", "stale"):
            async with self._redis() as redis:
                await schedules.drop_stale_entry(redis, task.schedule_id)
        if outcome != "ok":
            logger.info("fire %s not sent: %s", task.schedule_id, outcome)
            raise ScheduledTaskCancelledError

    async def post_send(self, task: ScheduledTask) -> None:
        sent_at = datetime.now(UTC)
        await self._marks.submit(task.schedule_id)
        await self._sent.submit(schedules.Sent(task.schedule_id, task.task_id, sent_at))

    async def _claim_batch(self, entry_ids: list[str]) -> list[str]:
        async with self._redis() as redis:
            return await store.claim_fires(redis, entry_ids, owner=self._owner)

    async def _mark_batch(self, entry_ids: list[str]) -> list[None]:
        async with self._redis() as redis:
            await store.mark_sent(redis, entry_ids)
        return [None] * len(entry_ids)

    async def _after_send_batch(self, sent: list[schedules.Sent]) -> list[None]:
        async with self._redis() as redis:
            await schedules.after_fires(redis, sent)
        return [None] * len(sent)

    async def reconcile_once(self) -> None:
        async with self._redis() as redis:
            try:
                # One replica at a time; another replica's pass is just as good.
                async with redis.lock(store.reconcile_lock_key(), timeout=60, blocking=False):
                    async with self._sessionmaker() as session:
                        ids = set(await session.scalars(select(TaskConfig.id)))
                    await reconcile(
                        redis, now=datetime.now(UTC), grace=self._grace, existing_ids=ids
                    )
            except LockError:
                logger.debug("reconcile skipped: another scheduler is reconciling")

    async def _reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(self._settings.reconcile_interval_seconds)
            try:
                await self.reconcile_once()
            except Exception:  # the loop must outlive one failed pass; the next one retries
                logger.exception("reconcile failed")
