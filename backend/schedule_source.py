"""The schedule source the scheduler process reads: taskiq-redis's ListRedisScheduleSource,
with its data-key layout and JSON serializer, indexed by fire time instead of by minute.

- get_schedules returns the entries due from `now - grace` to `now + lookahead` (one
  ZRANGEBYSCORE + one MGET), so a fresh entry is in memory before its second comes;
- pre_send claims the fire (SET NX on config + fire time, after checking the schedule is
  still active and the entry current): a replica that loses the claim does not send;
- post_send drops the entry and queues the following occurrence;
- startup reconciles (misfires, chains to top up, deleted configs) and then does so each minute.
"""

import asyncio
import contextlib
import logging
import os
import socket
import time
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis
from redis.exceptions import LockError
from sqlalchemy import select
from taskiq import ScheduledTask
from taskiq.exceptions import ScheduledTaskCancelledError
from taskiq.serializers import JSONSerializer
from taskiq_redis import ListRedisScheduleSource

from backend import metrics
from backend.config import Settings
from backend.db import create_engine, create_sessionmaker
from backend.models import TaskConfig
from backend.services import schedules
from backend.services.redis import scheduler as store
from backend.services.schedule_reconcile import reconcile

logger = logging.getLogger(__name__)


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
            raw = await store.due_entries(redis, start=now - self._grace, end=now + lookahead)
        return [ScheduledTask.model_validate_json(item) for item in raw]

    async def pre_send(self, task: ScheduledTask) -> None:
        async with self._redis() as redis:
            outcome = await store.claim_fire(redis, task.schedule_id, owner=self._owner)
            if outcome in ("inactive", "stale"):
                await schedules.drop_stale_entry(redis, task.schedule_id)
        if outcome == "claimed":
            metrics.fire_claimed_elsewhere(task.task_name)
        if outcome != "ok":
            logger.info("fire %s not sent: %s", task.schedule_id, outcome)
            raise ScheduledTaskCancelledError

    async def post_send(self, task: ScheduledTask) -> None:
        _, _, fire_ms = store.parse_schedule_id(task.schedule_id)
        metrics.fire_sent(task.task_name, lag=time.time() - fire_ms / 1000)
        async with self._redis() as redis:
            await schedules.after_fire(redis, task.schedule_id, task_id=task.task_id)

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
