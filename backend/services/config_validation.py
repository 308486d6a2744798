"""The rules a whole config must satisfy beyond its field types: a registered task type,
parameters that fit that type, and a schedule that fits its scheduler type.

Create and update both run the MERGED config through `check`, so an update can never leave
a config that a create would refuse. All field errors are reported at once, each located
relative to the config (`["schedule_config", "minute"]`). Parameters are validated here and
nowhere else: for a config, for a run's override, and for the plan a schedule stores.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from backend.errors import FieldSource, InvalidInput
from backend.models import TaskConfig
from backend.tasks import registry
from backend.triggers.specs import CRON_FIELDS, CronSpec, DateSpec, ScheduleSpec, parse_schedule

FieldError = dict[str, Any]


@dataclass(frozen=True)
class Checked:
    """Normalised values to store: coerced by the models, unset defaults left out (so a
    later change of a default in code applies to existing configs)."""

    parameters: dict[str, Any]
    schedule_config: dict[str, Any]
    schedule: ScheduleSpec


def _errors_at(loc: list[str | int], exc: ValidationError) -> list[FieldError]:
    return [
        {"loc": [*loc, *error["loc"]], "msg": error["msg"], "type": error["type"]}
        for error in exc.errors(include_url=False)
    ]


def _check_parameters(task_type: str, parameters: dict[str, Any]) -> tuple[Any, list[FieldError]]:
    registered = registry.get(task_type)
    if registered is None:
        known = ", ".join(t.name for t in registry.all_types())
        message = f"unknown task type {task_type!r}; registered types: {known}"
        return None, [{"loc": ["task_type"], "msg": message, "type": "value_error"}]
    try:
        model = registered.parameters.model_validate(parameters)
    except ValidationError as exc:
        return None, _errors_at(["parameters"], exc)
    # Unset defaults left out: the worker fills them in when it validates the run's kwargs.
    return model.model_dump(mode="json", by_alias=True, exclude_unset=True), []


def check_parameters(
    task_type: str, parameters: dict[str, Any], *, source: FieldSource = "input"
) -> dict[str, Any]:
    """The parameters to send or store, or InvalidInput (422) listing every field error."""
    checked, errors = _check_parameters(task_type, parameters)
    if errors:
        raise InvalidInput("Parameters do not fit the task type", fields=errors, source=source)
    return checked


def stored_parameters(config: TaskConfig) -> dict[str, Any]:
    """A stored config's parameters, checked again: its task type's model may have changed."""
    return check_parameters(config.task_type, config.parameters, source="stored")


def _check_schedule(
    scheduler_type: str, schedule_config: dict[str, Any], *, schedule_changed: bool
) -> tuple[ScheduleSpec | None, list[FieldError]]:
    try:
        spec = parse_schedule(scheduler_type, schedule_config)
    except ValidationError as exc:
        errors = _errors_at(["schedule_config"], exc)
        # The cron spec checks its expression as a whole (model-level error, empty loc):
        # point at the key the client sent.
        if scheduler_type == "cron":
            for error in errors:
                if error["loc"] == ["schedule_config"]:
                    error["loc"].extend(_bad_cron_keys(schedule_config))
        return None, errors
    # Only when the schedule is set or changed: renaming a fired one-off config stays possible.
    if schedule_changed and isinstance(spec, DateSpec) and spec.run_at <= datetime.now(UTC):
        error = {
            "loc": ["schedule_config", "run_date"],
            "msg": "run_date must be in the future",
            "type": "value_error",
        }
        return None, [error]
    return spec, []


def check_schedule(scheduler_type: str, schedule_config: dict[str, Any]) -> ScheduleSpec:
    """An unsaved schedule (a preview), or InvalidInput (422) listing every field error."""
    spec, errors = _check_schedule(scheduler_type, schedule_config, schedule_changed=True)
    if errors or spec is None:
        raise InvalidInput("Invalid schedule", fields=errors)
    return spec


def _bad_cron_keys(schedule_config: dict[str, Any]) -> list[str]:
    """The key to blame for an expression refused as a whole: `cron_expression`, or the
    first field that is invalid on its own (the others set to `*`)."""
    if "cron_expression" in schedule_config:
        return ["cron_expression"]
    for name in CRON_FIELDS:
        value = schedule_config.get(name)
        if isinstance(value, str):
            try:
                CronSpec.model_validate({name: value})
            except ValidationError:
                return [name]
    return []


def check(
    *,
    task_type: str,
    parameters: dict[str, Any],
    scheduler_type: str,
    schedule_config: dict[str, Any],
    schedule_changed: bool,
) -> Checked:
    """Raise InvalidInput (422) listing every field error, or return the values to store."""
    checked_parameters, parameter_errors = _check_parameters(task_type, parameters)
    spec, schedule_errors = _check_schedule(
        scheduler_type, schedule_config, schedule_changed=schedule_changed
    )
    errors = parameter_errors + schedule_errors
    if errors or spec is None:
        raise InvalidInput("Invalid task config", fields=errors)
    return Checked(
        parameters=checked_parameters,
        schedule_config=spec.model_dump(mode="json", by_alias=True, exclude_unset=True),
        schedule=spec,
    )
