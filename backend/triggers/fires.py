"""Runs of fire times from a spec: the next few after a moment, or all within a span."""

from datetime import datetime, timedelta

from backend.triggers.specs import ScheduleSpec


def upcoming(
    spec: ScheduleSpec, *, after: datetime, anchor: datetime | None, count: int
) -> list[datetime]:
    """The next `count` fire times strictly after `after` (fewer if the schedule ends)."""
    fires: list[datetime] = []
    while len(fires) < count:
        fire = spec.next_fire_after(fires[-1] if fires else after, anchor=anchor)
        if fire is None:
            break
        fires.append(fire)
    return fires


def occurrences(
    spec: ScheduleSpec, *, since: datetime, until: datetime, anchor: datetime | None, limit: int
) -> list[datetime]:
    """The fire times in [since, until], oldest first, at most `limit` of them."""
    fires: list[datetime] = []
    fire = spec.next_fire_after(since - timedelta(milliseconds=1), anchor=anchor)
    while fire is not None and fire <= until and len(fires) < limit:
        fires.append(fire)
        fire = spec.next_fire_after(fire, anchor=anchor)
    return fires
