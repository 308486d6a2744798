"""A started schedule's queued fires, as the scheduler's tests read them."""

from datetime import datetime

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession
from taskiq import ScheduledTask

from backend.models import TaskConfig
from backend.services import schedules
from backend.services.redis import history
from backend.services.redis import scheduler as schedule_state
from tests.support.factories import create_config


async def started(session: AsyncSession, redis: Redis, *, now: datetime) -> TaskConfig:
    """A new config every 60 s, started at `now`."""
    config = await create_config(
        session, scheduler_type="interval", schedule_config={"seconds": 60}
    )
    await schedules.apply_action(redis, config, "start", now=now)
    return config


async def first_entry(redis: Redis, config_id: int) -> ScheduledTask:
    entry_id, _ = (await schedule_state.queued_entries(redis, config_id))[0]
    data = await redis.get(schedule_state.data_key(entry_id))
    return ScheduledTask.model_validate_json(data)


async def kinds(redis: Redis, config_id: int) -> list[str]:
    """The config's history events, oldest first."""
    return [e["event"] for e in reversed((await history.read(redis, config_id))[0])]
