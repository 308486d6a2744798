"""Annotated dependencies shared by the routers."""

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from taskiq_aio_pika import AioPikaBroker

from backend.config import Settings
from backend.errors import Forbidden, NotFound, Unauthorized
from backend.models import TaskConfig, User
from backend.schemas.common import Id
from backend.schemas.users import UserRead
from backend.services import auth, users


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.resources.sessionmaker() as session:
        yield session


def get_sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    return request.app.state.resources.sessionmaker


def get_redis(request: Request) -> Redis:
    return request.app.state.resources.redis


def get_broker(request: Request) -> AioPikaBroker:
    return request.app.state.broker


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


SessionDep = Annotated[AsyncSession, Depends(get_session)]
# For checks that must not share the request's session (the health checks run concurrently).
SessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessionmaker)]
RedisDep = Annotated[Redis, Depends(get_redis)]
BrokerDep = Annotated[AioPikaBroker, Depends(get_broker)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/login", auto_error=False)


async def get_current_user(
    token: Annotated[str | None, Depends(oauth2_scheme)],
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
) -> UserRead:
    """The user record comes from the Redis user cache: no SQL while the cache is warm."""
    if token is None:
        raise Unauthorized("Not authenticated")
    return await auth.authenticate(session, redis, settings=settings, token=token)


CurrentUser = Annotated[UserRead, Depends(get_current_user)]


async def get_superuser(user: CurrentUser) -> UserRead:
    if not user.is_superuser:
        raise Forbidden("Superuser privileges required")
    return user


SuperUser = Annotated[UserRead, Depends(get_superuser)]
# For `responses=` of routes taking SuperUser: the OpenAPI schema cannot tell them apart.
SUPERUSER_ONLY: dict[int | str, dict[str, Any]] = {
    403: {"description": "Superuser privileges required"}
}


async def valid_user_id(user_id: Id, session: SessionDep) -> User:
    user = await users.get(session, user_id=user_id)
    if user is None:
        raise NotFound(f"User {user_id} not found")
    return user


ValidUser = Annotated[User, Depends(valid_user_id)]


async def valid_config_id(config_id: Id, session: SessionDep) -> TaskConfig:
    config = await session.get(TaskConfig, config_id)
    if config is None:
        raise NotFound(f"Task config {config_id} not found")
    return config


ValidConfig = Annotated[TaskConfig, Depends(valid_config_id)]
