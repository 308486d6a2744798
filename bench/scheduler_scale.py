"""Scheduler at scale: N configs on an every-minute cron, Taskhub against the stock scheduler.

A send counts when its message reaches RabbitMQ: the bench consumes the scheduler's queue
(no worker runs) and notes each message's arrival; Taskhub's messages carry their fire time
as the `fire_at` label. First the peer (the stock `taskiq scheduler` on taskiq-redis's
ListRedisScheduleSource, N cron entries) for one boundary, then Taskhub
(`taskiq scheduler backend.scheduler:scheduler --update-interval 0`, one process) for
BOUNDARIES consecutive boundaries, with its CPU seconds per minute and its RSS after.
"""

import asyncio
import json
import math
import os
import statistics
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import psutil
from redis.asyncio import Redis

from bench import arrivals as mq
from bench import common, fleet
from bench.database import create_migrated_database, drop_database, plain_dsn
from bench.stock_scheduler import PREFIX_VARIABLE

N = int(os.environ.get("BENCH_SCHEDULER_CONFIGS", "10000"))
BOUNDARIES = int(os.environ.get("BENCH_SCHEDULER_BOUNDARIES", "3"))
TARGET_RATIO = 0.8  # last send, Taskhub / stock scheduler
LEAD_SECONDS = 15  # the peer needs this long to start before its boundary
CPU_BEFORE = 20  # a minute of CPU is measured from 20 s before a boundary to 40 s after
TASKHUB_SCHEDULER = [
    "taskiq", "scheduler", "backend.scheduler:scheduler",
    "--update-interval", "0", "--no-configure-logging",
]  # fmt: skip
STOCK_SCHEDULER = ["taskiq", "scheduler", "bench.stock_scheduler:scheduler", "--skip-first-run"]


def next_boundary(after: float) -> float:
    return (math.floor(after / 60) + 1) * 60.0


async def sleep_until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.time()))


def stamp(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%H:%M:%S")


@dataclass(frozen=True)
class Burst:
    boundary: float
    delays: list[float]  # seconds from the boundary to each message's arrival

    @property
    def p50(self) -> float:
        return statistics.median(self.delays)

    @property
    def p99(self) -> float:
        return statistics.quantiles(self.delays, n=100)[98] if len(self.delays) > 1 else self.p50

    @property
    def last(self) -> float:
        return max(self.delays)


@dataclass(frozen=True)
class TaskhubResult:
    bursts: list[Burst]
    cpu_per_minute: list[float]
    rss_mib: float


@dataclass(frozen=True)
class StockResult:
    burst: Burst
    rss_mib: float


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def rss_mib(process: psutil.Process) -> float:
    return process.memory_info().rss / 2**20


async def wait_ready(process: subprocess.Popen, queue: str, *, until: float, what: str) -> None:
    """A scheduler is ready once its broker declared the queue (sources start before it)."""

    async def probe() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}; see its log")
        return await mq.queue_exists(queue)

    await common.wait_for(probe, timeout=max(1.0, until - time.time()), what=f"{what} ready")


async def collect(arrivals: mq.Arrivals, boundary: float, n: int, *, by_fire_time: bool) -> Burst:
    if by_fire_time:
        fire_at = datetime.fromtimestamp(boundary, UTC)

        def select(found: mq.Arrivals) -> list[mq.Arrival]:
            return found.for_fire(fire_at)
    else:

        def select(found: mq.Arrivals) -> list[mq.Arrival]:
            return found.since(boundary)

    await mq.wait_count(arrivals, select, n, timeout=boundary + 50 - time.time())
    got = select(arrivals)
    task_ids = {a.headers.get("task_id") for a in got}
    if len(task_ids) != len(got):
        raise RuntimeError(f"{len(got) - len(task_ids)} fires at {stamp(boundary)} sent twice")
    return Burst(boundary, [a.at - boundary for a in got])


async def stock_peer(n: int, redis: Redis) -> StockResult:
    env = common.isolated_env("stock")
    prefix = env["REDIS_PREFIX"]
    await _write_stock_entries(redis, prefix, n)
    boundary = next_boundary(time.time() + LEAD_SECONDS)
    process = common.start(STOCK_SCHEDULER, {**env, PREFIX_VARIABLE: prefix}, "stock-scheduler")
    try:
        await wait_ready(process, env["RABBITMQ_QUEUE"], until=boundary - 1, what="stock scheduler")
        async with mq.consuming(env["RABBITMQ_QUEUE"]) as arrivals:
            await sleep_until(boundary)
            burst = await collect(arrivals, boundary, n, by_fire_time=False)
        rss = rss_mib(psutil.Process(process.pid))
    finally:
        common.stop(process)
        await fleet.delete_keys(redis, prefix)
        await common.delete_queues(env["RABBITMQ_QUEUE"], env["RABBITMQ_EXCHANGE"])
    return StockResult(burst, rss)


async def _write_stock_entries(redis: Redis, prefix: str, n: int) -> None:
    """N cron entries in ListRedisScheduleSource's layout (what its add_schedule writes)."""
    for offset in range(0, n, fleet.PIPELINE_CHUNK):
        async with redis.pipeline(transaction=False) as pipe:
            for i in range(offset, min(n, offset + fleet.PIPELINE_CHUNK)):
                schedule_id = f"stock-{i}"
                entry = {
                    "task_name": "demo.sleep",
                    "labels": {"config_id": i, "trigger": "scheduled", "priority": 5},
                    "args": [],
                    "kwargs": {"seconds": 0},
                    "schedule_id": schedule_id,
                    "cron": "* * * * *",
                }
                pipe.set(f"{prefix}:data:{schedule_id}", json.dumps(entry))
                pipe.rpush(f"{prefix}:cron", schedule_id)
            await pipe.execute()


async def taskhub(n: int, redis: Redis, first_boundary: float) -> TaskhubResult:
    env = common.isolated_env("scheduler")
    url = env["DATABASE_URL"]
    await create_migrated_database(url)
    try:
        with fleet.environment(env):
            configs = await fleet.create_configs(plain_dsn(url), n)
            # Started as if just under a minute before the first boundary: its first fire.
            started = max(time.time(), first_boundary - 59)
            await fleet.start_all(redis, configs, now=datetime.fromtimestamp(started, UTC))
        # On a loaded machine the set-up can outlast the minute: measure from a boundary the
        # scheduler has time to start before (every boundary is a fire of each schedule).
        first = max(first_boundary, next_boundary(time.time() + CPU_BEFORE + LEAD_SECONDS))
        return await _run_taskhub(env, n, first)
    finally:
        await fleet.delete_keys(redis, env["REDIS_PREFIX"])
        await common.delete_queues(env["RABBITMQ_QUEUE"], env["RABBITMQ_EXCHANGE"])
        await drop_database(url)


async def _run_taskhub(env: dict[str, str], n: int, first: float) -> TaskhubResult:
    process = common.start(TASKHUB_SCHEDULER, env, "taskhub-scheduler")
    try:
        ready_by = first - CPU_BEFORE
        await wait_ready(process, env["RABBITMQ_QUEUE"], until=ready_by, what="Taskhub scheduler")
        watched = psutil.Process(process.pid)
        bursts, cpu = [], []
        async with mq.consuming(env["RABBITMQ_QUEUE"]) as arrivals:
            await sleep_until(ready_by)
            for i in range(BOUNDARIES):
                boundary = first + 60 * i
                before = cpu_seconds(watched)
                bursts.append(await collect(arrivals, boundary, n, by_fire_time=True))
                await sleep_until(boundary + 60 - CPU_BEFORE)
                cpu.append(cpu_seconds(watched) - before)
        return TaskhubResult(bursts, cpu, rss_mib(watched))
    finally:
        common.stop(process)


def _row(name: str, burst: Burst) -> str:
    return (
        f"| {name} | {stamp(burst.boundary)} | {len(burst.delays)} | {burst.p50:.2f} |"
        f" {burst.p99:.2f} | {burst.last:.2f} |"
    )


def render(n: int, ours: TaskhubResult, peer: StockResult) -> str:
    lasts = [b.last for b in ours.bursts]
    median_last = statistics.median(lasts)
    ratio = median_last / peer.burst.last
    verdict = "met" if ratio <= TARGET_RATIO else "missed"
    rss_verdict = "met" if ours.rss_mib <= peer.rss_mib else "missed"
    rows = [_row(f"Taskhub, boundary {i + 1}", b) for i, b in enumerate(ours.bursts)]
    cpu = ", ".join(f"{c:.1f}" for c in ours.cpu_per_minute)
    return "\n".join(
        [
            f"## Scheduler at scale: {n:,} configs on `* * * * *`",
            "",
            "Delay from the minute boundary to each message's arrival in RabbitMQ (seconds;",
            "a consumer in the bench process notes arrivals, no worker runs).",
            "",
            "| scheduler | boundary (UTC) | sent | p50 | p99 | last |",
            "| --- | --- | ---: | ---: | ---: | ---: |",
            *rows,
            _row("stock taskiq + ListRedisScheduleSource", peer.burst),
            "",
            f"- Taskhub, median over {len(lasts)} boundaries of the last send:"
            f" **{median_last:.2f} s**; stock scheduler: **{peer.burst.last:.2f} s**;"
            f" ratio Taskhub / stock = **{ratio:.2f}** (target ≤ {TARGET_RATIO}: **{verdict}**).",
            f"- Taskhub scheduler CPU per minute (s, from 20 s before each boundary): {cpu};"
            f" median {statistics.median(ours.cpu_per_minute):.1f} s.",
            f"- RSS after the run: Taskhub scheduler {ours.rss_mib:.0f} MiB,"
            f" stock scheduler {peer.rss_mib:.0f} MiB (target ≤ stock: **{rss_verdict}**).",
            "- Taskhub: `taskiq scheduler backend.scheduler:scheduler --update-interval 0`"
            " (claims, `fired` events, next fires queued). Stock: `taskiq scheduler"
            " bench.stock_scheduler:scheduler --skip-first-run` (default update interval,"
            " entries in memory, no claims) with taskiq-aio-pika's own kick, same broker"
            " settings.",
            "- Taskhub sends through backend/publisher.py: the publishes started together are"
            " written in one socket write, confirms pipelined (at most 1,000 outstanding),"
            " about half the client CPU of taskiq-aio-pika's kick per publish. At most 2,000"
            " fires are claimed and sent at once. Claims and"
            " sent marks go to Redis in one pipeline per 1,000 fires; the post-send"
            " transactions wait until the burst of sends has passed (20 at a time).",
        ]
    )


async def run() -> str:
    redis = Redis.from_url(common.isolated_env("x")["REDIS_URL"], decode_responses=True)
    try:
        peer = await stock_peer(N, redis)
        ours = await taskhub(N, redis, first_boundary=peer.burst.boundary + 60)
    finally:
        await redis.aclose()
    return render(N, ours, peer)


if __name__ == "__main__":
    print(asyncio.run(run()))
