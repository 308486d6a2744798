"""The scheduler's few SQL statements (which configs still exist; alert inbox rows, in
backend/services/alert_inbox.py) over a small asyncpg pool: no SQLAlchemy in this process,
some 21 MiB of its RSS.

The pool is opened in the schedule source's startup and closed in its shutdown. It makes
its connections on first use (the scheduler starts without PostgreSQL, which only those
statements need) and closes them once idle for IDLE_SECONDS: the statements come a minute
or more apart, so a connection is seldom kept across a PostgreSQL restart to fail its
next use (what SQLAlchemy's pre-ping did before).
"""

import asyncpg

POOL_SIZE = 2
IDLE_SECONDS = 30.0


def dsn(database_url: str) -> str:
    """asyncpg's form of the settings' SQLAlchemy URL (`postgresql+asyncpg://...`)."""
    scheme, separator, rest = database_url.partition("://")
    return f"{scheme.split('+', 1)[0]}{separator}{rest}"


async def open_pool(database_url: str) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        dsn(database_url),
        min_size=0,
        max_size=POOL_SIZE,
        max_inactive_connection_lifetime=IDLE_SECONDS,
    )


async def existing_configs(pool: asyncpg.Pool, config_ids: set[int]) -> set[int]:
    """Which of these config ids name a config row."""
    if not config_ids:
        return set()
    rows = await pool.fetch(
        "SELECT id FROM task_configs WHERE id = ANY($1::integer[])", list(config_ids)
    )
    return {row["id"] for row in rows}
