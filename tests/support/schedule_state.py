"""Put a config's schedule state in place directly, as a schedule action would leave it."""

from redis.asyncio import Redis

from backend.services.redis import scheduler as schedule_state
from backend.services.redis.scheduler import ScheduleState


async def set_schedule_state(redis: Redis, config_id: int, state: ScheduleState) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        schedule_state.queue_state(pipe, config_id, state)
        await pipe.execute()
