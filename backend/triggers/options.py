"""The options a repeating schedule (cron, interval) may add to its `schedule_config`: a window
(`start_at`, `end_at`), a run limit (`max_runs`), `jitter_seconds` and `exclude`d days.

Only validation and the plain questions about them live here; `fires.Timing` applies them.
"""

import hashlib
import math
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Self
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

MAX_JITTER_SECONDS = 3600
MAX_RUNS = 1_000_000
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def as_utc(moment: datetime) -> datetime:
    """Naive datetimes are UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _day(value: str) -> str:
    # A plain string checked here, not pydantic's lax date (which takes timestamps too).
    if not _DAY.match(value):
        raise ValueError(f"{value!r} is not a date like 2026-12-25")
    try:
        date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid date: {exc}") from exc
    return value


Day = Annotated[str, AfterValidator(_day)]


class ExcludedRange(BaseModel):
    """Days `from` .. `to`, both included."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    first: Day = Field(alias="from")
    last: Day = Field(alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.first > self.last:  # ISO dates order as strings
            raise ValueError(f"'from' ({self.first}) is after 'to' ({self.last})")
        return self


# A day or a range, told apart by shape, so an error names what the entry was taken for.
Excluded = Annotated[
    Annotated[Day, Tag("day")] | Annotated[ExcludedRange, Tag("range")],
    Discriminator(lambda entry: "day" if isinstance(entry, str) else "range"),
]


class ScheduleOptions(BaseModel):
    """Mixed into the cron and interval specs (declared after their own fields, so their
    values are already in `info.data` when the options are checked against them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start_at: Annotated[datetime, AfterValidator(as_utc)] | None = None
    end_at: Annotated[datetime, AfterValidator(as_utc)] | None = None
    max_runs: int | None = Field(default=None, ge=1, le=MAX_RUNS)
    jitter_seconds: int = Field(default=0, ge=0, le=MAX_JITTER_SECONDS)
    exclude: list[Excluded] = Field(default_factory=list, max_length=1000)

    @field_validator("end_at")
    @classmethod
    def _after_start(cls, end_at: datetime | None, info: ValidationInfo) -> datetime | None:
        start_at = info.data.get("start_at")
        if end_at is not None and start_at is not None and end_at <= start_at:
            raise ValueError(f"end_at must be after start_at ({start_at.isoformat()})")
        return end_at

    @property
    def zone(self) -> ZoneInfo:
        """The zone whose calendar days `exclude` names."""
        return ZoneInfo(getattr(self, "timezone", "UTC"))

    def excluded_until(self, moment: datetime) -> datetime | None:
        """When `moment` falls on an excluded day: the instant that excluded span ends (the
        next local midnight after its last day); otherwise None."""
        if not self.exclude:
            return None
        day = moment.astimezone(self.zone).date().isoformat()
        for entry in self.exclude:
            first, last = (entry, entry) if isinstance(entry, str) else (entry.first, entry.last)
            if first <= day <= last:
                following = date.fromisoformat(last) + timedelta(days=1)
                return as_utc(datetime.combine(following, time(), tzinfo=self.zone))
        return None


def jitter_offset(seed: int, nominal: datetime, limit: timedelta) -> timedelta:
    """Whole seconds in [0, limit), the same on every replica for (seed, nominal time)."""
    seconds = limit.total_seconds()
    if seconds < 1:
        return timedelta()
    digest = hashlib.sha256(f"{seed}:{round(nominal.timestamp() * 1000)}".encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    return timedelta(seconds=math.floor(fraction * seconds))


OPTION_KEYS: tuple[str, ...] = tuple(ScheduleOptions.model_fields)


def max_runs_of(schedule_config: Mapping[str, Any]) -> int | None:
    """The run limit of a validated schedule_config (stored, or in a plan); None: no limit."""
    max_runs = schedule_config.get("max_runs")
    return int(max_runs) if max_runs is not None else None


def refuse_options(values: Any, scheduler_type: str) -> Any:
    """For the one-off and manual specs: name the option that only repeating schedules take."""
    if isinstance(values, dict):
        given = [name for name in OPTION_KEYS if name in values]
        if given:
            raise ValueError(
                f"{', '.join(given)}: only cron and interval schedules take these options, "
                f"not {scheduler_type}"
            )
    return values
