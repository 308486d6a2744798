"""Schedule specs: validation of `schedule_config` per scheduler type, and next fire times.

The API (validation, `next_run_at`) and the scheduler (what it fires) both use these
models, so the time the API shows is the time the scheduler fires.

Cron uses cronsim, which follows Debian cron on DST changes: a time skipped by the
spring-forward gap fires at the first valid time after it (02:30 -> 03:00), and a
fixed time in the repeated autumn hour fires once; wildcard hours fire in both passes.
"""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from backend.triggers.options import ScheduleOptions, as_utc, refuse_options

__all__ = ["as_utc"]  # the one conversion to UTC, also used by the request schemas

SchedulerType = Literal["cron", "interval", "date", "manual"]

SHORTHANDS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
CRON_FIELDS = ("minute", "hour", "day", "month", "day_of_week")
_INTERVAL_UNITS = ("days", "hours", "minutes", "seconds")


def _known_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc
    return name


class _Spec(BaseModel):
    """Each spec defines `next_fire_after(after, *, anchor=None)`: the first fire time
    strictly after `after`, in UTC, or None when the schedule fires no more."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class _CronFields(_Spec):
    cron_expression: str | None = Field(default=None, max_length=200)
    minute: str | None = Field(default=None, max_length=100)
    hour: str | None = Field(default=None, max_length=100)
    day: str | None = Field(default=None, max_length=100)
    month: str | None = Field(default=None, max_length=100)
    day_of_week: str | None = Field(default=None, max_length=100)
    timezone: Annotated[str, AfterValidator(_known_timezone)] = "UTC"


class CronSpec(ScheduleOptions, _CronFields):
    """A cron expression in a time zone, with the repeating-schedule options."""

    @property
    def expression(self) -> str:
        if self.cron_expression is not None:
            text = " ".join(self.cron_expression.split())
            return SHORTHANDS.get(text.lower(), text)
        return " ".join(getattr(self, name) or "*" for name in CRON_FIELDS)

    @model_validator(mode="after")
    def _valid_expression(self) -> Self:
        given_fields = [name for name in CRON_FIELDS if getattr(self, name) is not None]
        if self.cron_expression is not None and given_fields:
            raise ValueError("give either cron_expression or the fields, not both")
        if self.cron_expression is None and not given_fields:
            raise ValueError("give cron_expression or at least one of " + ", ".join(CRON_FIELDS))
        expression = self.expression
        if len(expression.split()) != 5:
            raise ValueError(f"cron expression {expression!r} must have 5 fields")
        try:
            CronSim(expression, datetime.now(UTC))
        except CronSimError as exc:
            raise ValueError(f"invalid cron expression {expression!r}: {exc}") from exc
        return self

    def next_fire_after(self, after: datetime, *, anchor: datetime | None = None) -> datetime:
        after = as_utc(after)
        local = after.astimezone(ZoneInfo(self.timezone))
        # Inside the second pass of a repeated autumn hour cronsim may answer with the first
        # pass of the same wall time, which is earlier: step on until strictly after.
        for fire in CronSim(self.expression, local):
            if fire.astimezone(UTC) > after:
                return fire.astimezone(UTC)
        raise AssertionError("unreachable: a valid cron expression fires forever")


class _IntervalFields(_Spec):
    days: int = Field(default=0, ge=0, le=3650)
    hours: int = Field(default=0, ge=0, le=87600)
    minutes: int = Field(default=0, ge=0, le=5_256_000)
    seconds: int = Field(default=0, ge=0, le=315_360_000)


class IntervalSpec(ScheduleOptions, _IntervalFields):
    """A fixed period on a grid from its anchor, with the repeating-schedule options."""

    @field_validator("jitter_seconds")
    @classmethod
    def _jitter_within_period(cls, jitter: int, info: ValidationInfo) -> int:
        every = timedelta(**{unit: info.data.get(unit, 0) for unit in _INTERVAL_UNITS})
        if every >= timedelta(seconds=1) and jitter >= every.total_seconds():
            raise ValueError(
                f"jitter_seconds must be less than the interval ({int(every.total_seconds())} s)"
            )
        return jitter

    @property
    def every(self) -> timedelta:
        return timedelta(
            days=self.days, hours=self.hours, minutes=self.minutes, seconds=self.seconds
        )

    @model_validator(mode="after")
    def _at_least_a_second(self) -> Self:
        if self.every < timedelta(seconds=1):
            raise ValueError("interval must be at least 1 second in total")
        return self

    def next_fire_after(self, after: datetime, *, anchor: datetime | None = None) -> datetime:
        """Fires sit on the grid anchor + k * every (k >= 1), so restarts never shift it."""
        after = as_utc(after)
        anchor = as_utc(anchor) if anchor is not None else after
        if after < anchor:
            return anchor + self.every
        steps = (after - anchor) // self.every + 1
        return anchor + steps * self.every


class DateSpec(_Spec):
    run_date: datetime

    @model_validator(mode="before")
    @classmethod
    def _no_options(cls, values: Any) -> Any:
        return refuse_options(values, "date")

    @property
    def run_at(self) -> datetime:
        return as_utc(self.run_date)

    def next_fire_after(
        self, after: datetime, *, anchor: datetime | None = None
    ) -> datetime | None:
        return self.run_at if self.run_at > as_utc(after) else None


class ManualSpec(_Spec):
    @model_validator(mode="before")
    @classmethod
    def _no_options(cls, values: Any) -> Any:
        return refuse_options(values, "manual")

    def next_fire_after(self, after: datetime, *, anchor: datetime | None = None) -> None:
        return None


ScheduleSpec = CronSpec | IntervalSpec | DateSpec | ManualSpec

SPEC_MODELS: dict[str, type[ScheduleSpec]] = {
    "cron": CronSpec,
    "interval": IntervalSpec,
    "date": DateSpec,
    "manual": ManualSpec,
}


def parse_schedule(scheduler_type: str, schedule_config: dict[str, Any]) -> ScheduleSpec:
    """Validate `schedule_config` for its type; raises pydantic.ValidationError or KeyError."""
    return SPEC_MODELS[scheduler_type].model_validate(schedule_config)
