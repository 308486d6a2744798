"""Runs and their records: run now, batch run, a config's execution history, one run, cancel."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from backend.api.access import CurrentPrincipal
from backend.api.deps import BrokerDep, RedisDep, SessionDep, SettingsDep, ValidConfig
from backend.models import Trigger
from backend.schemas.common import Offset, Page, Text, UtcDatetime
from backend.schemas.executions import (
    BatchRunError,
    BatchRunRequest,
    BatchRunResponse,
    BatchRunResult,
    ExecutionRead,
    LiveRunRead,
    RunQueued,
    RunRequest,
)
from backend.services import cancels, executions, runs

router = APIRouter(prefix="/tasks", tags=["executions"])


@router.post("/configs/{config_id}/run", status_code=status.HTTP_202_ACCEPTED)
async def run_now(
    config: ValidConfig,
    session: SessionDep,
    broker: BrokerDep,
    redis: RedisDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    body: RunRequest | None = None,
) -> RunQueued:
    return await runs.run_now(
        session,
        broker=broker,
        redis=redis,
        settings=settings,
        config=config,
        actor=principal.actor,
        parameters=body.parameters if body else None,
    )


@router.post("/run", response_model=BatchRunResponse, response_model_exclude_none=True)
async def run_batch(
    body: BatchRunRequest,
    session: SessionDep,
    broker: BrokerDep,
    redis: RedisDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
) -> BatchRunResponse:
    items = await runs.kick_many(
        session,
        broker=broker,
        redis=redis,
        settings=settings,
        config_ids=body.config_ids,
        actor=principal.actor,
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


@router.get("/configs/{config_id}/executions")
async def list_executions(
    config: ValidConfig,
    session: SessionDep,
    is_success: bool | None = None,
    since: Annotated[UtcDatetime | None, Query(description="runs started at or after")] = None,
    until: Annotated[UtcDatetime | None, Query(description="runs started before")] = None,
    trigger: Trigger | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Offset = 0,
) -> Page[ExecutionRead]:
    filters = executions.ExecutionFilter(
        is_success=is_success, since=since, until=until, trigger=trigger
    )
    items, total = await executions.list_for_config(
        session, config_id=config.id, filters=filters, limit=limit, offset=offset
    )
    return Page(
        items=[ExecutionRead.model_validate(item) for item in items],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/executions/{task_id}")
async def get_execution(
    task_id: Annotated[Text, Path(min_length=1, max_length=128)],
    session: SessionDep,
    redis: RedisDep,
) -> ExecutionRead | LiveRunRead:
    return await executions.get_run(session, redis, task_id=task_id)


@router.post(
    "/executions/{task_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    responses={409: {"description": "The run has already finished (it has its record)"}},
)
async def cancel_execution(
    task_id: Annotated[Text, Path(min_length=1, max_length=128)],
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
) -> ExecutionRead | LiveRunRead:
    """Cancel a run: a queued one never starts, a running one stops within 2 seconds; either
    way one record, `Cancelled by <username>`. 409 once it has finished."""
    return await cancels.cancel(
        session, redis, settings=settings, task_id=task_id, actor=principal.actor
    )
