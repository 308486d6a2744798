"""The reaper: records runs whose worker died (SIGKILL, OOM, power loss) as failed, "lost";
also runs cancelled before they started, and sends again a waiting (buffer_one) run whose
worker died before sending it.

It runs in every worker process (started in the worker startup event): any number may run,
because each claims due runs atomically for a lease before recording them, and the record
insert is idempotent besides.
"""

import asyncio
import logging
from datetime import UTC, datetime

from backend.config import Settings
from backend.resources import Resources
from backend.services.redis import timeout as live_runs
from backend.worker import waiting
from backend.worker.records import Ending, Outcome, finish

logger = logging.getLogger(__name__)

LOST_ERROR = "WorkerLost: no outcome was recorded by the run's deadline (its worker stopped)"


async def reap_once(resources: Resources, settings: Settings) -> int:
    """Record every run past its deadline as lost (or, cancelled before it started, as
    cancelled), and send waiting runs let go but never started again; returns how many
    records this call wrote."""
    runs = await live_runs.claim_due(resources.redis, lease_seconds=settings.reaper_lease_seconds)
    now = datetime.now(UTC)
    # A run whose next attempt started just after the claim is no longer due: left alone.
    runs = [run for run in runs if not (run.state == live_runs.RUNNING and _ahead(run, now))]
    again = {
        run.task_id: run.resend for run in runs if run.state == live_runs.QUEUED and run.resend
    }
    if again:
        await waiting.send_again(list(again.values()))
    endings = [_ending(run, now) for run in runs if run.task_id not in again]
    if not endings:
        return 0
    inserted = await finish(resources, endings)
    for ending in endings:
        outcome = ending.outcome
        if outcome.task_id in inserted and ending.event == "lost":
            logger.warning(
                "run %s of config %s recorded as lost", outcome.task_id, outcome.config_id
            )
    return len(inserted)


def _ahead(run: live_runs.LiveRun, now: datetime) -> bool:
    return run.deadline is not None and run.deadline > now


def _ending(run: live_runs.LiveRun, now: datetime) -> Ending:
    cancelled = run.state == live_runs.CANCELLED
    return Ending(
        outcome=Outcome(
            task_id=run.task_id,
            config_id=run.config_id,
            is_success=False,
            started_at=run.started_at or now,
            completed_at=now,
            trigger=run.trigger,
            # A run cancelled before its first attempt made none.
            attempts=run.attempt if cancelled else max(run.attempt, 1),
            error_message=run.cancel if cancelled else LOST_ERROR,
            scheduled_for=run.scheduled_for,
        ),
        event="cancelled" if cancelled else "lost",
        task_type=run.task_type,
    )


async def run_forever(resources: Resources, settings: Settings) -> None:
    while True:
        try:
            await reap_once(resources, settings)
        except Exception:
            # The runner boundary: an outage must not end the reaper; claimed runs come due
            # again after their lease and are recorded on a later tick.
            logger.exception("reaping lost runs failed; retrying in the next tick")
        await asyncio.sleep(settings.reaper_interval_seconds)
