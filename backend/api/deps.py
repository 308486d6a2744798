"""Annotated dependencies shared by the routers."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession
from taskiq_aio_pika import AioPikaBroker

from backend.config import Settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessionmaker() as session:
        yield session


def get_redis(request: Request) -> Redis:
    return request.app.state.redis


def get_broker(request: Request) -> AioPikaBroker:
    return request.app.state.broker


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


SessionDep = Annotated[AsyncSession, Depends(get_session)]
RedisDep = Annotated[Redis, Depends(get_redis)]
BrokerDep = Annotated[AioPikaBroker, Depends(get_broker)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
