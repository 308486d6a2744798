"""`demo.sleep`: sleeps, then fails on request. For trying the system and for tests."""

import asyncio

from pydantic import BaseModel, ConfigDict, Field

from backend.tasks.registry import task_type


class SleepParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(default=0, ge=0, le=86400)
    fail: bool = False
    message: str | None = Field(default=None, max_length=1000)


class DemoTaskError(Exception):
    pass


@task_type(
    "demo.sleep",
    description="Sleep for `seconds`, then raise an error carrying `message` if `fail` is set.",
    parameters=SleepParameters,
)
async def sleep(params: SleepParameters) -> dict[str, float | str | None]:
    await asyncio.sleep(params.seconds)
    if params.fail:
        raise DemoTaskError(params.message or "demo task failed as asked")
    return {"slept_seconds": params.seconds, "message": params.message}
