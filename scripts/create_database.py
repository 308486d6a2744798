"""Create the application database named in DATABASE_URL if it does not exist."""

import asyncio
import sys

import asyncpg
from sqlalchemy.engine import make_url

from backend.config import get_settings


async def create_database(url: str) -> bool:
    """Return True when the database was created, False when it already existed."""
    target = make_url(url)
    admin = target.set(drivername="postgresql", database="postgres")
    connection = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        exists = await connection.fetchval(
            "SELECT 1 FROM pg_database WHERE datname = $1", target.database
        )
        if exists:
            return False
        await connection.execute(f'CREATE DATABASE "{target.database}"')
        return True
    finally:
        await connection.close()


if __name__ == "__main__":
    created = asyncio.run(create_database(get_settings().database_url))
    print("database created" if created else "database exists", file=sys.stderr)
