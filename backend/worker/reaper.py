"""The reaper: records runs whose worker died (SIGKILL, OOM, power loss) as failed, "lost".

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
from backend.worker.records import Ending, Outcome, finish

logger = logging.getLogger(__name__)

LOST_ERROR = "WorkerLost: no outcome was recorded by the run's deadline (its worker stopped)"


async def reap_once(resources: Resources, settings: Settings) -> int:
    """Record every run past its deadline as lost; returns how many were recorded."""
    runs = await live_runs.claim_due(resources.redis, lease_seconds=settings.reaper_lease_seconds)
    if not runs:
        return 0
    now = datetime.now(UTC)
    endings = [
        Ending(
            outcome=Outcome(
                task_id=run.task_id,
                config_id=run.config_id,
                is_success=False,
                started_at=run.started_at or now,
                completed_at=now,
                trigger=run.trigger,
                attempts=max(run.attempt, 1),
                error_message=LOST_ERROR,
                scheduled_for=run.scheduled_for,
            ),
            event="lost",
            task_type=run.task_type,
        )
        for run in runs
    ]
    inserted = await finish(resources, endings)
    for run in runs:
        if run.task_id in inserted:
            logger.warning("run %s of config %s recorded as lost", run.task_id, run.config_id)
    return len(inserted)


async def run_forever(resources: Resources, settings: Settings) -> None:
    while True:
        try:
            await reap_once(resources, settings)
        except Exception:
            # The runner boundary: an outage must not end the reaper; claimed runs come due
            # again after their lease and are recorded on a later tick.
            logger.exception("reaping lost runs failed; retrying in the next tick")
        await asyncio.sleep(settings.reaper_interval_seconds)
