"""Request and response models of runs and execution records."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from backend.schemas.common import Id, JsonObject, RequestBody

Trigger = Literal["scheduled", "manual"]


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


class LiveRunRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    state: Literal["queued", "running"]
    task_id: str
    config_id: int | None
    trigger: Trigger
    attempt: int = Field(description="The attempt running now (0 while first queued)")
    queued_at: datetime | None
    started_at: datetime | None
    deadline: datetime | None


class ExecutionPage(BaseModel):
    items: list[ExecutionRead]
    total: int
    limit: int
    offset: int


class SystemStatus(BaseModel):
    checks: dict[str, str]
    configs: int | None = Field(description="null while the database is unreachable")
    active_schedules: int | None = Field(description="null while Redis is unreachable")
    runs_in_flight: int | None
    runs_last_hour: int | None
    success_rate_last_hour: float | None
