"""The one way to define a task type: `@task_type(name, description=..., parameters=Model)`.

The decorator records the type for the API (name, description, parameter schema) and
registers it with the taskiq broker under the same name, so the worker runs it by name.
A task function takes its validated parameters model, and optionally as keyword arguments
`resources` (the worker's database and Redis handles) and `context` (a RunContext: task id,
trigger, nominal fire time, attempt; backend/tasks/context.py). Only the parameters model
makes the type's schema: taskiq sees this module's wrapper, never the function's signature,
so neither keyword can leak into it. The function knows nothing about recording:
the recording middleware (backend/worker/recording.py) does that around it, and may refuse a
run before it starts by setting the SKIPPED label (to why), which the task wrapper here
honours; in a worker, the call runs under the worker's GUARD, which can cancel it.
"""

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from taskiq import Context, TaskiqDepends, TaskiqMessage
from taskiq.exceptions import NoResultError

from backend.broker import broker
from backend.tasks import context as run_context

# The label of a delivery refused before it started; its value says why: `overlap` (another
# run of the config is in flight), `buffered` (it waits for them), `duplicate` (this attempt
# was delivered before) or `cancelled` (cancelled before it started).
SKIPPED = "taskhub_skipped"
# The worker state's guard around each task call (backend/worker/cancels.py, which may cancel
# it); without one (a broker that set none), the call just runs.
GUARD = "run_guard"


def is_skipped(message: TaskiqMessage) -> bool:
    return bool(message.labels.get(SKIPPED))


@dataclass(frozen=True)
class TaskType:
    name: str
    description: str
    parameters: type[BaseModel]

    def parameters_schema(self) -> dict[str, Any]:
        return self.parameters.model_json_schema()


_types: dict[str, TaskType] = {}

# What a task function may take besides its parameters model, by keyword.
PASSED = ("resources", "context")

TaskFunction = Callable[..., Awaitable[Any]]


def task_type(
    name: str, *, description: str, parameters: type[BaseModel]
) -> Callable[[TaskFunction], TaskFunction]:
    def register(function: TaskFunction) -> TaskFunction:
        if name in _types:
            raise ValueError(f"task type {name!r} is already registered")
        wanted = inspect.signature(function).parameters
        unknown = [
            arg
            for arg, parameter in list(wanted.items())[1:]
            if arg not in PASSED and parameter.default is parameter.empty
        ]
        if unknown:  # caught at import (the process does not start), not at the first run
            raise TypeError(
                f"task type {name!r}: {function.__name__}() takes {', '.join(unknown)}, but "
                f"only the parameters model and {' and '.join(PASSED)} are passed"
            )

        async def run(context: Context = TaskiqDepends(), **kwargs: Any) -> Any:
            if is_skipped(context.message):
                # Refused by the recording middleware (overlap, duplicate): taskiq's way to
                # end a run with no result; nothing is recorded or retried for it.
                raise NoResultError
            params = parameters.model_validate(kwargs)
            extras: dict[str, Any] = {}
            if "resources" in wanted:
                extras["resources"] = context.state.resources
            if "context" in wanted:
                extras["context"] = run_context.of_message(context.message)
            guard = context.state.get(GUARD)
            call = function(params, **extras)
            return await (guard(context.message.task_id, call) if guard else call)

        run.__name__ = function.__name__
        broker.register_task(run, task_name=name)
        _types[name] = TaskType(name=name, description=description, parameters=parameters)
        return function

    return register


def get(name: str) -> TaskType | None:
    return _types.get(name)


def all_types() -> list[TaskType]:
    return sorted(_types.values(), key=lambda t: t.name)
