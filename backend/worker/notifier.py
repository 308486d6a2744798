"""The notifier: in every worker process, turns the alert inbox into deliveries (one process
at a time) and sends the deliveries that are due (any number at once, each row once)."""

import asyncio
import logging

from backend.config import Settings
from backend.resources import Resources
from backend.services import alerts, notifications

logger = logging.getLogger(__name__)


async def run_once(resources: Resources, settings: Settings) -> int:
    handled = await alerts.process_inbox(resources.sessionmaker, resources.redis, settings=settings)
    sent = await notifications.send_due(resources.sessionmaker, settings=settings)
    return handled + sent


async def run_forever(resources: Resources, settings: Settings) -> None:
    while True:
        try:
            busy = await run_once(resources, settings)
        except Exception:
            # The runner boundary: an outage must not end the notifier; the inbox and the
            # pending deliveries are in PostgreSQL and are picked up on a later tick.
            logger.exception("notifier pass failed; retrying in the next tick")
            busy = 0
        if not busy:
            await asyncio.sleep(settings.notifier_interval_seconds)
