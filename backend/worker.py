"""The worker process: `taskiq worker backend.worker:broker`.

Opens the stores in the worker startup event, closes them on shutdown, and imports every
task module so the worker can run each registered type by name.
"""

from taskiq import TaskiqEvents, TaskiqState

from backend.broker import broker
from backend.config import get_settings
from backend.log import configure_logging
from backend.stores import Stores
from backend.tasks import load_all

__all__ = ["broker"]

load_all()


@broker.on_event(TaskiqEvents.WORKER_STARTUP)
async def open_stores(state: TaskiqState) -> None:
    configure_logging()
    state.stores = Stores.open(get_settings())


@broker.on_event(TaskiqEvents.WORKER_SHUTDOWN)
async def close_stores(state: TaskiqState) -> None:
    await state.stores.close()
