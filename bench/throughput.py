"""Throughput, kick -> record committed, for Taskhub, the raw aio-pika limit and Celery.

All three use a classic durable queue with x-max-priority 9 bound to a direct exchange,
persistent messages with priority 5, ack on receipt, prefetch 10, and the same message (the
raw limit sends the very bytes and headers Taskhub sends). Each contender's consumer runs
before the clock starts; a repetition publishes N messages and stops the clock when N are
consumed (raw) or N more rows are committed in PostgreSQL (Taskhub, Celery). A warm-up of
WARMUP messages precedes the repetitions. Contenders alternate within each round, so a noisy
neighbour on the shared machine hits all three alike.

`python -m bench.throughput` prints the markdown section; `BENCH_THROUGHPUT_N` and
`BENCH_THROUGHPUT_REPEATS` shrink it while developing.
"""

import asyncio
import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import psutil
from aiormq.exceptions import ChannelNotFoundEntity
from taskiq.formatters.json_formatter import JSONFormatter
from taskiq.message import TaskiqMessage

from backend.config import Settings
from bench import common
from bench.database import create_migrated_database, drop_database, plain_dsn

N = int(os.environ.get("BENCH_THROUGHPUT_N", "5000"))
REPEATS = int(os.environ.get("BENCH_THROUGHPUT_REPEATS", "3"))
WARMUP = 200
PREFETCH = 10
PRIORITY = 5
PUBLISH_CONCURRENCY = 100  # publisher confirms in flight, the same for Taskhub and raw
CELERY_POOL = ["--pool", "prefork", "--concurrency", "1"]
TASKHUB_APP = "backend.worker:broker"
BARE_APP = "bench.bare_taskiq:broker"


def worker_command(app: str, workers: int = 1) -> list[str]:
    return ["taskiq", "worker", app, "--workers", str(workers), "--ack-type", "when_received"]


TASKHUB_WORKER = worker_command(TASKHUB_APP)
TARGET_BARE = 0.85  # runs/s, x bare taskiq's (the framework's ceiling)
TARGET_CELERY = 2.0  # runs/s, x Celery's
TARGET_CPU = 0.5  # worker CPU per run, x Celery's
PARAMETERS = {"seconds": 0.0, "fail": False, "message": None}  # demo.sleep(seconds=0)
# The record batches' gathering time of both taskiq contenders: Taskhub's default setting.
FLUSH_MS = Settings.model_fields["record_flush_seconds"].default * 1000
STALL_SECONDS = 30.0  # no new record (or message) for this long fails the measurement


async def in_flight(publish: Callable[[int], Awaitable[None]], n: int) -> None:
    """Publish n messages keeping PUBLISH_CONCURRENCY confirms outstanding."""
    for start in range(0, n, PUBLISH_CONCURRENCY):
        await asyncio.gather(
            *(publish(i) for i in range(start, min(n, start + PUBLISH_CONCURRENCY)))
        )


def labels_for(config_id: int) -> dict[str, Any]:
    """What backend.services.runs.labels_for gives a manual demo.sleep config."""
    return {
        "config_id": config_id,
        "trigger": "manual",
        "overlap_policy": "allow",
        "priority": PRIORITY,
        "timeout": 300,
        "retry_on_error": False,
        "max_retries": 1,
    }


def taskhub_message(config_id: int) -> tuple[bytes, dict[str, Any]]:
    """The body and headers taskiq-aio-pika publishes for one Taskhub run."""
    message = JSONFormatter().dumps(
        TaskiqMessage(
            task_id=uuid.uuid4().hex,
            task_name="demo.sleep",
            labels=labels_for(config_id),
            args=[],
            kwargs=PARAMETERS,
        )
    )
    headers = {"task_id": message.task_id, "task_name": message.task_name, **message.labels}
    return message.message, headers


@dataclass(frozen=True)
class Timing:
    seconds: float  # first publish -> last message consumed / record committed
    publish_seconds: float  # first publish -> last publish confirmed


async def timed(
    publish_all: Callable[[], Awaitable[None]], done: Callable[[], Awaitable[None]]
) -> Timing:
    started = time.perf_counter()
    await publish_all()
    published = time.perf_counter()
    await done()
    return Timing(time.perf_counter() - started, published - started)


# --- raw aio-pika: the physical limit ------------------------------------------------------


@asynccontextmanager
async def raw_contender() -> AsyncIterator[Callable[[int], Awaitable[Timing]]]:
    name = f"bench-raw-{common.RUN_ID}"
    body, headers = taskhub_message(1)
    connection = await aio_pika.connect_robust(common.AMQP_URL)
    async with connection:
        publish_channel = await connection.channel()
        consume_channel = await connection.channel()
        await consume_channel.set_qos(prefetch_count=PREFETCH)
        exchange = await publish_channel.declare_exchange(
            name, aio_pika.ExchangeType.DIRECT, durable=True
        )
        queue = await consume_channel.declare_queue(
            name, durable=True, arguments={"x-max-priority": 9, "x-queue-type": "classic"}
        )
        await queue.bind(name, routing_key=name)
        received = 0
        wanted = 0
        reached = asyncio.Event()

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal received
            await message.ack()  # ack on receipt, then "run" it: parse the body
            TaskiqMessage.model_validate_json(message.body)
            received += 1
            if received >= wanted:
                reached.set()

        consumer_tag = await queue.consume(on_message)

        async def repetition(n: int) -> Timing:
            nonlocal wanted
            wanted = received + n
            reached.clear()

            async def publish(_: int) -> None:
                message = aio_pika.Message(
                    body,
                    headers=headers,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    priority=PRIORITY,
                )
                await exchange.publish(message, routing_key=name)

            async def done() -> None:
                await asyncio.wait_for(reached.wait(), STALL_SECONDS + n / 100)

            return await timed(lambda: in_flight(publish, n), done)

        try:
            yield repetition
        finally:
            await queue.cancel(consumer_tag)
            await consume_channel.queue_delete(name)
            await publish_channel.exchange_delete(name)


# --- Taskhub ------------------------------------------------------------------------------


@dataclass
class Processes:
    """The worker process tree of each contender: its CPU time, CPU wait and RSS."""

    roots: dict[str, psutil.Process] = field(default_factory=dict)

    def tree(self, name: str) -> list[psutil.Process]:
        root = self.roots[name]
        return [root, *root.children(recursive=True)]

    def cpu_seconds(self, name: str) -> float:
        return sum(sum(p.cpu_times()[:2]) for p in self.tree(name))

    def wait_seconds(self, name: str) -> float:
        """Time the tree's processes were runnable but waited for a core (Linux schedstat)."""
        total = 0.0
        for process in self.tree(name):
            fields = Path(f"/proc/{process.pid}/schedstat").read_text().split()
            total += int(fields[1]) / 1e9
        return total

    def rss_mib(self, name: str) -> dict[str, float]:
        """RSS of the root process and of each child, in MiB."""
        return {f"{p.name()}[{p.pid}]": p.memory_info().rss / 2**20 for p in self.tree(name)}


async def _row_count(connection: asyncpg.Connection) -> int:
    return int(await connection.fetchval("SELECT count(*) FROM task_executions"))


async def _wait_rows(
    connection: asyncpg.Connection, target: int, what: str, worker: subprocess.Popen
) -> None:
    """Until `target` rows are committed; fails at once if the worker exits or stalls."""
    progress = (await _row_count(connection), time.monotonic())
    while (count := await _row_count(connection)) < target:
        if worker.poll() is not None:
            raise RuntimeError(f"{what}: the worker exited with {worker.returncode}")
        now = time.monotonic()
        if count != progress[0]:
            progress = (count, now)
        elif now - progress[1] > STALL_SECONDS:
            raise TimeoutError(f"{what}: stalled at {count} of {target} rows")
        await asyncio.sleep(0.02)


async def _create_config(connection: asyncpg.Connection) -> int:
    return int(
        await connection.fetchval(
            "INSERT INTO task_configs (name, task_type, scheduler_type, schedule_config,"
            " parameters, overlap_policy) VALUES ('bench', 'demo.sleep', 'manual', '{}',"
            " $1::jsonb, 'allow') RETURNING id",
            '{"seconds": 0}',
        )
    )


async def _consumers(queue: str) -> int:
    connection = await aio_pika.connect(common.AMQP_URL)
    async with connection:
        channel = await connection.channel()
        try:
            declared = await channel.declare_queue(queue, passive=True)
        except ChannelNotFoundEntity:
            return 0  # not declared yet: the worker is still starting
        return declared.declaration_result.consumer_count or 0


def taskhub_contender(
    processes: Processes, *, workers: int = 1
) -> AbstractAsyncContextManager[Callable[[int], Awaitable[Timing]]]:
    return taskiq_contender(processes, "taskhub", TASKHUB_APP, workers=workers)


def bare_contender(
    processes: Processes,
) -> AbstractAsyncContextManager[Callable[[int], Awaitable[Timing]]]:
    return taskiq_contender(processes, "bare", BARE_APP)


@asynccontextmanager
async def taskiq_contender(
    processes: Processes, name: str, app: str, *, workers: int = 1
) -> AsyncIterator[Callable[[int], Awaitable[Timing]]]:
    """A taskiq worker running `app` (Taskhub's or bare taskiq's) on a queue of its own; the
    bench publishes through Taskhub's publish path, the same message for both."""
    from backend.broker import build_broker
    from backend.config import Settings
    from backend.services import runs

    env = common.isolated_env(name)
    url = env["DATABASE_URL"]
    await create_migrated_database(url)
    connection = await asyncpg.connect(plain_dsn(url))
    settings = Settings(
        rabbitmq_url=common.AMQP_URL,
        rabbitmq_queue=env["RABBITMQ_QUEUE"],
        rabbitmq_exchange=env["RABBITMQ_EXCHANGE"],
    )
    broker = build_broker(settings)
    worker = None
    try:
        config_id = await _create_config(connection)
        await broker.startup()
        # Bare taskiq without its INFO line per run, as Taskhub's worker (WORKER_LOG_RUNS).
        quiet = ["--log-level", "WARNING"] if app == BARE_APP else []
        command = [*worker_command(app, workers), *quiet]
        log_name = f"{name}-worker"
        worker = common.start(command, {**env, "BENCH_PG_DSN": plain_dsn(url)}, log_name)
        processes.roots[name] = psutil.Process(worker.pid)

        async def consuming() -> bool:
            if worker.poll() is not None:
                raise RuntimeError(f"the {name} worker exited: see {common.log_path(log_name)}")
            return await _consumers(settings.rabbitmq_queue) > 0

        await common.wait_for(consuming, timeout=60, what=f"{name} worker start")
        labels = labels_for(config_id)

        async def publish(_: int) -> None:
            await runs.send(
                broker,
                task_name="demo.sleep",
                task_id=uuid.uuid4().hex,
                labels=labels,
                parameters=PARAMETERS,
                timeout=30,
            )

        async def repetition(n: int) -> Timing:
            target = await _row_count(connection) + n
            return await timed(
                lambda: in_flight(publish, n),
                lambda: _wait_rows(connection, target, f"{n} {name} records", worker),
            )

        yield repetition
    finally:
        if worker is not None:
            common.stop(worker)
        await broker.shutdown()
        await connection.close()
        await drop_database(url)
        await common.delete_redis_keys(env["REDIS_PREFIX"])
        await common.delete_queues(env["RABBITMQ_QUEUE"], env["RABBITMQ_EXCHANGE"])


# --- Celery: the peer ---------------------------------------------------------------------


@asynccontextmanager
async def celery_contender(
    processes: Processes,
) -> AsyncIterator[Callable[[int], Awaitable[Timing]]]:
    env = common.isolated_env("celery")
    queue = env["RABBITMQ_QUEUE"]
    os.environ["BENCH_QUEUE"] = queue  # read when bench.celery_app is imported
    from bench import celery_app  # imported here: only this bench needs Celery

    url = env["DATABASE_URL"]
    await create_migrated_database(url)
    connection = await asyncpg.connect(plain_dsn(url))
    worker = None
    try:
        config_id = await _create_config(connection)
        worker_env = {
            **env,
            "BENCH_QUEUE": queue,
            "BENCH_PG_DSN": plain_dsn(url),
            "BENCH_CONFIG_ID": str(config_id),
        }
        worker = common.start(
            ["celery", "-A", "bench.celery_app", "worker", *CELERY_POOL, "-Q", queue,
             "--without-gossip", "--without-mingle", "--without-heartbeat",
             "--loglevel", "WARNING"],
            worker_env, "celery-worker",
        )  # fmt: skip
        processes.roots["celery"] = psutil.Process(worker.pid)

        async def consuming() -> bool:
            if worker.poll() is not None:
                raise RuntimeError(
                    f"the Celery worker exited: see {common.log_path('celery-worker')}"
                )
            return await _consumers(queue) > 0

        await common.wait_for(consuming, timeout=60, what="Celery worker start")

        async def repetition(n: int) -> Timing:
            target = await _row_count(connection) + n
            return await timed(
                lambda: asyncio.to_thread(celery_app.publish, n, PRIORITY),
                lambda: _wait_rows(connection, target, f"{n} Celery records", worker),
            )

        yield repetition
    finally:
        if worker is not None:
            common.stop(worker)
        await connection.close()
        await drop_database(url)
        await common.delete_queues(queue, queue)


# --- the measurement ----------------------------------------------------------------------


CONTENDERS = ("raw", "bare", "taskhub", "celery")
WORKERS = ("bare", "taskhub", "celery")


def _per_contender() -> dict[str, list[float]]:
    return {c: [] for c in CONTENDERS}


@dataclass
class Result:
    n: int
    rates: dict[str, list[float]] = field(default_factory=_per_contender)
    publish_rates: dict[str, list[float]] = field(default_factory=_per_contender)
    cpu_ms_per_run: dict[str, list[float]] = field(default_factory=_per_contender)
    cpu_wait_share: dict[str, list[float]] = field(default_factory=_per_contender)
    rss: dict[str, dict[str, float]] = field(default_factory=dict)

    def median(self, figures: dict[str, list[float]], contender: str) -> float:
        return common.median(figures[contender])


async def measure(n: int = N, repeats: int = REPEATS, warmup: int = WARMUP) -> Result:
    result = Result(n=n)
    processes = Processes()
    async with (
        raw_contender() as raw,
        bare_contender(processes) as bare,
        taskhub_contender(processes) as taskhub,
        celery_contender(processes) as celery,
    ):
        contenders = {"raw": raw, "bare": bare, "taskhub": taskhub, "celery": celery}
        for repetition in contenders.values():
            await repetition(warmup)
        for _ in range(repeats):
            for name, repetition in contenders.items():
                worker = name in WORKERS
                cpu = processes.cpu_seconds(name) if worker else 0.0
                wait = processes.wait_seconds(name) if worker else 0.0
                timing = await repetition(n)
                result.rates[name].append(n / timing.seconds)
                result.publish_rates[name].append(n / timing.publish_seconds)
                if worker:
                    cpu = processes.cpu_seconds(name) - cpu
                    wait = processes.wait_seconds(name) - wait
                    result.cpu_ms_per_run[name].append(cpu / n * 1000)
                    result.cpu_wait_share[name].append(wait / (cpu + wait))
        result.rss = {name: processes.rss_mib(name) for name in WORKERS}
    return result


def report(result: Result) -> str:
    raw, bare, taskhub, celery = (result.median(result.rates, c) for c in CONTENDERS)
    to_raw, to_bare, to_celery = taskhub / raw, taskhub / bare, taskhub / celery

    def row(name: str, contender: str) -> str:
        values = result.rates[contender]
        each = ", ".join(f"{v:,.0f}" for v in values)
        publish = result.median(result.publish_rates, contender)
        if contender in WORKERS:
            cpu = f"{result.median(result.cpu_ms_per_run, contender):.2f}"
            wait = f"{result.median(result.cpu_wait_share, contender):.0%}"
        else:
            cpu = wait = "n/a"
        return (
            f"| {name} | **{common.median(values):,.0f}** | {each} | {publish:,.0f} | {cpu} |"
            f" {wait} |"
        )

    def verdict(ratio: float, target: float) -> str:
        return "met" if ratio >= target else "missed"

    def per_round(peer: str) -> float:
        """Taskhub against `peer` within each round (same machine load), then the median."""
        pairs = zip(result.rates["taskhub"], result.rates[peer], strict=True)
        return common.median([ours / theirs for ours, theirs in pairs])

    def rss(name: str) -> str:
        return ", ".join(f"{proc} {mib:.0f} MiB" for proc, mib in result.rss[name].items())

    taskhub_cpu = result.median(result.cpu_ms_per_run, "taskhub")
    cpu_ratio = taskhub_cpu / result.median(result.cpu_ms_per_run, "celery")
    bare_cpu_ratio = taskhub_cpu / result.median(result.cpu_ms_per_run, "bare")
    taskhub_wait = result.median(result.cpu_wait_share, "taskhub")
    return "\n".join(
        [
            "## Throughput",
            "",
            f"Kick → record committed, N = {result.n:,} runs of `demo.sleep(seconds=0)` per"
            f" repetition, median of {len(result.rates['taskhub'])} repetitions (after a"
            f" warm-up of {WARMUP}); the contenders alternate within each round.",
            "",
            "| contender | runs/s (median) | each repetition | publishing alone, msg/s"
            " | worker CPU ms/run | worker waiting for a core |",
            "| --- | ---: | --- | ---: | ---: | ---: |",
            row("raw aio-pika publish + consume (the limit)", "raw"),
            row("bare taskiq + batched rows (one worker process; the framework's ceiling)", "bare"),
            row("Taskhub (one worker process)", "taskhub"),
            row("Celery 5 + `task_postrun` row (one worker process)", "celery"),
            "",
            "| ratio | of the medians | median of the rounds' ratios | target | |",
            "| --- | ---: | ---: | ---: | --- |",
            f"| Taskhub / raw | {to_raw:.2f} | {per_round('raw'):.2f} | | |",
            f"| Taskhub / bare taskiq | {to_bare:.2f} | {per_round('bare'):.2f} |"
            f" ≥ {TARGET_BARE} | {verdict(to_bare, TARGET_BARE)} |",
            f"| Taskhub / Celery | {to_celery:.2f} x | {per_round('celery'):.2f} x |"
            f" ≥ {TARGET_CELERY:g} x | {verdict(to_celery, TARGET_CELERY)} |",
            f"| worker CPU per run, Taskhub / Celery | {cpu_ratio:.2f} | |"
            f" ≤ {TARGET_CPU:g} | {'met' if cpu_ratio <= TARGET_CPU else 'missed'} |",
            f"| worker CPU per run, Taskhub / bare taskiq | {bare_cpu_ratio:.2f} | | | |",
            "",
            f"Worker RSS after the runs: bare taskiq {rss('bare')}; Taskhub {rss('taskhub')};"
            f" Celery {rss('celery')}"
            " (taskiq and Celery each run a supervising parent and one worker child).",
            "",
            "Settings: one RabbitMQ on 127.0.0.1, a classic durable queue with"
            " `x-max-priority` 9 on a direct exchange for each contender, persistent messages"
            f" with priority {PRIORITY}, the same {len(taskhub_message(1)[0])}-byte Taskhub body"
            f" and headers for raw; ack on receipt, prefetch {PREFETCH}; Taskhub and raw publish"
            f" with {PUBLISH_CONCURRENCY} publisher confirms in flight, Celery with its own"
            f" `apply_async`. Taskhub: `{' '.join(TASKHUB_WORKER)}` (default settings: record"
            f" batches gathered for {FLUSH_MS:g} ms). Bare taskiq: `taskiq worker"
            f" {BARE_APP} --workers 1 --ack-type when_received --log-level WARNING`"
            " (taskiq-aio-pika's broker on the same options, a `demo.sleep` of the same"
            f" signature, rows gathered for {FLUSH_MS:g} ms and written in one `INSERT`; no"
            " per-run INFO line, as Taskhub's default `WORKER_LOG_RUNS=false`). Celery:"
            f" `celery worker {' '.join(CELERY_POOL)}`, `task_acks_late=False`,"
            " `worker_prefetch_multiplier=10`, one autocommit psycopg `INSERT ... ON CONFLICT"
            " (task_id) DO NOTHING` per run in `task_postrun`. Everything (bench client, workers,"
            ' RabbitMQ, PostgreSQL, Redis) shares this machine\'s cores. "Worker CPU ms/run" is'
            ' the CPU time of the worker\'s process tree per run; "waiting for a core" is the'
            " share of its runnable time it spent queued for a CPU (Linux schedstat).",
            "",
            "What limits it: "
            + LIMITS.format(
                cpu=taskhub_cpu,
                wait=taskhub_wait,
                ceiling=1000 / taskhub_cpu,
                celery_cpu=result.median(result.cpu_ms_per_run, "celery"),
                bare_cpu=result.median(result.cpu_ms_per_run, "bare"),
                flush_ms=FLUSH_MS,
            ),
        ]
    )


LIMITS = (
    "the Taskhub worker is one Python process bound by CPU: {cpu:.2f} ms per run, so at most"
    " ~{ceiling:,.0f} runs/s on a core of its own, and here it waited for a core {wait:.0%} of"
    " the time it could have run (2 cores shared with RabbitMQ, PostgreSQL, the bench client"
    " and other work). Bare taskiq ({bare_cpu:.2f} ms per run) is the framework's own cost:"
    " frame handling in aio-pika/pamqp, taskiq's parsing, timeout scope and prefetch queue,"
    " and one ack frame per run. What Taskhub adds per run is the in-flight mark and attempt"
    " claim (one Redis script before the ack: deliveries reach the worker about one loop turn"
    " apart, so a batch of marks waits a millisecond or two for the next ones and a few share"
    " one pipeline), the run context and cancel guard around the call, and the record's"
    " bookkeeping (one multi-row `INSERT` and one Redis transaction per {flush_ms:g} ms batch);"
    " its acks are written together (a few runs' acks in one frame). Syscalls are dear on"
    " this virtual machine: a socket write costs about as much as a run's own Python work."
    " Celery's worker ({celery_cpu:.2f} ms CPU per run) also waits for one synchronous commit"
    " (a WAL flush) per row, one row after the other, so its rate follows the disk's commit"
    " latency."
)


async def run() -> str:
    """Measure all three contenders and return the markdown section; raises on failure."""
    return report(await measure())


if __name__ == "__main__":
    print(asyncio.run(run()))
