"""The next runs of a schedule exactly as the scheduler will send them: window, max_runs,
excluded days and jitter applied, from the same `Timing` the scheduler queues fires with.

An active schedule's list starts from its live state (its anchor and the fires `max_runs`
has left); a paused one's is what `resume` now would give (same anchor, same count); an
inactive or completed one's what `start` now would give. An unsaved schedule has no config id
to seed its jitter with: its jittered times show the spread, not the saved config's own times.
"""

from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from backend.models import TaskConfig
from backend.schemas.previews import Preview, PreviewRun, SkippedRun
from backend.services import config_validation, schedule_entries
from backend.services.redis import scheduler as schedule_state
from backend.triggers.fires import Timing, upcoming
from backend.triggers.options import max_runs_of
from backend.triggers.specs import parse_schedule


def _preview(
    timing: Timing,
    *,
    now: datetime,
    anchor: datetime,
    count: int,
    left: int | None,
    active: bool,
) -> Preview:
    options = timing.options
    zone = options.zone if options is not None else UTC
    fires = upcoming(
        timing, after=now, anchor=anchor, count=count if left is None else min(count, left)
    )
    until = fires[-1].nominal if fires else now
    skipped = timing.excluded_between(now, until, anchor=anchor, limit=count)
    return Preview(
        active=active,
        timezone=str(zone),
        remaining_runs=left,
        runs=[PreviewRun(at=f.at, local=f.at.astimezone(zone), nominal=f.nominal) for f in fires],
        skipped=[SkippedRun(nominal=n, local=n.astimezone(zone)) for n in skipped],
    )


async def next_runs(
    redis: Redis, config: TaskConfig, *, count: int, now: datetime | None = None
) -> Preview:
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    state = await schedule_state.read_state(redis, config.id)
    if state.status in ("active", "paused") and state.plan is not None:
        plan = schedule_entries.Plan.model_validate(state.plan)
        return _preview(
            plan.timing(), now=now, anchor=state.anchor or now, count=count,
            left=schedule_entries.remaining_runs(plan.max_runs, state),
            active=state.status == "active",
        )  # fmt: skip
    spec = parse_schedule(config.scheduler_type, config.schedule_config)
    return _preview(
        Timing(spec, seed=config.id), now=now, anchor=now, count=count,
        left=max_runs_of(config.schedule_config), active=False,
    )  # fmt: skip


def preview(
    scheduler_type: str,
    schedule_config: dict[str, Any],
    *,
    count: int,
    now: datetime | None = None,
) -> Preview:
    """An unsaved schedule's next runs, as if started now; 422 with field errors if invalid."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    spec = config_validation.check_schedule(scheduler_type, schedule_config)
    # The validated values: the input's may be in another type ("5").
    left = max_runs_of(spec.model_dump())
    return _preview(Timing(spec), now=now, anchor=now, count=count, left=left, active=False)
