"""A migrated database per bench, dropped afterwards."""

import asyncio

from sqlalchemy.engine import make_url

from scripts.create_database import create_database
from tests.support import infra


async def create_migrated_database(url: str) -> None:
    await create_database(url)
    await asyncio.to_thread(infra.migrate, url, "head")


async def drop_database(url: str) -> None:
    await infra.drop_database(url)


def plain_dsn(url: str) -> str:
    """The libpq form of a SQLAlchemy URL, for asyncpg and psycopg."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
