"""The framework's ceiling: bare taskiq on Taskhub's broker, with none of Taskhub's middleware.

Run by bench/throughput.py as `taskiq worker bench.bare_taskiq:broker`, configured from the
same environment as a Taskhub worker (RABBITMQ_*, BENCH_PG_DSN). The broker is
taskiq-aio-pika's own, built from Taskhub's `broker_options` (same queues, prefetch, priority);
the task is a `demo.sleep` of the same signature; the one middleware keeps each run's row and
writes the gathered rows every RECORD_FLUSH_SECONDS in one multi-row `INSERT ... ON CONFLICT
DO NOTHING`, as Taskhub's record buffer does. What it leaves out is what Taskhub adds per run:
the in-flight mark and attempt claim (one Redis script before the ack), the overlap policy,
the run context, the history events and the metrics.
"""

import asyncio
import contextlib
import os
from datetime import UTC, datetime
from typing import Any

import asyncpg
from taskiq import TaskiqEvents, TaskiqMessage, TaskiqMiddleware, TaskiqResult, TaskiqState
from taskiq_aio_pika import AioPikaBroker

from backend.broker import broker_options
from backend.config import get_settings

FLUSH_SECONDS = get_settings().record_flush_seconds

_INSERT = """
INSERT INTO task_executions (task_id, config_id, is_success, started_at, completed_at,
    duration_seconds, trigger, attempts)
SELECT task_id, config_id, is_success, started_at, completed_at, duration_seconds, 'manual', 1
FROM unnest($1::varchar[], $2::integer[], $3::boolean[], $4::timestamptz[], $5::timestamptz[],
    $6::float8[]) AS r(task_id, config_id, is_success, started_at, completed_at, duration_seconds)
ON CONFLICT (task_id) DO NOTHING
"""

Row = tuple[str, int | None, bool, datetime, datetime, float]


class BatchedRows(TaskiqMiddleware):
    """One row per run, gathered and written in batches."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[Row] = []
        self.ready = asyncio.Event()

    def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        completed = datetime.now(UTC)
        config_id = message.labels.get("config_id")
        self.rows.append(
            (
                message.task_id,
                int(config_id) if config_id else None,
                not result.is_err,
                datetime.fromtimestamp(completed.timestamp() - result.execution_time, UTC),
                completed,
                result.execution_time,
            )
        )
        self.ready.set()

    async def write_forever(self, connection: asyncpg.Connection) -> None:
        while True:
            await self.ready.wait()
            await asyncio.sleep(FLUSH_SECONDS)  # gather what else ends meanwhile
            rows, self.rows = self.rows, []
            self.ready.clear()
            await connection.execute(_INSERT, *(list(column) for column in zip(*rows, strict=True)))


broker = AioPikaBroker(**broker_options(get_settings()))
rows = BatchedRows()
broker.add_middlewares(rows)


@broker.task(task_name="demo.sleep")
async def sleep(
    seconds: float = 0.0, fail: bool = False, message: str | None = None
) -> dict[str, float | str | None]:
    await asyncio.sleep(seconds)
    if fail:
        raise RuntimeError(message or "demo task failed as asked")
    return {"slept_seconds": seconds, "message": message}


@broker.on_event(TaskiqEvents.WORKER_STARTUP)
async def start_writing(state: TaskiqState) -> None:
    state.connection = await asyncpg.connect(os.environ["BENCH_PG_DSN"])
    state.writer = asyncio.create_task(rows.write_forever(state.connection))


@broker.on_event(TaskiqEvents.WORKER_SHUTDOWN)
async def stop_writing(state: TaskiqState) -> None:
    state.writer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await state.writer
    await state.connection.close()
