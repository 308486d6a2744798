"""Bearer headers for tests, minted directly (the login flow has its own tests)."""

import uuid
from datetime import timedelta

import httpx
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy.ext.asyncio import AsyncSession

from backend.config import get_settings
from backend.models import Role, User
from backend.security import encode_token, hash_password

# Argon2id at its lowest cost, for the test process: at pwdlib's recommended cost each hash or
# verify takes half a second on the test machine, and the API tests log in hundreds of times.
# A hash carries its own parameters, so a user created here signs in as well to any API process
# a test starts (those hash at the recommended cost).
CHEAP_HASHER = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))

# Session-long: `superuser_headers` is minted once per session, and a loaded machine takes
# longer than an access token's 15 minutes over the whole suite.
SESSION_TOKEN_LIFETIME = timedelta(hours=6)


def bearer_for(user_id: int) -> dict[str, str]:
    token, _ = encode_token(
        subject=str(user_id),
        token_type="access",
        secret=get_settings().jwt_secret.get_secret_value(),
        lifetime=SESSION_TOKEN_LIFETIME,
    )
    return {"Authorization": f"Bearer {token}"}


async def create_user(
    session: AsyncSession,
    *,
    username: str,
    role: Role = "viewer",
    superuser: bool = False,
    password: str = "password-1",
) -> User:
    """`superuser=True` is `role="admin"`, as in the API."""
    user = User(
        email=f"{username}@example.com",
        username=username,
        hashed_password=hash_password(password),
        is_active=True,
        role="admin" if superuser else role,
    )
    session.add(user)
    await session.commit()
    return user


def unique_username(stem: str = "user") -> str:
    """Tests share one database, so every user they create gets its own name."""
    return f"{stem}-{uuid.uuid4().hex[:10]}"


async def login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )


async def login_pair(client: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    response = await login(client, username, password)
    assert response.status_code == 200, response.text
    return response.json()


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}
