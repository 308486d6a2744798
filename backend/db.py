"""Async engine, session factory and reader (built on demand, never at import), ORM base."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def create_engine(url: str, **kwargs: object) -> AsyncEngine:
    return create_async_engine(url, pool_pre_ping=True, **kwargs)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


class Reader:
    """Connections in autocommit for reads that are one statement or a few independent ones,
    from a pool of their own: no BEGIN and ROLLBACK around a read, and a pre-ping of one
    round trip (a connection of the main pool is pinged before it is put in autocommit:
    BEGIN, `;`, ROLLBACK). Under load every round trip waits for the event loop's turn, so
    each one counts. No overflow (an overflow connection is closed when returned: a new
    PostgreSQL backend per read), and handed out first come, first served: SQLAlchemy's
    async pool lets a newcomer take the connection just handed to a waiter, who then queues
    again at the back, so under load a few requests waited seconds."""

    def __init__(self, url: str, *, connections: int) -> None:
        self.engine = create_async_engine(
            url,
            pool_pre_ping=True,
            isolation_level="AUTOCOMMIT",
            pool_size=connections,
            max_overflow=0,
        )
        self._gate = asyncio.Semaphore(connections)

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        async with self._gate, self.engine.connect() as connection:
            yield connection
