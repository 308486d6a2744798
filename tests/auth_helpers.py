"""Bearer headers for tests, minted directly (the login flow has its own tests)."""

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from backend.config import get_settings
from backend.models import User
from backend.security import encode_token, hash_password


def bearer_for(user_id: int) -> dict[str, str]:
    token, _ = encode_token(
        subject=str(user_id),
        token_type="access",
        secret=get_settings().jwt_secret.get_secret_value(),
        lifetime=timedelta(minutes=15),
    )
    return {"Authorization": f"Bearer {token}"}


async def create_user(
    session: AsyncSession, *, username: str, superuser: bool = False, password: str = "password-1"
) -> User:
    user = User(
        email=f"{username}@example.com",
        username=username,
        hashed_password=hash_password(password),
        is_active=True,
        is_superuser=superuser,
    )
    session.add(user)
    await session.commit()
    return user
