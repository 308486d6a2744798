"""The connections the API and the worker hold: the database engine, its sessions, the
reader (reads in autocommit, its own pool, used by the API) and a Redis client.

The API (lifespan) and the worker (startup event) open them with `Resources.open` and close
them with `close`, the same way. The scheduler holds no SQLAlchemy: its schedule source opens
a Redis client and a small asyncpg pool (backend/scheduler/database.py) in its startup.
"""

from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from backend.config import Settings
from backend.db import Reader, create_engine, create_sessionmaker
from backend.services.redis.keys import client_for

READER_CONNECTIONS = 10  # made on first use: the API's, as the worker reads none


@dataclass(frozen=True)
class Resources:
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis
    reader: Reader  # for reads with no transaction (its own pool, in autocommit)

    @classmethod
    def open(cls, settings: Settings, *, pool_size: int = 5) -> "Resources":
        """Connections are made on first use, so this does no I/O."""
        engine = create_engine(settings.database_url, pool_size=pool_size)
        reader = Reader(settings.database_url, connections=READER_CONNECTIONS)
        return cls(engine, create_sessionmaker(engine), client_for(settings), reader)

    async def close(self) -> None:
        await self.redis.aclose()
        await self.engine.dispose()
        await self.reader.engine.dispose()
