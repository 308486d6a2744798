"""Task config routes (superuser only): parse and authorize here, the rules live in
`backend.services.configs`."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from backend.api.access import CurrentPrincipal
from backend.api.deps import ReaderDep, RedisDep, SessionDep, ValidConfig
from backend.models import ScheduleStatus
from backend.schemas.common import Offset, Page, Text
from backend.schemas.configs import TaskConfigCreate, TaskConfigRead, TaskConfigUpdate
from backend.services import configs
from backend.triggers.specs import SchedulerType

router = APIRouter(prefix="/tasks/configs", tags=["configs"])


NAME_TAKEN: dict[int | str, dict[str, Any]] = {
    409: {"description": "The name is taken, or the schedule is busy or manual"}
}


@router.post("", status_code=status.HTTP_201_CREATED, responses=NAME_TAKEN)
async def create_config(
    data: TaskConfigCreate,
    session: SessionDep,
    redis: RedisDep,
    principal: CurrentPrincipal,
    auto_start: bool = False,
) -> TaskConfigRead:
    config = await configs.create(
        session, redis, data=data, actor=principal.actor, auto_start=auto_start
    )
    return await configs.present(session, redis, config=config)


@router.get("", response_model=Page[TaskConfigRead])
async def list_configs(
    reader: ReaderDep,
    redis: RedisDep,
    task_type: Annotated[Text | None, Query(max_length=200)] = None,
    scheduler_type: SchedulerType | None = None,
    schedule_status: ScheduleStatus | None = None,
    search: Annotated[Text | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Offset = 0,
    include_stats: Annotated[
        bool, Query(description="add each config's execution stats (one more SQL statement)")
    ] = False,
) -> Response:
    # Rendered by the service as the JSON of Page[TaskConfigRead] (the documented model).
    page = await configs.list_page(
        reader,
        redis,
        limit=limit,
        offset=offset,
        task_type=task_type,
        scheduler_type=scheduler_type,
        schedule_status=schedule_status,
        search=search,
        include_stats=include_stats,
    )
    return Response(page, media_type="application/json")


@router.get("/{config_id}")
async def get_config(
    config: ValidConfig,
    session: SessionDep,
    redis: RedisDep,
    include_stats: bool = False,
    include_history: bool = False,
) -> TaskConfigRead:
    return await configs.present(
        session,
        redis,
        config=config,
        include_stats=include_stats,
        include_history=include_history,
    )


@router.patch("/{config_id}", responses=NAME_TAKEN)
async def update_config(
    changes: TaskConfigUpdate,
    config: ValidConfig,
    session: SessionDep,
    redis: RedisDep,
    principal: CurrentPrincipal,
) -> TaskConfigRead:
    config = await configs.update(
        session, redis, config=config, changes=changes, actor=principal.actor
    )
    return await configs.present(session, redis, config=config)


@router.delete("/{config_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_config(
    config: ValidConfig, session: SessionDep, redis: RedisDep, principal: CurrentPrincipal
) -> Response:
    await configs.delete(session, redis, config=config, actor=principal.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
