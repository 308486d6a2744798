"""Helpers that create and remove what a test session owns (database, keys, queues)."""

import os

import aio_pika
import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from backend.services.redis.keys import create_client
from scripts.create_database import create_database

__all__ = ["cleanup", "create_database", "drop_database", "migrate"]


def alembic_config(url: str) -> Config:
    config = Config("alembic.ini")
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False
    return config


def migrate(url: str, revision: str) -> None:
    command.upgrade(alembic_config(url), revision)


async def drop_database(url: str) -> None:
    target = make_url(url)
    admin = target.set(drivername="postgresql", database="postgres")
    connection = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
    finally:
        await connection.close()


async def delete_redis_keys(prefix: str) -> None:
    redis = create_client(os.environ["REDIS_URL"])
    try:
        async for name in redis.scan_iter(match=f"{prefix}:*", count=1000):
            await redis.delete(name)
    finally:
        await redis.aclose()


async def delete_queues(queue: str, exchange: str) -> None:
    connection = await aio_pika.connect(
        os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
    )
    async with connection:
        channel = await connection.channel()
        for name in (queue, f"{queue}.dead_letter", f"{queue}.delay"):
            await channel.queue_delete(name)
        await channel.exchange_delete(exchange)


async def cleanup(url: str) -> None:
    await drop_database(url)
    await delete_redis_keys(os.environ["REDIS_PREFIX"])
    await delete_queues(os.environ["RABBITMQ_QUEUE"], os.environ["RABBITMQ_EXCHANGE"])
