"""`make bench-quick`: every bench at a small N in about a minute, for a change's before/after.

It prints its figures (it writes no file) and runs the same contenders as `make bench`, each
smaller: throughput (raw aio-pika, Taskhub, Celery) over QUICK_RUNS runs; the scheduler at one
burst of QUICK_SCHEDULES fires against the stock scheduler; the API list page and `/users/me`
over QUICK_CONFIGS configs. The scheduler burst is not at a minute boundary (waiting for two
boundaries would take the whole budget): Taskhub's schedules are hourly intervals started so
that they all fire at one second a few seconds ahead; the stock scheduler's entries are
hourly `interval` entries of ListRedisScheduleSource, which all fire at the first tick that
has them (no post-send work, as for its cron entries); both read their entries every
second. The quick ratio is a before/after figure at a small N, not the one `make bench`
reports.
"""

import asyncio
import json
import os
import time
from datetime import UTC, datetime

import psutil
from redis.asyncio import Redis

from bench import api_load, common, fleet, throughput
from bench import arrivals as mq
from bench import scheduler_scale as scale
from bench.database import create_migrated_database, drop_database, plain_dsn
from bench.stock_scheduler import PREFIX_VARIABLE

RUNS = int(os.environ.get("QUICK_RUNS", "1000"))
SCHEDULES = int(os.environ.get("QUICK_SCHEDULES", "2000"))
CONFIGS = int(os.environ.get("QUICK_CONFIGS", "2000"))
SCHEDULER_LEAD = 5.0  # seconds from Taskhub's schedules' start to their burst
HOURLY = {"seconds": 3600}
STOCK_QUICK = ["taskiq", "scheduler", "bench.stock_scheduler:scheduler", "--update-interval", "1"]


async def stock_burst(n: int, redis: Redis) -> scale.Burst:
    """Hourly interval entries, written once the stock scheduler runs: it reads them within a
    second (`--update-interval 1`) and sends them all at its next tick, the second of its
    first message, from which the burst is measured."""
    env = common.isolated_env("quick_stock")
    prefix = env["REDIS_PREFIX"]
    process = common.start(STOCK_QUICK, {**env, PREFIX_VARIABLE: prefix}, "quick-stock")
    try:
        queue = env["RABBITMQ_QUEUE"]
        await scale.wait_ready(process, queue, until=time.time() + 30, what="stock scheduler")
        async with mq.consuming(queue) as arrivals:
            await _write_stock_intervals(redis, prefix, n)
            await mq.wait_count(arrivals, lambda found: found.items, n, timeout=60)
    finally:
        common.stop(process)
        await fleet.delete_keys(redis, prefix)
        await common.delete_queues(env["RABBITMQ_QUEUE"], env["RABBITMQ_EXCHANGE"])
    tick = float(int(min(a.at for a in arrivals.items)))
    return scale.Burst(tick, [a.at - tick for a in arrivals.items])


async def _write_stock_intervals(redis: Redis, prefix: str, n: int) -> None:
    async with redis.pipeline(transaction=True) as pipe:  # all seen by one refresh
        for i in range(n):
            schedule_id = f"stock-{i}"
            entry = {
                "task_name": "demo.sleep", "labels": {"config_id": i, "priority": 5},
                "args": [], "kwargs": {"seconds": 0}, "schedule_id": schedule_id,
                "interval": HOURLY["seconds"],
            }  # fmt: skip
            pipe.set(f"{prefix}:data:{schedule_id}", json.dumps(entry))
            pipe.rpush(f"{prefix}:interval", schedule_id)
        await pipe.execute()


async def taskhub_burst(n: int, redis: Redis) -> tuple[scale.Burst, float, float]:
    """The burst, the scheduler's CPU seconds from the schedules' start to the last send
    (reading and parsing them included), and its RSS."""
    env = common.isolated_env("quick_scheduler")
    url = env["DATABASE_URL"]
    await create_migrated_database(url)
    try:
        with fleet.environment(env):
            configs = await fleet.create_configs(
                plain_dsn(url), n, schedule_config=HOURLY, scheduler_type="interval"
            )
        process = common.start(scale.TASKHUB_SCHEDULER, env, "quick-scheduler")
        try:
            queue = env["RABBITMQ_QUEUE"]
            ready_by = time.time() + 30
            await scale.wait_ready(process, queue, until=ready_by, what="Taskhub scheduler")
            watched = psutil.Process(process.pid)
            # Started once the scheduler runs (it reads a change within 2 s), so that its
            # start-up, which a minute boundary never waits for, is not in the figure.
            at = float(int(time.time() + SCHEDULER_LEAD + n / 2000))  # start_all's time
            before = scale.cpu_seconds(watched)
            with fleet.environment(env):
                now = datetime.fromtimestamp(at - HOURLY["seconds"], UTC)
                await fleet.start_all(redis, configs, now=now)
            async with mq.consuming(queue) as arrivals:
                burst = await scale.collect(arrivals, at, n, by_fire_time=True)
            return burst, scale.cpu_seconds(watched) - before, scale.rss_mib(watched)
        finally:
            common.stop(process)
    finally:
        await fleet.delete_keys(redis, env["REDIS_PREFIX"])
        await common.delete_queues(env["RABBITMQ_QUEUE"], env["RABBITMQ_EXCHANGE"])
        await drop_database(url)


async def scheduler_section(n: int) -> list[str]:
    redis = Redis.from_url(common.isolated_env("x")["REDIS_URL"], decode_responses=True)
    try:
        stock = await stock_burst(n, redis)
        ours, cpu, rss = await taskhub_burst(n, redis)
    finally:
        await redis.aclose()
    return [
        f"scheduler, {n:,} fires in one second (p50 / p99 / last send, s):",
        f"  Taskhub {ours.p50:.2f} / {ours.p99:.2f} / {ours.last:.2f}; CPU {cpu:.1f} s"
        f" to the last send; RSS {rss:.0f} MiB",
        f"  stock (interval entries) {stock.p50:.2f} / {stock.p99:.2f} / {stock.last:.2f}",
        f"  last send Taskhub / stock = {ours.last / stock.last:.2f}",
    ]


async def throughput_section(n: int) -> list[str]:
    result = await throughput.measure(n=n, repeats=1, warmup=100)
    lines = [f"throughput, {n:,} runs kick → record (runs/s, worker CPU ms/run):"]
    for name in throughput.CONTENDERS:
        rate = result.median(result.rates, name)
        cpu = result.cpu_ms_per_run[name]
        lines.append(f"  {name} {rate:,.0f}" + (f", {common.median(cpu):.2f} ms" if cpu else ""))
    taskhub = result.median(result.rates, "taskhub")
    celery, bare = (result.median(result.rates, name) for name in ("celery", "bare"))
    lines.append(
        f"  Taskhub / Celery = {taskhub / celery:.2f} x, Taskhub / bare = {taskhub / bare:.2f}"
    )
    return lines


async def api_section(n: int) -> list[str]:
    found, counts = await api_load.run_measured(n=n, rounds=1, seconds=3.0, baseline=False)
    rounds = found[api_load.TASKHUB]
    lines = [f"API, {n:,} configs, {api_load.CLIENTS} clients (p50 / p99 ms, req/s, SQL, Redis):"]
    for path in api_load.ENDPOINTS:
        p50, p99, rps, errors = api_load.median_round(rounds[path])
        c = counts[path]
        lines.append(
            f"  {path}: {p50:.0f} / {p99:.0f}, {rps:,.0f}/s, {len(c.sql)}, {c.redis}"
            + (f", {errors} non-200" if errors else "")
        )
    return lines


async def main() -> None:
    started = time.monotonic()
    load = os.getloadavg()[0]
    print(f"bench-quick {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load {load:.1f}", flush=True)
    for section in (
        throughput_section(RUNS),
        scheduler_section(SCHEDULES),
        api_section(CONFIGS),
    ):
        part = time.monotonic()
        lines = await section
        print("\n".join(lines) + f"  [{time.monotonic() - part:.0f} s]", flush=True)
    print(f"done in {time.monotonic() - started:.0f} s", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
