"""System status: reachability of the backing services and a few counts from each."""

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from taskiq_aio_pika import AioPikaBroker

from backend.models import TaskConfig
from backend.services import executions, health
from backend.services.redis import scheduler as schedule_state
from backend.services.redis import timeout as live_runs


@dataclass(frozen=True)
class SystemStatus:
    checks: dict[str, str]
    configs: int | None = None
    active_schedules: int | None = None
    runs_in_flight: int | None = None
    runs_last_hour: int | None = None
    success_rate_last_hour: float | None = None


async def read(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    broker: AioPikaBroker,
) -> SystemStatus:
    """Counts come only from the services that answered the reachability check."""
    checks = await health.check_all(sessionmaker=sessionmaker, redis=redis, broker=broker)
    status = SystemStatus(checks=checks)
    if checks["database"] == "ok":
        async with sessionmaker() as session:
            configs = await session.scalar(select(func.count()).select_from(TaskConfig))
            recent = await executions.recent(session, since=datetime.now(UTC) - timedelta(hours=1))
        status = replace(
            status,
            configs=configs,
            runs_last_hour=recent.runs,
            success_rate_last_hour=recent.success_rate,
        )
    if checks["redis"] == "ok":
        status = replace(
            status,
            active_schedules=await schedule_state.count(redis, "active"),
            runs_in_flight=await live_runs.count_in_flight(redis),
        )
    return status
