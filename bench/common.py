"""Shared bench plumbing: an isolated environment, processes, medians, the results file."""

import asyncio
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import aio_pika
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RUN_ID = uuid.uuid4().hex[:8]
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def isolated_env(name: str) -> dict[str, str]:
    """Environment for one bench: its own database, Redis prefix and queue names."""
    tag = f"bench_{name}_{RUN_ID}"
    return {
        "ENVIRONMENT": "test",
        "DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{tag}",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "REDIS_PREFIX": tag,
        "RABBITMQ_URL": AMQP_URL,
        "RABBITMQ_QUEUE": tag,
        "RABBITMQ_EXCHANGE": tag,
        "JWT_SECRET": "bench-secret-" + "x" * 32,
    }


def log_path(log_name: str) -> Path:
    return Path("/tmp") / f"taskhub-bench-{log_name}-{RUN_ID}.log"  # noqa: S108


def start(
    args: list[str], env: dict[str, str], log_name: str, *, root: Path = ROOT
) -> subprocess.Popen:
    """`root`: the checkout whose code runs (another one, e.g. the baseline, goes first on
    PYTHONPATH, ahead of the editable install of this one)."""
    log = log_path(log_name).open("w")
    code = {"PYTHONPATH": str(root)} if root != ROOT else {}
    return subprocess.Popen(
        [str(BIN / args[0]), *args[1:]],
        cwd=root,
        env={**os.environ, **env, **code},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


async def wait_for(
    probe: Callable[[], Awaitable[bool]], *, timeout: float, what: str, interval: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout
    while not await probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout}s")
        await asyncio.sleep(interval)


async def delete_redis_keys(prefix: str) -> None:
    redis = Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        async for name in redis.scan_iter(match=f"{prefix}:*", count=1000):
            await redis.delete(name)
    finally:
        await redis.aclose()


async def delete_queues(queue: str, exchange: str) -> None:
    """A bench's task queue (and the Taskhub broker's side queues) and its exchange."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        for name in (queue, f"{queue}.dead_letter", f"{queue}.delay"):
            await channel.queue_delete(name)
        await channel.exchange_delete(exchange)


def median(values: list[float]) -> float:
    return statistics.median(values)


def machine() -> str:
    python = platform.python_version()
    return f"{platform.node()} ({platform.machine()}, {os.cpu_count()} cores, Python {python})"
