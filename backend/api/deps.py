"""Annotated dependencies shared by the routers (the caller's identity: backend/api/access.py)."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from taskiq_aio_pika import AioPikaBroker

from backend.config import Settings
from backend.db import Reader
from backend.errors import NotFound
from backend.models import TaskConfig, User
from backend.schemas.common import Id
from backend.services import users


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.resources.sessionmaker() as session:
        yield session


# The getters are `async def` though they never wait: FastAPI runs a plain `def` dependency
# in its thread pool, a thread hop per request for a lookup.
async def get_sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    return request.app.state.resources.sessionmaker


async def get_reader(request: Request) -> Reader:
    return request.app.state.resources.reader


async def get_redis(request: Request) -> Redis:
    return request.app.state.resources.redis


async def get_broker(request: Request) -> AioPikaBroker:
    return request.app.state.broker


async def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


SessionDep = Annotated[AsyncSession, Depends(get_session)]
# For checks that must not share the request's session (the health checks run concurrently).
SessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessionmaker)]
# For a read of one statement (and no write): a connection held for that statement only.
ReaderDep = Annotated[Reader, Depends(get_reader)]
RedisDep = Annotated[Redis, Depends(get_redis)]
BrokerDep = Annotated[AioPikaBroker, Depends(get_broker)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]


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
