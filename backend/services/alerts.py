"""Alert rules: what the notifier makes of the inbox (runs of alerting configs that ended,
missed fires, late fires): failure streaks, recovery, pause after failures, and the
deliveries to queue.

One notifier at a time works the inbox (a transaction-scoped advisory lock), oldest first,
so a config's streak counts its runs in order; the deliveries it queues are sent by every
notifier (backend/services/notifications.py). Each event has a deterministic id, unique per
channel, so a happening handled twice still notifies once. The scheduler writes its missed and
late fires into the inbox through backend/services/alert_inbox.py.
"""

import logging
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.config import Settings
from backend.models import AlertInbox, AlertState, TaskConfig, TaskExecution
from backend.services import notifications, schedules
from backend.services.redis import scheduler as schedule_state

logger = logging.getLogger(__name__)

INBOX_BATCH = 200
INBOX_LOCK = 7_150_315  # pg_advisory_xact_lock key of the inbox (any constant, one per use)


def payload(
    event: str,
    config: TaskConfig,
    *,
    settings: Settings,
    event_id: str,
    run: dict[str, Any] | None = None,
    consecutive_failures: int = 0,
    fire_time: str | None = None,
) -> dict[str, Any]:
    """The event body: the webhook JSON, and the data behind the Slack and e-mail texts."""
    return {
        "event_id": event_id,
        "event": event,
        "at": datetime.now(UTC).isoformat(),
        "config": {"id": config.id, "name": config.name, "task_type": config.task_type},
        "run": run,
        "consecutive_failures": consecutive_failures,
        "fire_time": fire_time,
        "console_url": f"{settings.public_url.rstrip('/')}/console/#/configs/{config.id}",
    }


async def process_inbox(
    sessionmaker: async_sessionmaker[AsyncSession], redis: Redis, *, settings: Settings
) -> int:
    """Turn inbox rows into deliveries (and pauses); returns how many rows were handled."""
    async with sessionmaker() as session:
        locked = await session.scalar(text(f"SELECT pg_try_advisory_xact_lock({INBOX_LOCK})"))
        if not locked:
            return 0  # another notifier is at it
        rows = list(
            await session.scalars(select(AlertInbox).order_by(AlertInbox.id).limit(INBOX_BATCH))
        )
        for row in rows:
            config = await session.get(TaskConfig, row.config_id)
            if config is not None:
                await _handle(session, redis, row, config, settings=settings)
        if rows:
            await session.execute(delete(AlertInbox).where(AlertInbox.id.in_([r.id for r in rows])))
        await session.commit()
    return len(rows)


async def _state(session: AsyncSession, config_id: int) -> AlertState:
    state = await session.get(AlertState, config_id, with_for_update=True)
    if state is None:
        state = AlertState(config_id=config_id, consecutive_failures=0, scheduled_failures=0)
        session.add(state)
    return state


async def _handle(
    session: AsyncSession, redis: Redis, row: AlertInbox, config: TaskConfig, *, settings: Settings
) -> None:
    rules = config.alerts or {}
    wanted = set(rules.get("on", []))
    events: list[tuple[str, str, dict[str, Any]]] = []  # (event, event_id, payload extras)
    if row.kind == "run":
        events += await _run_ended(session, redis, row, config, wanted=wanted, settings=settings)
    elif row.kind == "missed" and "missed" in wanted:
        events.append(("missed", f"missed:{config.id}:{row.data['first']}",
                       {"fire_time": row.data["first"]}))  # fmt: skip
    elif row.kind == "late" and "late" in wanted:
        finished = await session.scalar(
            select(TaskExecution.id).where(TaskExecution.task_id == row.task_id)
        )
        if finished is None:  # recorded meanwhile: not late after all
            events.append(("late", f"late:{row.task_id}", {"fire_time": row.data["fire_time"]}))
    channel_ids = list(rules.get("channel_ids", []))
    for event, event_id, extras in events:
        if not channel_ids:
            continue
        body = payload(event, config, settings=settings, event_id=event_id, **extras)
        await session.execute(
            notifications.queue(
                session, event_id=event_id, event=event, config_id=config.id,
                channel_ids=channel_ids, payload=body,
            )
        )  # fmt: skip
        logger.info("config %s: %s queued for %d channels", config.id, event, len(channel_ids))


async def _run_ended(
    session: AsyncSession,
    redis: Redis,
    row: AlertInbox,
    config: TaskConfig,
    *,
    wanted: set[str],
    settings: Settings,
) -> list[tuple[str, str, dict[str, Any]]]:
    run = row.data
    state = await _state(session, config.id)
    events: list[tuple[str, str, dict[str, Any]]] = []
    if run["is_success"]:
        if state.notified_failure and "recovery" in wanted:
            events.append(("recovery", f"recovery:{row.task_id}", {"run": run}))
        state.consecutive_failures, state.scheduled_failures = 0, 0
        state.notified_failure, state.last_error = False, None
        return events
    state.consecutive_failures += 1
    state.last_error = run.get("error_message")
    if run.get("trigger") == "scheduled":
        state.scheduled_failures += 1
    streak = state.consecutive_failures
    threshold = (config.alerts or {}).get("after_consecutive_failures", 1)
    if "failure" in wanted and streak >= threshold:
        extras = {"run": run, "consecutive_failures": streak}
        events.append(("failure", f"failure:{row.task_id}", extras))
        state.notified_failure = True
    limit = config.pause_after_failures
    if (
        limit is not None
        and state.scheduled_failures >= limit
        and await _auto_pause(
            redis, config, failures=state.scheduled_failures, error=state.last_error
        )
    ):
        state.scheduled_failures = 0
        if "paused" in wanted:
            extras = {"run": run, "consecutive_failures": streak}
            events.append(("paused", f"paused:{row.task_id}", extras))
    return events


async def _auto_pause(
    redis: Redis, config: TaskConfig, *, failures: int, error: str | None
) -> bool:
    """Pause an active schedule after its failure streak; False if it is not active."""
    if (await schedule_state.read_state(redis, config.id)).status != "active":
        return False
    note = f"paused after {failures} consecutive failures: {error or 'no error message'}"[:500]
    await schedules.apply_action(
        redis, config, "pause", note=note, event="auto_paused", details={"failures": failures}
    )
    logger.warning("config %s %s", config.id, note)
    return True


async def clear_streak(session: AsyncSession, config_id: int) -> None:
    """A resume starts counting failures anew."""
    await session.execute(delete(AlertState).where(AlertState.config_id == config_id))
