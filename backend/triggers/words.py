"""A schedule in words, for people: "At 02:00, every day (Europe/Berlin)", "Every 5 minutes".

Cron expressions are described by cron-descriptor; the schedule specs of backend.triggers.specs
are the input, so the words follow the same shorthands and fields the scheduler fires on.
"""

import json
from datetime import timedelta
from functools import lru_cache
from typing import Any

from cron_descriptor import ExpressionDescriptor, Options
from cron_descriptor.Exception import FormatError, MissingFieldError, WrongArgumentError
from pydantic import ValidationError

from backend.triggers.options import ScheduleOptions
from backend.triggers.specs import CronSpec, DateSpec, IntervalSpec, ManualSpec, parse_schedule

_OPTIONS = Options(use_24hour_time_format=True, locale_code="en_US")
_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def _cron(spec: CronSpec) -> str:
    expression = spec.expression
    try:
        words = ExpressionDescriptor(expression, _OPTIONS).get_description()
    except (FormatError, MissingFieldError, WrongArgumentError):
        # cronsim accepts a few forms cron-descriptor does not describe; show them as written.
        words = f"Cron {expression}"
    # cron-descriptor says "At 02:00" for a daily time; people expect the "every day".
    if expression.split()[2:] == ["*", "*", "*"] and words.startswith("At "):
        words += ", every day"
    return f"{words} ({spec.timezone})"


def _interval(every: timedelta) -> str:
    left = int(every.total_seconds())
    parts = []
    for unit, size in _UNITS:
        count, left = divmod(left, size)
        if count:
            parts.append(f"{count} {unit}" + ("s" if count > 1 else ""))
    return "Every " + " ".join(parts)


def _options(options: ScheduleOptions) -> str:
    parts = []
    if options.start_at is not None:
        parts.append(f"from {options.start_at:%Y-%m-%d %H:%M} UTC")
    if options.end_at is not None:
        parts.append(f"until {options.end_at:%Y-%m-%d %H:%M} UTC")
    if options.max_runs is not None:
        parts.append(f"at most {options.max_runs} run" + ("s" if options.max_runs > 1 else ""))
    if options.jitter_seconds:
        parts.append(f"up to {options.jitter_seconds} s late (jitter)")
    if options.exclude:
        named = [e if isinstance(e, str) else f"{e.first} to {e.last}" for e in options.exclude]
        parts.append("except " + (", ".join(named) if len(named) <= 3 else f"{len(named)} periods"))
    return "".join(f", {part}" for part in parts)


def describe(scheduler_type: str, schedule_config: dict[str, Any]) -> str:
    """Words for a stored schedule; a config that no longer parses is shown as such."""
    return _describe(scheduler_type, json.dumps(schedule_config, sort_keys=True))


# A page of 100 configs asks for 100 descriptions; parsing and describing a cron expression
# costs about a tenth of a millisecond, and most configs share a few schedules.
@lru_cache(maxsize=4096)
def _describe(scheduler_type: str, schedule_json: str) -> str:
    try:
        spec = parse_schedule(scheduler_type, json.loads(schedule_json))
    except (ValidationError, KeyError):
        return f"Invalid {scheduler_type} schedule"
    match spec:
        case CronSpec():
            return _cron(spec) + _options(spec)
        case IntervalSpec():
            return _interval(spec.every) + _options(spec)
        case DateSpec():
            return f"Once, at {spec.run_at:%Y-%m-%d %H:%M:%S} UTC"
        case ManualSpec():
            return "Manual: only when run by hand"
