"""task_config_count: the triggers keep the number of task configs exact (the unfiltered
list page reads its total there), whatever the statements, rollbacks and concurrency."""

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.support import infra

INSERT = (
    "INSERT INTO task_configs (name, task_type, scheduler_type, schedule_config, parameters)"
    " SELECT 'c-' || gen_random_uuid(), 'demo.sleep', 'manual', '{}', '{}'"
    " FROM generate_series(1, $1)"
)


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _migrate(url: str, revision: str) -> None:
    # alembic's env.py runs its own event loop: not on the test loop's thread.
    await asyncio.to_thread(infra.migrate, url, revision)


@pytest.fixture
async def migrated(empty_database: str) -> AsyncIterator[asyncpg.Connection]:
    await _migrate(empty_database, "head")
    connection = await asyncpg.connect(_dsn(empty_database))
    yield connection
    await connection.close()


async def counted(connection: asyncpg.Connection) -> tuple[int, int]:
    """(the counter, the rows counted) in one snapshot."""
    row = await connection.fetchrow(
        "SELECT (SELECT total FROM task_config_count), (SELECT count(*) FROM task_configs)"
    )
    assert row is not None
    return row[0], row[1]


async def test_the_migration_counts_the_configs_already_there(empty_database: str) -> None:
    await _migrate(empty_database, "0004")
    connection = await asyncpg.connect(_dsn(empty_database))
    try:
        await connection.execute(INSERT, 3)
        await _migrate(empty_database, "head")
        assert await counted(connection) == (3, 3)
    finally:
        await connection.close()


async def test_inserts_deletes_rollbacks_and_truncate_keep_the_count(
    migrated: asyncpg.Connection,
) -> None:
    db = migrated
    assert await counted(db) == (0, 0)
    await db.execute(INSERT, 1)
    await db.execute(INSERT, 250)  # one statement, many rows: one update of the counter
    assert await counted(db) == (251, 251)

    await db.execute("DELETE FROM task_configs WHERE id IN (SELECT id FROM task_configs LIMIT 7)")
    await db.execute("DELETE FROM task_configs WHERE false")  # no row: the counter untouched
    assert await counted(db) == (244, 244)

    rolled_back = db.transaction()
    await rolled_back.start()
    await db.execute(INSERT, 5)
    assert await counted(db) == (249, 249)  # the transaction sees its own rows counted
    await rolled_back.rollback()
    assert await counted(db) == (244, 244)

    await db.execute("TRUNCATE task_configs CASCADE")
    assert await counted(db) == (0, 0)
    await db.execute(INSERT, 2)
    assert await counted(db) == (2, 2)


async def test_concurrent_writers_keep_the_count_exact(
    migrated: asyncpg.Connection, empty_database: str
) -> None:
    async def writer(creates: int, deletes: int) -> None:
        connection = await asyncpg.connect(_dsn(empty_database))
        try:
            async with connection.transaction():
                for _ in range(creates):
                    await connection.execute(INSERT, 1)
                await connection.execute(
                    "DELETE FROM task_configs WHERE id IN"
                    " (SELECT id FROM task_configs ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)",
                    deletes,
                )
        finally:
            await connection.close()

    await migrated.execute(INSERT, 40)
    await asyncio.gather(*(writer(creates=10, deletes=3) for _ in range(4)))
    assert await counted(migrated) == (68, 68)
