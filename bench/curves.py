"""Cost as work grows: the scheduler's burst, the API's list page and the worker's rate at
several sizes, each a table and a plot (PNG under docs/, when matplotlib is installed).

- scheduler: N due schedules firing at one second (the quick bench's burst: hourly
  intervals started to fire a few seconds ahead), last send and the scheduler's CPU from
  the schedules' start to the last send, for each N of SCHEDULER_SIZES; the slope is a
  least-squares line through the points, in ms per fire;
- API: p50/p99 of `GET /tasks/configs?limit=100` (and with `include_stats=true`) with
  N configs in the table, for each N of API_SIZES, one database grown between the points;
  the first ACTIVE configs are active schedules and hold EXECUTIONS execution records (the
  first page a tenth of them); the stats statement's plan (EXPLAIN ANALYZE) is shown;
- worker: runs/s kick → record with `--workers 1` and `--workers 2`.
"""

import asyncio
import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from redis.asyncio import Redis
from sqlalchemy.dialects import postgresql

from bench import api_load, common, fleet, quick, throughput
from bench.database import create_migrated_database, drop_database, plain_dsn

SCHEDULER_SIZES = [
    int(n) for n in os.environ.get("CURVE_SCHEDULES", "1000,5000,10000,20000").split(",")
]
API_SIZES = [int(n) for n in os.environ.get("CURVE_CONFIGS", "1000,10000,100000").split(",")]
LAG_SCHEDULES, TARGET_LAG_P99 = 1000, 0.5  # the p99 lag target: seconds, at 1,000
EXECUTIONS = int(os.environ.get("CURVE_EXECUTIONS", "100000"))
WORKER_RUNS = int(os.environ.get("CURVE_RUNS", "3000"))
API_SECONDS = 5.0
ACTIVE = 1000  # configs started (the first page is within them)
DOCS = common.ROOT / "docs"


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    top = sum((x - mean_x) * (y - mean_y) for x, y in points)
    bottom = sum((x - mean_x) ** 2 for x, _ in points)
    return top / bottom if bottom else 0.0


def plot(name: str, title: str, xlabel: str, ylabel: str, series: dict[str, list]) -> str:
    """Write docs/<name>.png; the markdown that shows it (or why there is no plot)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:
        return f"_(no plot: matplotlib is not installed; `{name}.png` not written)_"
    figure, axes = pyplot.subplots(figsize=(6, 3.6), dpi=100)
    for label, points in series.items():
        axes.plot([x for x, _ in points], [y for _, y in points], marker="o", label=label)
    axes.set(title=title, xlabel=xlabel, ylabel=ylabel)
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(DOCS / f"{name}.png")
    pyplot.close(figure)
    return f"![{title}]({name}.png)"


async def scheduler_curve() -> list[str]:
    redis = Redis.from_url(common.isolated_env("x")["REDIS_URL"], decode_responses=True)
    rows = []
    p99s: dict[int, float] = {}
    try:
        for n in SCHEDULER_SIZES:
            burst, cpu, _ = await quick.taskhub_burst(n, redis)
            rows.append((n, burst.last, cpu))
            p99s[n] = burst.p99
    finally:
        await redis.aclose()
    last_slope = slope([(n, last) for n, last, _ in rows]) * 1000
    cpu_slope = slope([(n, cpu) for n, _, cpu in rows]) * 1000
    lag = p99s.get(LAG_SCHEDULES)
    lag_line = (
        f"p99 lag with {LAG_SCHEDULES:,} schedules due: **{lag:.2f} s** (target ≤"
        f" {TARGET_LAG_P99} s: **{'met' if lag <= TARGET_LAG_P99 else 'missed'}**)."
        if lag is not None
        else f"(no {LAG_SCHEDULES:,}-schedule point: no p99 lag target line)"
    )
    return [
        "### Scheduler: N schedules due at one second",
        "",
        "| due | p99 lag, s | last send, s | CPU to the last send, s | ms per fire (last / CPU) |",
        "| ---: | ---: | ---: | ---: | ---: |",
        *(
            f"| {n:,} | {p99s[n]:.2f} | {last:.2f} | {cpu:.2f} |"
            f" {last / n * 1000:.3f} / {cpu / n * 1000:.3f} |"
            for n, last, cpu in rows
        ),
        "",
        f"Slope (least squares): **{last_slope:.3f} ms per fire** of last send,"
        f" **{cpu_slope:.3f} ms per fire** of CPU. {lag_line}",
        "",
        plot(
            "curve-scheduler",
            "Scheduler burst",
            "schedules due at one second",
            "seconds",
            {
                "last send": [(n, last) for n, last, _ in rows],
                "CPU": [(n, cpu) for n, _, cpu in rows],
            },
        ),
    ]


async def _add_configs(dsn: str, start: int, stop: int) -> None:
    rows = [
        (f"curve-{i:06d}", "demo.sleep", "cron", json.dumps(fleet.EVERY_MINUTE), '{"seconds": 0}')
        for i in range(start, stop)
    ]
    columns = ["name", "task_type", "scheduler_type", "schedule_config", "parameters"]
    connection = await asyncpg.connect(dsn)
    try:
        await connection.copy_records_to_table("task_configs", records=rows, columns=columns)
        await connection.execute("ANALYZE task_configs")
    finally:
        await connection.close()


async def _add_executions(dsn: str, config_ids: list[int], n: int) -> None:
    base = datetime.now(UTC) - timedelta(days=30)
    rows = [
        (
            config_ids[i % len(config_ids)], uuid.uuid4().hex, i % 10 != 0,
            base + timedelta(seconds=i), base + timedelta(seconds=i, milliseconds=5), 0.005,
            "scheduled",
        )
        for i in range(n)
    ]  # fmt: skip
    columns = ["config_id", "task_id", "is_success", "started_at", "completed_at",
               "duration_seconds", "trigger"]  # fmt: skip
    connection = await asyncpg.connect(dsn)
    try:
        await connection.copy_records_to_table("task_executions", records=rows, columns=columns)
        await connection.execute("ANALYZE task_executions")
    finally:
        await connection.close()


async def _explain_stats(dsn: str, config_ids: list[int]) -> list[str]:
    from backend.services import executions

    captured: list[str] = []

    class Capture:
        async def execute(self, statement: object) -> list:
            compiled = statement.compile(  # type: ignore[attr-defined]
                dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
            )
            captured.append(str(compiled))
            return []

    await executions.stats_for(Capture(), config_ids=config_ids)  # type: ignore[arg-type]
    connection = await asyncpg.connect(dsn)
    try:
        plan = await connection.fetch(f"EXPLAIN (ANALYZE, COSTS OFF) {captured[0]}")
    finally:
        await connection.close()
    return [row[0] for row in plan]


async def api_curve() -> list[str]:
    env = {**common.isolated_env("curve_api"), "FIRST_SUPERUSER": api_load.ADMIN["username"],
           "FIRST_SUPERUSER_PASSWORD": api_load.ADMIN["password"]}  # fmt: skip
    url = env["DATABASE_URL"]
    dsn = plain_dsn(url)
    await create_migrated_database(url)
    redis = Redis.from_url(env["REDIS_URL"], decode_responses=True)
    listed = api_load.ENDPOINTS[0]
    paths = {"list": listed, "list + stats": f"{listed}&include_stats=true"}
    rows: list[tuple[int, dict[str, tuple[float, float, float]]]] = []
    plan: list[str] = []
    try:
        have = 0
        for n in API_SIZES:
            await _add_configs(dsn, have, n)
            if have == 0:
                with fleet.environment(env):
                    configs = await fleet.read_configs(dsn, ACTIVE)
                    await fleet.start_all(redis, configs)
                # Spread over the active configs: the first page holds a tenth of them.
                await _add_executions(dsn, [c.id for c in configs], EXECUTIONS)
                plan = await _explain_stats(dsn, [c.id for c in configs[:100]])
            have = n
            rows.append((n, await _serve_and_load(env, paths)))
    finally:
        await fleet.delete_keys(redis, env["REDIS_PREFIX"])
        await redis.aclose()
        await drop_database(url)
        # The served API declares its queues at startup: leave none behind.
        await common.delete_queues(env["RABBITMQ_QUEUE"], env["RABBITMQ_EXCHANGE"])
    lines = [
        f"### API: the list page over N configs ({EXECUTIONS:,} execution records)",
        "",
        "| configs | list p50 / p99 ms | list req/s | + stats p50 / p99 ms | + stats req/s |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for n, found in rows:
        (a50, a99, arps), (b50, b99, brps) = found["list"], found["list + stats"]
        lines.append(f"| {n:,} | {a50:.0f} / {a99:.0f} | {arps:.0f} | {b50:.0f} / {b99:.0f} |"
                     f" {brps:.0f} |")  # fmt: skip
    lines += [
        "",
        f"{api_load.CLIENTS} keep-alive clients, {API_SECONDS:.0f} s per point, one uvicorn"
        " worker. The stats statement's plan for the first page (EXPLAIN ANALYZE):",
        "",
        "```",
        *plan,
        "```",
        "",
        plot(
            "curve-api",
            "GET /tasks/configs?limit=100",
            "configs in the table",
            "ms",
            {
                f"{label} {q}": [(n, found[label][i]) for n, found in rows]
                for label in paths
                for i, q in ((0, "p50"), (1, "p99"))
            },
        ),
    ]
    return lines


async def _serve_and_load(
    env: dict[str, str], paths: dict[str, str]
) -> dict[str, tuple[float, float, float]]:
    found = {}
    async with api_load.served(env) as base:
        access = await api_load.token(base)
        host, port = base.removeprefix("http://").split(":")
        headers = {"Authorization": f"Bearer {access}"}
        clients = [api_load.KeepAliveClient(host, int(port), headers) for _ in range(50)]
        try:
            for label, path in paths.items():
                await api_load.load(clients, path, 1.0)
                measured = await api_load.load(clients, path, API_SECONDS)
                found[label] = (measured.percentile(50), measured.percentile(99), measured.rps)
        finally:
            for client in clients:
                await client.close()
    return found


async def worker_curve() -> list[str]:
    rates = {}
    for workers in (1, 2):
        processes = throughput.Processes()
        async with throughput.taskhub_contender(processes, workers=workers) as taskhub:
            await taskhub(200)
            timings = [await taskhub(WORKER_RUNS) for _ in range(2)]
        rates[workers] = max(WORKER_RUNS / t.seconds for t in timings)
    return [
        "### Worker: runs/s with 1 and 2 worker processes",
        "",
        "| `--workers` | runs/s kick → record (best of 2) |",
        "| ---: | ---: |",
        *(f"| {w} | {rate:,.0f} |" for w, rate in rates.items()),
        "",
        f"{WORKER_RUNS:,} runs of `demo.sleep(seconds=0)` per repetition, published with"
        f" {throughput.PUBLISH_CONCURRENCY} confirms in flight; 2 cores shared by the bench"
        " client, the workers, RabbitMQ, PostgreSQL and Redis.",
        "",
        plot(
            "curve-worker",
            "Worker throughput",
            "worker processes",
            "runs/s",
            {"runs/s": list(rates.items())},
        ),
    ]


async def run() -> str:
    started = time.monotonic()
    sections = [await scheduler_curve(), await api_curve(), await worker_curve()]
    load = os.getloadavg()
    return "\n".join(
        [
            "## Cost as work grows",
            "",
            f"Load average at the end: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}"
            f" (1 / 5 / 15 min); {time.monotonic() - started:.0f} s in all.",
            "",
            *("\n".join(section) + "\n" for section in sections),
        ]
    )


if __name__ == "__main__":
    print(asyncio.run(run()))
