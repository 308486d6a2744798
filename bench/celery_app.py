"""The peer: Celery 5 on the same RabbitMQ, recording one row per run from `task_postrun`.

Run by bench/throughput.py as `celery -A bench.celery_app worker`; configured from the
environment the bench sets (BENCH_QUEUE, BENCH_PG_DSN, BENCH_CONFIG_ID). The queue is classic,
durable, `x-max-priority` 9, on a direct exchange of the same name, as Taskhub's.
"""

import json
import os
import time
from datetime import UTC, datetime
from typing import Any

import psycopg
from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_process_init
from kombu import Exchange, Queue

QUEUE = os.environ.get("BENCH_QUEUE", "bench-celery")

app = Celery("bench", broker=os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/"))
app.conf.update(
    task_queues=[
        Queue(
            QUEUE,
            Exchange(QUEUE, type="direct"),
            routing_key=QUEUE,
            queue_arguments={"x-max-priority": 9, "x-queue-type": "classic"},
        )
    ],
    task_default_queue=QUEUE,
    task_acks_late=False,  # ack on receipt, as the Taskhub worker does
    worker_prefetch_multiplier=10,
    task_serializer="json",
    result_backend=None,
    task_ignore_result=True,
    worker_hijack_root_logger=False,
)

_connection: psycopg.Connection[Any] | None = None
_started: dict[str, float] = {}


@worker_process_init.connect
def _connect(**_: Any) -> None:
    global _connection
    _connection = psycopg.connect(os.environ["BENCH_PG_DSN"], autocommit=True)


@app.task(name="demo.sleep")
def sleep(seconds: float = 0, fail: bool = False, message: str | None = None) -> dict[str, Any]:
    time.sleep(seconds)
    return {"slept_seconds": seconds, "message": message}


@task_prerun.connect
def _mark_start(task_id: str, **_: Any) -> None:
    _started[task_id] = time.time()


@task_postrun.connect
def _record(task_id: str, retval: Any, state: str, **_: Any) -> None:
    assert _connection is not None
    started = _started.pop(task_id, time.time())
    now = time.time()
    _connection.execute(
        "INSERT INTO task_executions (config_id, task_id, is_success, started_at, completed_at,"
        " duration_seconds, result, error_message, trigger, attempts)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, NULL, 'manual', 1)"
        " ON CONFLICT (task_id) DO NOTHING",
        (
            int(os.environ["BENCH_CONFIG_ID"]),
            task_id,
            state == "SUCCESS",
            datetime.fromtimestamp(started, UTC),
            datetime.fromtimestamp(now, UTC),
            now - started,
            json.dumps(retval, default=str),
        ),
    )


def publish(n: int, priority: int) -> None:
    """Send n runs with Celery's own client (run in a thread by the bench)."""
    with app.producer_or_acquire() as producer:
        for _ in range(n):
            sleep.apply_async(kwargs={"seconds": 0}, producer=producer, priority=priority)
