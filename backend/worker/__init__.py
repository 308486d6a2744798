"""The worker process: `taskiq worker backend.worker:broker --ack-type when_received`.

Adds the worker-side middlewares (recording, then retries: the order matters, see
backend/worker/recording.py), opens the resources and starts the record buffer, the reaper,
the notifier and the cancel poll (backend/worker/cancels.py) in the worker startup event,
flushes and stops them on shutdown, and imports every task module (built-in, entry points,
TASK_MODULES) so the worker runs each type by name; a module that fails to import stops the
worker here, before it takes any run. A run of a type this worker lacks ends in a failed
record (backend/worker/unknown.py).
"""

import asyncio
import contextlib
import logging

from taskiq import TaskiqEvents, TaskiqState

from backend import metrics
from backend.broker import broker
from backend.config import get_settings
from backend.log import configure_logging
from backend.resources import Resources
from backend.tasks import TaskModuleError, load_all, registry
from backend.tasks.registry import GUARD
from backend.worker import notifier, reaper, unknown
from backend.worker.buffer import RecordBuffer
from backend.worker.cancels import RunningRuns
from backend.worker.recording import RecordingMiddleware
from backend.worker.retries import retry_middleware
from backend.worker.startup import stop_the_process_manager

__all__ = ["broker"]

RUN_LOGGER = "taskiq.receiver.receiver"  # its INFO line per run: WORKER_LOG_RUNS

try:
    load_all(get_settings().task_module_names)
except TaskModuleError:
    stop_the_process_manager()
    raise
unknown.install(broker)
metrics.initialise([task_type.name for task_type in registry.all_types()])
broker.add_middlewares(RecordingMiddleware(), retry_middleware(get_settings()))


@broker.on_event(TaskiqEvents.WORKER_STARTUP)
async def open_resources(state: TaskiqState) -> None:
    configure_logging()
    settings = get_settings()
    if not settings.worker_log_runs:
        logging.getLogger(RUN_LOGGER).setLevel(logging.WARNING)
    state.resources = Resources.open(settings)
    state.records = RecordBuffer(
        state.resources,
        flush_seconds=settings.record_flush_seconds,
        max_batch=settings.record_max_batch,
        max_pending=settings.record_max_pending,
        retry_max_seconds=settings.record_retry_max_seconds,
    )
    state.records.start()
    state.reaper = asyncio.create_task(reaper.run_forever(state.resources, settings))
    state.notifier = asyncio.create_task(notifier.run_forever(state.resources, settings))
    running = RunningRuns(state.resources, poll_seconds=settings.cancel_poll_seconds)
    state[GUARD] = running.run  # the task wrapper runs each call under it: cancellable
    state.cancels = asyncio.create_task(running.poll_forever())


@broker.on_event(TaskiqEvents.WORKER_SHUTDOWN)
async def close_resources(state: TaskiqState) -> None:
    for loop in (state.reaper, state.notifier, state.cancels):
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
    # Within taskiq's --shutdown-timeout (5 s by default), which cancels this handler.
    await state.records.close(timeout=get_settings().record_shutdown_seconds)
    await state.resources.close()
