from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.models import User
from backend.security import verify_password
from backend.services import users


async def test_first_superuser_exists_after_startup(session: AsyncSession) -> None:
    user = await users.get_by_email(session, email="admin@example.com")
    assert user is not None
    assert user.role == "admin"
    assert user.is_active
    assert user.hashed_password.startswith("$argon2")
    assert verify_password("admin-password", user.hashed_password)


async def test_first_superuser_is_idempotent(session: AsyncSession) -> None:
    email = "second-admin@example.com"
    for _ in range(3):
        await users.ensure_first_superuser(session, email=email, password="one-password")
    await users.ensure_first_superuser(session, email=email, password="other-password")
    count = await session.scalar(select(func.count()).where(User.email == email))
    assert count == 1
    user = await users.get_by_email(session, email=email)
    assert user is not None
    assert verify_password("one-password", user.hashed_password), "password must not be reset"


async def test_first_superuser_whose_local_part_is_taken_still_gets_created(
    session: AsyncSession,
) -> None:
    taken = "taken-name"
    await users.ensure_first_superuser(session, email=f"{taken}@one.example", password="pw-1")
    await users.ensure_first_superuser(session, email=f"{taken}@two.example", password="pw-2")
    second = await users.get_by_email(session, email=f"{taken}@two.example")
    assert second is not None
    assert second.role == "admin"
    assert second.username == f"{taken}@two.example"
