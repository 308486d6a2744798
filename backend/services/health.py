"""Reachability of the three backing services, checked concurrently with a short timeout."""

import asyncio
import logging
from collections.abc import Awaitable

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from taskiq_aio_pika import AioPikaBroker

from backend import broker as broker_client

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
