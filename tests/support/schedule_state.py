"""Put a config's schedule state in place directly, as a schedule action would leave it; read
what a killed scheduler left claimed."""

from collections.abc import Iterable

from redis.asyncio import Redis

from backend.services import schedule_entries
from backend.services.redis import scheduler as schedule_state
from backend.services.redis.scheduler import ScheduleState


async def set_schedule_state(redis: Redis, config_id: int, state: ScheduleState) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        schedule_state.queue_state(pipe, config_id, state)
        await pipe.execute()


async def unconfirmed_fires(redis: Redis, config_ids: Iterable[int]) -> set[str]:
    """Task ids of the queued fires claimed but not marked sent: read right after a scheduler
    was killed, the fires it may or may not have published, which a replica sends again once
    their lease ends (the workers drop a second copy)."""
    found: set[str] = set()
    for config_id in config_ids:
        fires = [fire for _, fire in await schedule_state.queued_entries(redis, config_id)]
        claims = await schedule_state.claim_values(redis, config_id, fires)
        found |= {
            schedule_entries.fire_task_id(config_id, fire)
            for fire, claim in zip(fires, claims, strict=True)
            if claim is not None and not schedule_state.is_sent(claim)
        }
    return found
