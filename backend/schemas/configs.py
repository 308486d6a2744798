"""Task config requests and responses; task types."""

from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, computed_field

from backend.models import OverlapPolicy, ScheduleStatus
from backend.schemas.common import WHOLE, JsonObject, Name, RequestBody, Text, UpdateBody
from backend.schemas.executions import ExecutionStats
from backend.schemas.notifications import AlertRules
from backend.triggers import words
from backend.triggers.specs import SchedulerType

Description = Annotated[Text, Field(max_length=10_000)]
TaskTypeName = Annotated[Text, Field(min_length=1, max_length=200)]
MaxRetries = Annotated[int, Field(ge=0, le=10), WHOLE]
TimeoutSeconds = Annotated[int, Field(ge=1, le=86400), WHOLE]
Priority = Annotated[int, Field(ge=0, le=9), WHOLE]
PauseAfterFailures = Annotated[int, Field(ge=1, le=100), WHOLE]


class TaskConfigCreate(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "nightly ping",
                    "task_type": "http.request",
                    "scheduler_type": "cron",
                    "schedule_config": {"cron_expression": "0 3 * * *", "timezone": "UTC"},
                    "parameters": {"url": "https://example.com/health"},
                },
                {
                    "name": "short nap",
                    "task_type": "demo.sleep",
                    "scheduler_type": "interval",
                    "schedule_config": {"minutes": 5},
                    "parameters": {"seconds": 1},
                },
            ]
        }
    )

    name: Name
    description: Description | None = None
    task_type: TaskTypeName
    scheduler_type: SchedulerType
    schedule_config: JsonObject = Field(default_factory=dict)
    parameters: JsonObject = Field(default_factory=dict)
    max_retries: MaxRetries = 0
    timeout_seconds: TimeoutSeconds = 300
    priority: Priority = 5
    overlap_policy: OverlapPolicy = "skip"
    alerts: AlertRules | None = None
    pause_after_failures: PauseAfterFailures | None = Field(
        default=None, description="Pause the schedule after this many failed scheduled runs"
    )


class TaskConfigUpdate(UpdateBody):
    """Only the fields sent change; objects (`schedule_config`, `parameters`) are replaced
    whole, not merged key by key. Null clears `description`, `alerts` and
    `pause_after_failures`, nothing else."""

    NULLABLE: ClassVar[tuple[str, ...]] = ("description", "alerts", "pause_after_failures")

    name: Name | None = None
    description: Description | None = None
    task_type: TaskTypeName | None = None
    scheduler_type: SchedulerType | None = None
    schedule_config: JsonObject | None = None
    parameters: JsonObject | None = None
    max_retries: MaxRetries | None = None
    timeout_seconds: TimeoutSeconds | None = None
    priority: Priority | None = None
    overlap_policy: OverlapPolicy | None = None
    alerts: AlertRules | None = None
    pause_after_failures: PauseAfterFailures | None = None


class TaskConfigRead(BaseModel):
    """A stored config merged with its live state from Redis."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str | None
    task_type: str
    scheduler_type: SchedulerType
    schedule_config: dict[str, Any]
    parameters: dict[str, Any]
    max_retries: int
    timeout_seconds: int
    priority: int
    overlap_policy: OverlapPolicy
    alerts: dict[str, Any] | None
    pause_after_failures: int | None
    created_at: datetime
    updated_at: datetime
    schedule_status: ScheduleStatus = "inactive"
    next_run_at: datetime | None = None
    schedule_note: str | None = None
    remaining_runs: int | None = Field(
        default=None, description="Scheduled fires `max_runs` still allows; null without it"
    )
    stats: ExecutionStats | None = None
    recent_history: list[dict[str, Any]] | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def schedule_description(self) -> str:
        """The schedule in words, e.g. "At 02:00, every day (Europe/Berlin)"."""
        return words.describe(self.scheduler_type, self.schedule_config)


class TaskTypeRead(BaseModel):
    name: str
    description: str
    parameters_schema: dict[str, Any]
