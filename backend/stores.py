"""Engine, session factory and Redis client for the worker and scheduler processes."""

from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from backend.config import Settings
from backend.db import create_engine, create_sessionmaker
from backend.services.redis.keys import create_client


@dataclass(frozen=True)
class Stores:
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis

    @classmethod
    def open(cls, settings: Settings) -> "Stores":
        """Connections are made on first use, so this does no I/O."""
        engine = create_engine(settings.database_url)
        return cls(engine, create_sessionmaker(engine), create_client(settings.redis_url))

    async def close(self) -> None:
        await self.redis.aclose()
        await self.engine.dispose()
