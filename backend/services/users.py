"""User rules: lookups and the idempotent first superuser."""

import logging

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.models import User
from backend.security import hash_password

logger = logging.getLogger(__name__)


async def get_by_email(session: AsyncSession, *, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == email))


async def ensure_first_superuser(session: AsyncSession, *, email: str, password: str) -> None:
    """Create the first superuser unless that email exists; safe with several API replicas."""
    if await get_by_email(session, email=email) is not None:
        return
    statement = (
        insert(User)
        .values(
            email=email,
            username=email.split("@", 1)[0],
            hashed_password=hash_password(password),
            is_active=True,
            is_superuser=True,
        )
        .on_conflict_do_nothing()
    )
    created = await session.execute(statement)
    await session.commit()
    if created.rowcount:  # type: ignore[attr-defined]
        logger.info("created first superuser %s", email)
