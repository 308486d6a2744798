"""Runs of a task type this worker lacks: each ends in one failed record that says so.

The API validates a config's type against its own registry; a worker started without the
same task modules (TASK_MODULES, entry points) would otherwise drop such a run unrecorded:
taskiq's receiver acks a message whose task name it cannot find and logs a warning. The
worker sets `fallback_task` on the broker to this, so the run passes through the recording
middleware like any other, and fails.
"""

from typing import Any, NoReturn

from taskiq import AsyncTaskiqDecoratedTask, Context, TaskiqDepends
from taskiq.exceptions import NoResultError

from backend.broker import TaskhubBroker
from backend.tasks.registry import is_skipped


class UnknownTaskType(Exception):
    pass


async def _unknown(context: Context = TaskiqDepends(), **kwargs: Any) -> NoReturn:
    if is_skipped(context.message):
        raise NoResultError  # a duplicate delivery: refused like any other run's
    raise UnknownTaskType(
        f"task type {context.message.task_name!r} is not registered in this worker "
        "(is its module in TASK_MODULES, or installed with a taskhub.tasks entry point?)"
    )


def install(broker: TaskhubBroker) -> None:
    broker.fallback_task = AsyncTaskiqDecoratedTask(
        broker=broker,
        task_name="taskhub.unknown_task_type",
        original_func=_unknown,
        # No retry: SmartRetryMiddleware retries only the listed exception types, none here;
        # another attempt on the same worker could not find the type either.
        labels={"types_of_exceptions": ()},
    )
