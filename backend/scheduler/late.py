"""The dead-man's switch: a sent fire of a config with a `late` alert is looked at again
`late_after_seconds` after its fire time; not recorded by then, it goes to the alert inbox.

Checks are taken atomically from Redis, so with any number of replicas each fire is checked
by one replica, once.
"""

import asyncio
import logging
from datetime import UTC, datetime

import asyncpg
from redis.asyncio import Redis

from backend.config import Settings
from backend.services import alert_inbox, schedule_entries
from backend.services.redis import scheduler as schedule_state

logger = logging.getLogger(__name__)

BATCH = 500


async def check_once(redis: Redis, pool: asyncpg.Pool, *, now: datetime | None = None) -> int:
    due = await schedule_state.claim_late_checks(redis, now=now or datetime.now(UTC), limit=BATCH)
    checks = [
        (config_id, task_id, fire[1])
        for config_id, task_id in due
        if (fire := schedule_entries.parse_fire_task_id(task_id)) is not None
    ]
    await alert_inbox.note_late(pool, checks)
    return len(due)


async def run_forever(redis: Redis, pool: asyncpg.Pool, settings: Settings) -> None:
    while True:
        try:
            await check_once(redis, pool)
        except Exception:  # the loop must outlive one failed pass; claimed checks are lost
            logger.exception("late checks failed")
        await asyncio.sleep(settings.late_check_interval_seconds)
