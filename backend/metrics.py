"""Prometheus metrics of every process, and the text the API serves at `GET /metrics`.

The worker and the scheduler are separate processes from the API, so the metrics use
prometheus-client's multiprocess mode: with `PROMETHEUS_MULTIPROC_DIR` set (to one directory
shared by all the processes, emptied before they start), each process writes its samples to
its own memory-mapped files there and the API merges them on every scrape. Without it, the API
serves only its own samples (HTTP and in-flight runs).

Every metric has a label, so no process writes a file before it records something.
"""

import os
import socket

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from backend.value_sets import CHANNEL_KINDS

__all__ = ["CONTENT_TYPE_LATEST"]

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
_HOST = socket.gethostname().replace("_", "-")


def _process_identifier() -> str:
    # Files are named after the process: in docker-compose every container's main process may
    # be pid 1, so the host name (the container id there) keeps their files apart.
    return f"{_HOST}-{os.getpid()}"


if MULTIPROC_DIR:
    # Must happen before the first metric below is built: they take the class at creation.
    os.makedirs(MULTIPROC_DIR, exist_ok=True)
    values.ValueClass = values.MultiProcessValue(_process_identifier)

RUN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

# API process
http_requests = Counter(
    "taskhub_http_requests",
    "HTTP requests answered, by method, route template and status code",
    ["method", "route", "status"],
)
http_duration = Histogram(
    "taskhub_http_request_duration_seconds",
    "HTTP request latency, by method and route template",
    ["method", "route"],
)

# Worker process (lost: the reaper, which runs in the worker process)
runs_started = Counter("taskhub_runs_started", "Runs whose first attempt started", ["task_type"])
runs_finished = Counter(
    "taskhub_runs_finished",
    "Runs recorded, by outcome: succeeded, failed, timed_out, lost or cancelled",
    ["task_type", "outcome"],
)
runs_skipped = Counter(
    "taskhub_runs_skipped",
    "Scheduled runs not started: another run of the config was in flight",
    ["task_type"],
)
runs_duplicate = Counter(
    "taskhub_runs_duplicate",
    "Deliveries dropped unexecuted: their task id and attempt had started already "
    "(a broker redelivery, or a fire sent again after its scheduler died)",
    ["task_type"],
)
run_duration = Histogram(
    "taskhub_run_duration_seconds",
    "Run duration from the first attempt's start to the record (not for lost runs)",
    ["task_type"],
    buckets=RUN_BUCKETS,
)

# Scheduler process
fires_sent = Counter("taskhub_schedule_fires_sent", "Schedule fires sent", ["task_type"])
fires_claimed_elsewhere = Counter(
    "taskhub_schedule_fires_claimed_elsewhere",
    "Schedule fires not sent by this replica: another replica claimed them first",
    ["task_type"],
)
fires_recovered = Counter(
    "taskhub_schedule_fires_recovered",
    "Schedule fires this replica sent after taking over the claim of a replica that stopped "
    "between claiming and sending them",
    ["task_type"],
)
fires_missed = Counter(
    "taskhub_schedule_fires_missed",
    "Schedule fires skipped: no scheduler ran within the misfire grace period",
    ["task_type"],
)
schedule_lag = Histogram(
    "taskhub_schedule_lag_seconds",
    "Delay from a fire's scheduled time to its message being sent",
    ["task_type"],
    buckets=LAG_BUCKETS,
)


# Notifications (sent by the notifier in the worker processes)
notifications_sent = Counter(
    "taskhub_notifications",
    "Notification attempts, by channel kind and outcome: delivered, retrying or failed",
    ["kind", "outcome"],
)

RUN_OUTCOMES = ("succeeded", "failed", "timed_out", "lost", "cancelled")
NOTIFICATION_OUTCOMES = ("delivered", "retrying", "failed")


def initialise(task_types: list[str]) -> None:
    """Every labelled family at zero for the registered task types, at process start: a
    family must not be missing from /metrics before its first sample (Prometheus practice)."""
    for task_type in task_types:
        runs_started.labels(task_type)
        runs_skipped.labels(task_type)
        run_duration.labels(task_type)
        fires_sent.labels(task_type)
        fires_claimed_elsewhere.labels(task_type)
        fires_missed.labels(task_type)
        schedule_lag.labels(task_type)
        for outcome in RUN_OUTCOMES:
            runs_finished.labels(task_type, outcome)
    for kind in CHANNEL_KINDS:  # the channel kinds the models allow
        for outcome in NOTIFICATION_OUTCOMES:
            notifications_sent.labels(kind, outcome)


def notification_sent(kind: str, *, outcome: str) -> None:
    notifications_sent.labels(kind, outcome).inc()


def run_started(task_type: str) -> None:
    runs_started.labels(task_type).inc()


def run_skipped(task_type: str) -> None:
    runs_skipped.labels(task_type).inc()


def run_duplicate(task_type: str) -> None:
    runs_duplicate.labels(task_type).inc()


def run_finished(task_type: str, *, outcome: str, duration: float | None) -> None:
    runs_finished.labels(task_type, outcome).inc()
    if duration is not None:
        run_duration.labels(task_type).observe(duration)


def fire_sent(task_type: str, *, lag: float) -> None:
    fires_sent.labels(task_type).inc()
    schedule_lag.labels(task_type).observe(max(lag, 0.0))


def fire_claimed_elsewhere(task_type: str) -> None:
    fires_claimed_elsewhere.labels(task_type).inc()


def fire_recovered(task_type: str) -> None:
    fires_recovered.labels(task_type).inc()


def fires_were_missed(task_type: str, count: int) -> None:
    fires_missed.labels(task_type).inc(count)


class _Snapshot(Collector):
    """Families read just before the scrape (from Redis), served as they are."""

    def __init__(self, *families: GaugeMetricFamily) -> None:
        self._families = families

    def collect(self) -> list[GaugeMetricFamily]:
        return list(self._families)


def render(*, runs_in_flight: int | None) -> bytes:
    """The exposition text: every process's samples, plus the live gauges read at scrape."""
    if MULTIPROC_DIR:
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=MULTIPROC_DIR)
    else:
        merged = REGISTRY
    text = generate_latest(merged)
    if runs_in_flight is not None:
        live = CollectorRegistry()
        live.register(
            _Snapshot(
                GaugeMetricFamily(
                    "taskhub_runs_in_flight",
                    "Runs started and not yet recorded, across all workers (from Redis)",
                    value=runs_in_flight,
                )
            )
        )
        text += generate_latest(live)
    return text
