"""Request and response models of runs and execution records."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from backend.models import Trigger
from backend.schemas.common import Id, JsonObject, RequestBody


class RunRequest(RequestBody):
    parameters: JsonObject | None = Field(
        default=None, description="Overrides the config's parameters for this run only"
    )


class RunQueued(BaseModel):
    task_id: str
    config_id: int
    queued_at: datetime


class BatchRunRequest(RequestBody):
    config_ids: list[Id] = Field(min_length=1, max_length=100)


class BatchRunError(BaseModel):
    status: int
    code: str
    message: str


class BatchRunResult(BaseModel):
    config_id: int
    task_id: str | None = None
    error: BatchRunError | None = None


class BatchRunResponse(BaseModel):
    results: list[BatchRunResult]


class ExecutionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    state: Literal["finished"] = "finished"
    id: int
    task_id: str
    config_id: int | None
    is_success: bool
    started_at: datetime
    completed_at: datetime
    duration_seconds: float
    result: Any | None
    error_message: str | None
    trigger: Trigger
    attempts: int
    scheduled_for: datetime | None = Field(
        description="The nominal fire time the run was for (scheduled, backfill); null for manual"
    )


class LiveRunRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    state: Literal["queued", "waiting", "running", "cancelling"] = Field(
        description="`waiting`: a scheduled run waiting for its config's run in flight"
        " (buffer_one); `cancelling`: cancelled, its record not written yet"
    )
    task_id: str
    config_id: int | None
    trigger: Trigger
    attempt: int = Field(description="The attempt running now (0 while first queued)")
    queued_at: datetime | None
    started_at: datetime | None
    deadline: datetime | None
    cancel: str | None = Field(
        default=None, description="Once cancelled: the error message its record will carry"
    )
    scheduled_for: datetime | None = None


class ExecutionStats(BaseModel):
    """Durations in seconds; the `last_*` times are when those runs started."""

    total_runs: int = 0
    successes: int = 0
    failures: int = 0
    success_rate: float | None = None  # successes / total_runs; None before the first run
    avg_duration_seconds: float | None = None
    p95_duration_seconds: float | None = None
    last_run_at: datetime | None = None
    last_run_success: bool | None = None  # the outcome of the run started last
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    consecutive_failures: int = 0  # failed runs since the last success
    last_error: str | None = None  # of the run that failed last


class SystemStatus(BaseModel):
    checks: dict[str, str]
    configs: int | None = Field(default=None, description="null while the database is down")
    active_schedules: int | None = Field(default=None, description="null while Redis is down")
    runs_in_flight: int | None = None
    runs_last_hour: int | None = None
    success_rate_last_hour: float | None = None
