"""Previews of a schedule's next runs, saved or not."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from backend.schemas.common import WHOLE, JsonObject, RequestBody
from backend.triggers.specs import SchedulerType

PreviewCount = Annotated[int, Field(ge=1, le=100), WHOLE]


class PreviewRun(BaseModel):
    at: datetime = Field(description="When the scheduler sends it (UTC), jitter included")
    local: datetime = Field(description="`at` in the schedule's time zone")
    nominal: datetime = Field(description="The schedule's own time for it, before jitter")


class SkippedRun(BaseModel):
    nominal: datetime
    local: datetime
    reason: str = "excluded"


class Preview(BaseModel):
    active: bool = Field(description="false: the list is what a start (or resume) now would give")
    timezone: str
    remaining_runs: int | None = Field(description="what max_runs still allows; null: no limit")
    runs: list[PreviewRun]
    skipped: list[SkippedRun] = Field(
        description="Nominal times on excluded days between now and the last run listed"
    )


class PreviewRequest(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "scheduler_type": "cron",
                    "schedule_config": {"cron_expression": "0 9 * * 1-5", "jitter_seconds": 300},
                    "count": 5,
                }
            ]
        }
    )

    scheduler_type: SchedulerType
    schedule_config: JsonObject = Field(default_factory=dict)
    count: PreviewCount = 10
