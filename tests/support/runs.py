"""Lookups of what runs left behind: execution records and history events."""

from typing import Any

from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.models import TaskExecution
from backend.services.redis import history


async def records(
    sessionmaker: async_sessionmaker[AsyncSession], config_id: int
) -> list[TaskExecution]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(TaskExecution)
            .where(TaskExecution.config_id == config_id)
            .order_by(TaskExecution.id)
        )
        return list(rows.scalars())


async def events(redis: Redis, config_id: int, event: str | None = None) -> list[dict[str, Any]]:
    items, _ = await history.read(redis, config_id)
    return [item for item in items if event is None or item["event"] == event]
