"""The notifier: in every worker process, turns the alert inbox into deliveries (one process
at a time) and sends the deliveries that are due (any number at once, each row once)."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from backend.config import Settings
from backend.resources import Resources
from backend.services import alerts, notifications

logger = logging.getLogger(__name__)


async def run_forever(resources: Resources, settings: Settings) -> None:
    """Two loops: turning the inbox into deliveries never waits for a slow receiver."""
    await asyncio.gather(
        _loop(
            "alert inbox",
            lambda: alerts.process_inbox(
                resources.sessionmaker, resources.redis, settings=settings
            ),
            settings,
        ),
        _loop(
            "deliveries",
            lambda: notifications.send_due(resources.sessionmaker, settings=settings),
            settings,
        ),
    )


async def _loop(name: str, step: Callable[[], Awaitable[int]], settings: Settings) -> None:
    while True:
        try:
            busy = await step()
        except Exception:
            # The runner boundary: an outage must not end the notifier; the inbox and the
            # pending deliveries are in PostgreSQL and are picked up on a later tick.
            logger.exception("notifier pass over the %s failed; retrying in the next tick", name)
            busy = 0
        if not busy:
            await asyncio.sleep(settings.notifier_interval_seconds)
