"""The one way to define a task type: `@task_type(name, description=..., parameters=Model)`.

The decorator records the type for the API (name, description, parameter schema) and
registers it with the taskiq broker under the same name, so the worker runs it by name.
A task function takes its validated parameters model, and optionally `resources` (the
worker's database and Redis handles) as a keyword argument. It knows nothing about recording:
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

TaskFunction = Callable[..., Awaitable[Any]]


def task_type(
    name: str, *, description: str, parameters: type[BaseModel]
) -> Callable[[TaskFunction], TaskFunction]:
    def register(function: TaskFunction) -> TaskFunction:
        if name in _types:
            raise ValueError(f"task type {name!r} is already registered")
        wants_resources = "resources" in inspect.signature(function).parameters

        async def run(context: Context = TaskiqDepends(), **kwargs: Any) -> Any:
            if is_skipped(context.message):
                # Refused by the recording middleware (overlap, duplicate): taskiq's way to
                # end a run with no result; nothing is recorded or retried for it.
                raise NoResultError
            params = parameters.model_validate(kwargs)
            extra = {"resources": context.state.resources} if wants_resources else {}
            guard = context.state.get(GUARD)
            call = function(params, **extra)
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
