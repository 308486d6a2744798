"""Which schedule actions take a config from its status to the one a document asks for.

Pure: the apply plans with it (and shows the planned status on a dry run), then runs the
actions through the state machine of `schedules`.
"""

from backend.models import ScheduleStatus
from backend.schemas.apply import DesiredStatus
from backend.services.schedules import TRANSITIONS, Action

SCHEDULED: frozenset[ScheduleStatus] = frozenset({"active", "paused"})


def schedule_actions(
    *,
    status: ScheduleStatus,
    desired: DesiredStatus | None,
    config_changed: bool,
    schedule_changed: bool,
    manual: bool,
) -> list[Action]:
    """The actions, in order. `desired` None keeps the status; a changed config that is
    scheduled is reloaded first, so a later pause or resume keeps the new settings."""
    if manual and status in SCHEDULED:
        return ["stop"]  # a config turned manual leaves its schedule, as an update does
    actions: list[Action] = ["reload"] if config_changed and status in SCHEDULED else []
    if desired is None or desired == status:
        return actions
    if desired == "inactive":
        return ["stop"] if status in SCHEDULED else actions
    if status == "completed" and not schedule_changed:
        # A one-off that fired stays done: applying its document again must not re-arm it
        # (its run_date has passed). A new run_date does re-arm it.
        return actions
    if status in ("inactive", "completed"):
        return ["start"] if desired == "active" else ["start", "pause"]
    return [*actions, "resume" if desired == "active" else "pause"]


def status_after(status: ScheduleStatus, actions: list[Action]) -> ScheduleStatus:
    """The status the actions lead to (each one fits the status before it)."""
    for action in actions:
        allowed, result = TRANSITIONS[action]
        assert status in allowed, f"{action} does not fit {status}"
        status = result or status  # type: ignore[assignment]
    return status
