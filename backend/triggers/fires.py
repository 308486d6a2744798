"""Fire times of one config's schedule: its spec's grid with the options applied (window,
excluded days, jitter), the next few after a moment, or all within a span.

Jitter is a pure function of (seed = config id, nominal time), and a fire's offset stays
below the gap to the next nominal time: fire times keep the order of their nominal times,
every replica computes the same ones, and the fire after a fire is found from its time alone.
`max_runs` is not applied here: it counts fires actually sent (the schedule state does).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from backend.triggers.options import ScheduleOptions, as_utc, jitter_offset
from backend.triggers.specs import IntervalSpec, ScheduleSpec

_TICK = timedelta(microseconds=1)


@dataclass(frozen=True, order=True)
class Fire:
    at: datetime  # when the scheduler sends it (UTC)
    nominal: datetime  # the schedule's own time for it, before jitter


@dataclass(frozen=True)
class Timing:
    """A spec as one config fires it."""

    spec: ScheduleSpec
    seed: int = 0

    @property
    def options(self) -> ScheduleOptions | None:
        return self.spec if isinstance(self.spec, ScheduleOptions) else None

    def next_fire(self, after: datetime, *, anchor: datetime | None = None) -> Fire | None:
        """The first fire sent strictly after `after`, or None when the schedule ends.

        No nominal time is at or before `anchor` (the moment the schedule was started)."""
        after = as_utc(after)
        options = self.options
        if options is None:
            nominal = self.spec.next_fire_after(after, anchor=anchor)
            return Fire(nominal, nominal) if nominal is not None else None
        grid = self._grid_anchor(options, anchor)
        # A fire sent after `after` has its nominal time after `after - jitter`.
        cursor = after - timedelta(seconds=options.jitter_seconds)
        if anchor is not None:
            cursor = max(cursor, as_utc(anchor))
        if options.start_at is not None:
            cursor = max(cursor, options.start_at - _TICK)
        while True:
            nominal = self.spec.next_fire_after(cursor, anchor=grid)
            if nominal is None or (options.end_at is not None and nominal > options.end_at):
                return None
            excluded_until = options.excluded_until(nominal)
            if excluded_until is not None:
                cursor = max(nominal, excluded_until - _TICK)
                continue
            cursor = nominal
            fire = Fire(nominal + self._offset(options, nominal, grid), nominal)
            if fire.at > after:
                return fire

    def _grid_anchor(self, options: ScheduleOptions, anchor: datetime | None) -> datetime | None:
        # An interval with start_at runs on the grid start_at + k * every, k >= 0.
        if isinstance(self.spec, IntervalSpec) and options.start_at is not None:
            return options.start_at - self.spec.every
        return anchor

    def _offset(
        self, options: ScheduleOptions, nominal: datetime, grid: datetime | None
    ) -> timedelta:
        if not options.jitter_seconds:
            return timedelta()
        limit = timedelta(seconds=options.jitter_seconds)
        following = self.spec.next_fire_after(nominal, anchor=grid)
        if following is not None:
            limit = min(limit, following - nominal)
        if options.end_at is not None:
            limit = min(limit, options.end_at - nominal)
        return jitter_offset(self.seed, nominal, limit)

    def excluded_between(
        self, since: datetime, until: datetime, *, anchor: datetime | None = None, limit: int = 100
    ) -> list[datetime]:
        """Nominal times in (since, until] skipped as excluded days (for previews)."""
        options = self.options
        if options is None or not options.exclude:
            return []
        grid = self._grid_anchor(options, anchor)
        skipped: list[datetime] = []
        cursor = max(as_utc(since), as_utc(anchor)) if anchor is not None else as_utc(since)
        while len(skipped) < limit:
            nominal = self.spec.next_fire_after(cursor, anchor=grid)
            if nominal is None or nominal > until:
                break
            cursor = nominal
            if options.excluded_until(nominal) is not None and (
                options.start_at is None or nominal >= options.start_at
            ):
                skipped.append(nominal)
        return skipped


def upcoming(timing: Timing, *, after: datetime, anchor: datetime | None, count: int) -> list[Fire]:
    """The next `count` fires sent strictly after `after` (fewer if the schedule ends)."""
    fires: list[Fire] = []
    while len(fires) < count:
        fire = timing.next_fire(fires[-1].at if fires else after, anchor=anchor)
        if fire is None:
            break
        fires.append(fire)
    return fires


def occurrences(
    timing: Timing, *, since: datetime, until: datetime, anchor: datetime | None, limit: int
) -> list[Fire]:
    """The fires sent in [since, until], oldest first, at most `limit` of them."""
    fires: list[Fire] = []
    fire = timing.next_fire(since - timedelta(milliseconds=1), anchor=anchor)
    while fire is not None and fire.at <= until and len(fires) < limit:
        fires.append(fire)
        fire = timing.next_fire(fire.at, anchor=anchor)
    return fires
