"""Request and response models of a backfill: one run per past occurrence of a schedule."""

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from backend.schemas.common import RequestBody, UtcDatetime

MAX_OCCURRENCES = 1000

BackfillOverlap = Literal["allow", "skip"]


# Task ids name fire times in ms since the Unix epoch, and nothing ran before it.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class BackfillRequest(RequestBody):
    start: UtcDatetime = Field(description="First nominal fire time to run (inclusive)")
    end: UtcDatetime = Field(description="Last nominal fire time to run (inclusive; not future)")

    @field_validator("start", "end")
    @classmethod
    def _not_before_the_epoch(cls, value: datetime) -> datetime:
        if value < EPOCH:
            raise ValueError("must not be before 1970-01-01T00:00:00Z")
        return value

    dry_run: bool = Field(default=False, description="List the runs, send none")
    overlap_policy: BackfillOverlap = Field(
        default="allow",
        description="`skip`: a backfill run is refused when it would start while another run "
        "of the config is in flight (the worker's overlap rule); `allow`: it always runs",
    )


SkipReason = Literal["recorded", "in_flight", "refused"]


class BackfillSkip(BaseModel):
    scheduled_for: datetime
    task_id: str
    reason: SkipReason = Field(
        description="`recorded`: a run for this fire time has its record already; "
        "`in_flight`: one is queued or running; `refused`: an earlier backfill's run of it "
        "was refused by `overlap_policy: skip`, and its task id stays taken for "
        "QUEUED_RUN_TTL_SECONDS (run it by hand meanwhile)"
    )


class BackfillResponse(BaseModel):
    """The runs sent (or, on a dry run, that would be): `task_ids[i]` is the run for
    `occurrences[i]`; occurrences that already ran are under `skipped`."""

    dry_run: bool
    count: int
    task_ids: list[str]
    occurrences: list[datetime]
    skipped: list[BackfillSkip]
    not_sent: list[datetime] = Field(
        default=[],
        description="Occurrences not sent because the broker or Redis failed midway; "
        "the same backfill again sends them (and skips the rest)",
    )
