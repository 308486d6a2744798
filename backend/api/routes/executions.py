"""Runs and their records: run now, batch run, execution history, one run, system status."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status

from backend.api.deps import (
    SUPERUSER_ONLY,
    BrokerDep,
    RedisDep,
    SessionDep,
    SettingsDep,
    SuperUser,
    ValidConfig,
)
from backend.errors import NotFound
from backend.schemas.common import Offset, Text
from backend.schemas.executions import (
    BatchRunError,
    BatchRunRequest,
    BatchRunResponse,
    BatchRunResult,
    ExecutionPage,
    ExecutionRead,
    LiveRunRead,
    RunQueued,
    RunRequest,
    SystemStatus,
    Trigger,
)
from backend.services import executions, runs, schedules
from backend.services import status as system_status
from backend.services.redis import timeout as live_runs

router = APIRouter(prefix="/tasks", tags=["executions"], responses=SUPERUSER_ONLY)


@router.post(
    "/configs/{config_id}/run", status_code=status.HTTP_202_ACCEPTED, response_model=RunQueued
)
async def run_now(
    _: SuperUser,
    config: ValidConfig,
    broker: BrokerDep,
    redis: RedisDep,
    settings: SettingsDep,
    body: RunRequest | None = None,
) -> runs.QueuedRun:
    return await runs.kick(
        broker=broker,
        redis=redis,
        settings=settings,
        config=config,
        trigger="manual",
        parameters=body.parameters if body else None,
    )


@router.post("/run", response_model=BatchRunResponse, response_model_exclude_none=True)
async def run_batch(
    _: SuperUser,
    body: BatchRunRequest,
    session: SessionDep,
    broker: BrokerDep,
    redis: RedisDep,
    settings: SettingsDep,
) -> BatchRunResponse:
    items = await runs.kick_many(
        session,
        broker=broker,
        redis=redis,
        settings=settings,
        config_ids=body.config_ids,
        trigger="manual",
    )
    return BatchRunResponse(
        results=[
            BatchRunResult(
                config_id=item.config_id,
                task_id=item.run.task_id if item.run else None,
                error=BatchRunError(
                    status=item.error.status, code=item.error.code, message=item.error.message
                )
                if item.error
                else None,
            )
            for item in items
        ]
    )


def _utc(moment: datetime | None) -> datetime | None:
    """A naive time in a query is taken as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


@router.get("/configs/{config_id}/executions", response_model=ExecutionPage)
async def list_executions(
    _: SuperUser,
    config: ValidConfig,
    session: SessionDep,
    is_success: bool | None = None,
    since: Annotated[datetime | None, Query(description="runs started at or after")] = None,
    until: Annotated[datetime | None, Query(description="runs started before")] = None,
    trigger: Trigger | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Offset = 0,
) -> ExecutionPage:
    filters = executions.ExecutionFilter(
        is_success=is_success, since=_utc(since), until=_utc(until), trigger=trigger
    )
    items, total = await executions.list_for_config(
        session, config_id=config.id, filters=filters, limit=limit, offset=offset
    )
    return ExecutionPage(
        items=[ExecutionRead.model_validate(item) for item in items],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/executions/{task_id}", response_model=ExecutionRead | LiveRunRead)
async def get_execution(
    _: SuperUser,
    task_id: Annotated[Text, Path(min_length=1, max_length=128)],
    session: SessionDep,
    redis: RedisDep,
) -> ExecutionRead | LiveRunRead:
    # Live state first: a run's record is written before its live entry is removed, so a run
    # absent from Redis here is either recorded by the time we read the database, or unknown.
    live = await live_runs.get(redis, task_id) or await schedules.sent_fire(redis, task_id)
    record = await executions.get_by_task_id(session, task_id=task_id)
    if record is not None:
        return ExecutionRead.model_validate(record)
    if live is not None:
        return LiveRunRead.model_validate(live)
    raise NotFound(f"Run {task_id} not found")


@router.get("/status", response_model=SystemStatus)
async def get_status(_: SuperUser, request: Request) -> system_status.SystemStatus:
    state = request.app.state
    return await system_status.read(
        sessionmaker=state.sessionmaker, redis=state.redis, broker=state.broker
    )
