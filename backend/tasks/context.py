"""`RunContext`: what a task function may know about the run it is part of.

A task function that declares a `context: RunContext` parameter gets it (the registry's task
wrapper fills it in). With `scheduled_for`, the nominal fire time, a task can make itself
idempotent per fire: a retry or a backfill of the same fire carries the same value.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from taskiq import TaskiqMessage

from backend.models import TRIGGERS, Trigger

# The label carrying a run's nominal fire time (ISO 8601, UTC): set on scheduled fires
# (backend/services/schedule_entries.py) and on backfill runs; absent on manual runs.
SCHEDULED_FOR = "scheduled_for"


@dataclass(frozen=True)
class RunContext:
    task_id: str
    config_id: int | None
    trigger: Trigger
    scheduled_for: datetime | None  # the nominal fire time; None for a run started by hand
    attempt: int  # 1 for the first attempt, 2 for the first retry, ...
    max_attempts: int


def scheduled_for(labels: dict[str, Any]) -> datetime | None:
    value = labels.get(SCHEDULED_FOR)
    return datetime.fromisoformat(str(value)) if value not in (None, "") else None


def trigger(labels: dict[str, Any]) -> Trigger:
    value = str(labels.get("trigger", "manual"))
    return value if value in TRIGGERS else "manual"  # type: ignore[return-value]


def of_message(message: TaskiqMessage) -> RunContext:
    """Read from the labels `backend.services.runs.labels_for` and the retry middleware set."""
    labels = message.labels
    config_id = labels.get("config_id")
    retries_allowed = str(labels.get("retry_on_error", "false")).lower() == "true"
    return RunContext(
        task_id=message.task_id,
        config_id=int(config_id) if config_id not in (None, "") else None,
        trigger=trigger(labels),
        scheduled_for=scheduled_for(labels),
        attempt=int(labels.get("_retries", 0)) + 1,
        # `max_retries` counts attempts (SmartRetryMiddleware's reading); 1 without retries.
        max_attempts=int(labels.get("max_retries", 1)) if retries_allowed else 1,
    )
