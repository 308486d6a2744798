"""Reachability of the three backing services (checked concurrently with a short timeout),
and the system status: those checks plus a few counts from each service that answered."""

import asyncio
import logging
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from taskiq_aio_pika import AioPikaBroker

from backend import broker as broker_client
from backend.models import TaskConfig
from backend.schemas.executions import SystemStatus
from backend.services import executions
from backend.services.redis import scheduler as schedule_state
from backend.services.redis import timeout as live_runs

logger = logging.getLogger(__name__)

CHECK_TIMEOUT = 2.0


async def _database(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session:
        await session.execute(text("SELECT 1"))


async def _outcome(name: str, check: Awaitable[object]) -> str:
    try:
        await asyncio.wait_for(check, CHECK_TIMEOUT)
    except Exception as exc:
        logger.warning("health check %s failed: %s: %s", name, type(exc).__name__, exc)
        return "unavailable"
    return "ok"


async def check_all(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    broker: AioPikaBroker,
) -> dict[str, str]:
    names = ("database", "redis", "broker")
    outcomes = await asyncio.gather(
        _outcome("database", _database(sessionmaker)),
        _outcome("redis", redis.ping()),
        _outcome("broker", broker_client.ping(broker)),
    )
    return dict(zip(names, outcomes, strict=True))


async def system_status(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    broker: AioPikaBroker,
) -> SystemStatus:
    """Counts come only from the services that answered the reachability check."""
    checks = await check_all(sessionmaker=sessionmaker, redis=redis, broker=broker)
    status = SystemStatus(checks=checks)
    if checks["database"] == "ok":
        async with sessionmaker() as session:
            status.configs = await session.scalar(select(func.count()).select_from(TaskConfig))
            recent = await executions.recent(session, since=datetime.now(UTC) - timedelta(hours=1))
        status.runs_last_hour = recent.runs
        status.success_rate_last_hour = recent.success_rate
    if checks["redis"] == "ok":
        status.active_schedules = await schedule_state.count(redis, "active")
        status.runs_in_flight = await live_runs.count_in_flight(redis)
    return status
