"""`test.call_sink`: a task type of the tests, loaded by their workers as an extra module
(`taskiq worker backend.worker:broker tests.support.sink_task`), which POSTs to
`<url>/<the run's task id>`: the HTTP sink then counts executions per task id, so a test
tells a fire executed twice from two fires executed once.

The registry's decorator gives the API its name and parameters; the worker's function is
registered under the same name after it, taking taskiq's Context for the task id (a task
function of the registry sees only its parameters)."""

from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict
from taskiq import Context, TaskiqDepends
from taskiq.exceptions import NoResultError

from backend.broker import broker
from backend.tasks import registry

NAME = "test.call_sink"


class SinkCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str


@registry.task_type(NAME, description="POST to url/<task id> (tests).", parameters=SinkCall)
async def _declared(params: SinkCall) -> None:
    raise NotImplementedError  # replaced below: the worker runs call_sink


async def call_sink(context: Context = TaskiqDepends(), **kwargs: Any) -> dict[str, Any]:
    if registry.is_skipped(context.message):
        raise NoResultError  # refused by the recording middleware (overlap, duplicate)
    params = SinkCall.model_validate(kwargs)
    response = await _client().post(f"{params.url}/{context.message.task_id}")
    response.raise_for_status()
    return {"status_code": response.status_code}


_clients: list[httpx.AsyncClient] = []


def _client() -> httpx.AsyncClient:
    """One client per worker process: building one per call costs a loaded machine more CPU
    than the call (the soak makes a dozen calls a second)."""
    if not _clients:
        _clients.append(httpx.AsyncClient(timeout=10))
    return _clients[0]


broker.register_task(call_sink, task_name=NAME)
