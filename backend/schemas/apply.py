"""The declarative apply: a document of configs matched by name, and the plan it answers."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from backend.models import ScheduleStatus
from backend.schemas.common import RequestBody
from backend.schemas.configs import TaskConfigCreate

# What a document may ask of a schedule; `completed` is reached by firing, never asked for.
DesiredStatus = Literal["active", "inactive", "paused"]
MAX_APPLY_CONFIGS = 1000


class AppliedConfig(TaskConfigCreate):
    """A config as in create; fields left out take their defaults, as in create."""

    model_config = ConfigDict(json_schema_extra=None)

    schedule_status: DesiredStatus | None = Field(
        default=None,
        description="The schedule's status after the apply; left out: as it is "
        "(a new config's is inactive)",
    )


class ApplyRequest(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "configs": [
                        {
                            "name": "nightly ping",
                            "task_type": "http.request",
                            "scheduler_type": "cron",
                            "schedule_config": {"cron_expression": "0 3 * * *"},
                            "parameters": {"url": "https://example.com/health"},
                            "schedule_status": "active",
                        }
                    ],
                    "prune": False,
                    "dry_run": True,
                }
            ]
        }
    )

    configs: list[AppliedConfig] = Field(max_length=MAX_APPLY_CONFIGS)
    prune: bool = Field(default=False, description="delete every config the document omits")
    dry_run: bool = Field(default=False, description="only answer the plan")
    confirm_empty: bool = Field(
        default=False, description="needed to prune with no configs (deletes them all)"
    )


class ConfigChange(BaseModel):
    name: str
    changes: dict[str, list[Any]] = Field(description="`{field: [old, new]}`")


class ApplyPlan(BaseModel):
    create: list[str] = Field(default_factory=list)
    update: list[ConfigChange] = Field(default_factory=list)
    delete: list[str] = Field(default_factory=list, description="only with `prune`")
    unchanged: list[str] = Field(default_factory=list)
    applied: bool = Field(description="false on a dry run: nothing was written")
    schedule_status: dict[str, ScheduleStatus] = Field(
        default_factory=dict,
        description="each config of the document: its status after the apply (planned, on a "
        "dry run)",
    )
    schedule_errors: dict[str, str] = Field(
        default_factory=dict,
        description="configs whose schedule change failed after the configs were committed",
    )
