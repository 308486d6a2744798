"""The last active admin cannot be demoted or deactivated, also by two requests at once.

On a database of its own: the shared test database has admins other tests rely on.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.db import create_engine, create_sessionmaker
from backend.errors import Conflict
from backend.models import User
from backend.schemas.users import UserUpdate
from backend.services import users
from backend.services.audit import Actor
from tests.support import infra
from tests.support.auth import create_user


@pytest.fixture
async def own_database(test_database: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url = make_url(test_database)
    url = url.set(database=f"{url.database}_a{uuid.uuid4().hex[:6]}")
    rendered = url.render_as_string(hide_password=False)
    await infra.create_database(rendered)
    await asyncio.to_thread(infra.migrate, rendered, "head")
    engine = create_engine(rendered)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()
        await infra.drop_database(rendered)


async def update(
    sessionmaker: async_sessionmaker[AsyncSession], redis: Redis, user_id: int, **fields: object
) -> User:
    async with sessionmaker() as session:
        user = await session.get(User, user_id)
        assert user is not None
        actor = Actor(user_id=0, username="someone-else")
        return await users.update(
            session, redis, user=user, data=UserUpdate.model_validate(fields), actor=actor
        )


async def test_the_last_admin_stays(
    own_database: async_sessionmaker[AsyncSession], redis: Redis
) -> None:
    async with own_database() as session:
        admin = await create_user(session, username="only-admin", role="admin")
    for change in ({"role": "operator"}, {"is_active": False}, {"is_superuser": False}):
        with pytest.raises(Conflict, match="last active admin"):
            await update(own_database, redis, admin.id, **change)
    async with own_database() as session:
        other = await create_user(session, username="second-admin", role="admin")
    demoted = await update(own_database, redis, admin.id, role="operator")
    assert demoted.role == "operator"
    with pytest.raises(Conflict, match="last active admin"):
        await update(own_database, redis, other.id, is_active=False)


async def test_two_demotions_at_once_leave_one_admin(
    own_database: async_sessionmaker[AsyncSession], redis: Redis
) -> None:
    async with own_database() as session:
        first = await create_user(session, username="admin-a", role="admin")
        second = await create_user(session, username="admin-b", role="admin")
    outcomes = await asyncio.gather(
        update(own_database, redis, first.id, role="viewer"),
        update(own_database, redis, second.id, role="viewer"),
        return_exceptions=True,
    )
    assert sorted(type(o).__name__ for o in outcomes) == ["Conflict", "User"]
    async with own_database() as session:
        roles = {u: (await session.get(User, u)).role for u in (first.id, second.id)}  # type: ignore[union-attr]
    assert sorted(roles.values()) == ["admin", "viewer"]
