from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from backend.db import Base
from tests.support import infra


async def _diff_and_tables(url: str) -> tuple[list, set[str]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:

            def inspect_sync(sync_connection):
                context = MigrationContext.configure(
                    sync_connection, opts={"compare_type": True, "compare_server_default": True}
                )
                return (
                    compare_metadata(context, Base.metadata),
                    set(inspect(sync_connection).get_table_names()),
                )

            return await connection.run_sync(inspect_sync)
    finally:
        await engine.dispose()


async def test_upgrade_on_empty_database_matches_models(empty_database: str) -> None:
    await _to_thread(infra.migrate, empty_database, "head")
    diff, tables = await _diff_and_tables(empty_database)
    assert {"users", "task_configs", "task_executions"} <= tables
    assert diff == [], f"models and migrations disagree: {diff}"


async def test_downgrade_to_base_and_back(empty_database: str) -> None:
    from alembic import command

    await _to_thread(infra.migrate, empty_database, "head")
    await _to_thread(command.downgrade, infra.alembic_config(empty_database), "base")
    _, tables = await _diff_and_tables(empty_database)
    assert tables <= {"alembic_version"}
    await _to_thread(infra.migrate, empty_database, "head")
    diff, _ = await _diff_and_tables(empty_database)
    assert diff == []


async def _to_thread(function, *args):
    # alembic's env.py runs its own event loop, so it must not run on the test loop's thread.
    import asyncio

    return await asyncio.to_thread(function, *args)


async def test_superusers_become_admins_and_the_others_viewers(empty_database: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url as parse

    await _to_thread(infra.migrate, empty_database, "0001")
    dsn = parse(empty_database).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            "INSERT INTO users (email, username, hashed_password, is_superuser) VALUES"
            " ('root@example.com', 'root', 'x', true), ('pat@example.com', 'pat', 'x', false)"
        )
        await _to_thread(infra.migrate, empty_database, "head")
        rows = await connection.fetch("SELECT username, role FROM users ORDER BY username")
    finally:
        await connection.close()
    assert [(r["username"], r["role"]) for r in rows] == [("pat", "viewer"), ("root", "admin")]
