"""The worker process: `taskiq worker backend.worker:broker --ack-type when_received`.

Adds the worker-side middlewares (recording, then retries: the order matters, see
backend/recording.py), opens the stores and starts the record buffer and the reaper in the
worker startup event, flushes and stops them on shutdown, and imports every task module so
the worker runs each type by name.
"""

import asyncio
import contextlib

from taskiq import SmartRetryMiddleware, TaskiqEvents, TaskiqState

from backend import reaper
from backend.broker import broker
from backend.config import get_settings
from backend.log import configure_logging
from backend.recording import RecordingMiddleware
from backend.records import RecordBuffer
from backend.stores import Stores
from backend.tasks import load_all

__all__ = ["broker"]

load_all()

_settings = get_settings()
broker.add_middlewares(
    RecordingMiddleware(),
    SmartRetryMiddleware(
        default_retry_count=1,  # runs always carry `max_retries`; without it, no retry
        default_delay=_settings.retry_delay_seconds,
        use_delay_exponent=True,
        max_delay_exponent=_settings.retry_max_delay_seconds,
    ),
)


@broker.on_event(TaskiqEvents.WORKER_STARTUP)
async def open_stores(state: TaskiqState) -> None:
    configure_logging()
    settings = get_settings()
    state.stores = Stores.open(settings)
    state.records = RecordBuffer(
        state.stores,
        flush_seconds=settings.record_flush_seconds,
        max_batch=settings.record_max_batch,
        max_pending=settings.record_max_pending,
        retry_max_seconds=settings.record_retry_max_seconds,
    )
    state.records.start()
    state.reaper = asyncio.create_task(reaper.run_forever(state.stores, settings))


@broker.on_event(TaskiqEvents.WORKER_SHUTDOWN)
async def close_stores(state: TaskiqState) -> None:
    state.reaper.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await state.reaper
    # Within taskiq's --shutdown-timeout (5 s by default), which cancels this handler.
    await state.records.close(timeout=get_settings().record_shutdown_seconds)
    await state.stores.close()
