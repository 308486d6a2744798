"""Throughput, kick -> record committed, for Taskhub, the raw aio-pika limit and Celery.

All three use a classic durable queue with x-max-priority 9, persistent messages, ack on
receipt, prefetch 10, and messages of the same size; each run starts its consumer first,
then publishes N messages and stops the clock when N are consumed (raw) or N rows are
committed in PostgreSQL (Taskhub, Celery).
"""

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable

import aio_pika
import asyncpg

from bench import common
from bench.database import create_migrated_database, drop_database, plain_dsn

PREFETCH = 10
PUBLISH_CONCURRENCY = 100  # publisher confirms in flight, the same for every contender


async def in_flight(publish: Callable[[int], Awaitable[None]], n: int) -> None:
    """Publish n messages keeping PUBLISH_CONCURRENCY confirms outstanding."""
    for start in range(0, n, PUBLISH_CONCURRENCY):
        await asyncio.gather(
            *(publish(i) for i in range(start, min(n, start + PUBLISH_CONCURRENCY)))
        )


def taskiq_like_body(i: int) -> bytes:
    """A message of the size Taskhub sends for demo.sleep(seconds=0)."""
    return json.dumps(
        {
            "task_id": f"{i:032x}",
            "task_name": "demo.sleep",
            "labels": {"config_id": 1, "trigger": "manual", "timeout": 300, "priority": 5},
            "labels_types": None,
            "args": [],
            "kwargs": {"seconds": 0},
        }
    ).encode()


async def raw_aio_pika(n: int) -> float:
    """The physical limit: publish + consume N messages, no task runtime, no database."""
    queue_name = f"bench-raw-{common.RUN_ID}"
    connection = await aio_pika.connect_robust(common.AMQP_URL)
    async with connection:
        publish_channel = await connection.channel()
        consume_channel = await connection.channel()
        await consume_channel.set_qos(prefetch_count=PREFETCH)
        queue = await consume_channel.declare_queue(
            queue_name, durable=True, arguments={"x-max-priority": 9}
        )
        done = asyncio.Event()
        received = 0

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal received
            await message.ack()
            json.loads(message.body)
            received += 1
            if received == n:
                done.set()

        await queue.consume(on_message)
        started = time.perf_counter()

        async def publish(i: int) -> None:
            message = aio_pika.Message(
                taskiq_like_body(i), delivery_mode=aio_pika.DeliveryMode.PERSISTENT, priority=5
            )
            await publish_channel.default_exchange.publish(message, routing_key=queue_name)

        await in_flight(publish, n)
        await asyncio.wait_for(done.wait(), timeout=300)
        elapsed = time.perf_counter() - started
        await consume_channel.queue_delete(queue_name)
    return n / elapsed


async def _count_rows(dsn: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        return await connection.fetchval("SELECT count(*) FROM task_executions")
    finally:
        await connection.close()


async def celery(n: int) -> float:
    """The peer: Celery prefork (2 processes) + a task_postrun row per run."""
    queue = f"bench-celery-{common.RUN_ID}"
    os.environ["BENCH_QUEUE"] = queue  # read when bench.celery_app is imported
    from bench import celery_app  # imported here: only this bench needs Celery

    env = common.isolated_env("celery")
    url = env["DATABASE_URL"]
    await create_migrated_database(url)
    worker_env = {**env, "BENCH_QUEUE": queue, "BENCH_PG_DSN": plain_dsn(url)}
    worker = common.start(
        ["celery", "-A", "bench.celery_app", "worker", "--pool", "prefork", "-c", "2",
         "-Q", queue, "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
        worker_env, "celery",
    )  # fmt: skip
    try:
        await asyncio.sleep(0)
        await common.wait_for(
            lambda: _celery_ready(celery_app.app), timeout=60, what="celery worker start"
        )
        started = time.perf_counter()
        await asyncio.to_thread(_celery_publish, celery_app, n)
        dsn = plain_dsn(url)
        await common.wait_for(lambda: _has_rows(dsn, n), timeout=600, what=f"{n} celery records")
        elapsed = time.perf_counter() - started
    finally:
        common.stop(worker)
        await drop_database(url)
    return n / elapsed


async def _celery_ready(app: object) -> bool:
    replies = await asyncio.to_thread(app.control.ping, timeout=0.5)  # type: ignore[attr-defined]
    return bool(replies)


def _celery_publish(celery_app: object, n: int) -> None:
    task = celery_app.sleep  # type: ignore[attr-defined]
    with task.app.producer_or_acquire() as producer:
        for _ in range(n):
            task.apply_async(kwargs={"seconds": 0}, producer=producer, priority=5)


async def _has_rows(dsn: str, n: int) -> bool:
    return await _count_rows(dsn) >= n
