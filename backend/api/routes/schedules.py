"""Schedule actions and schedule history of one config."""

from typing import Any

from fastapi import APIRouter, Query

from backend.api.access import CurrentPrincipal
from backend.api.deps import RedisDep, SessionDep, ValidConfig
from backend.schemas.common import Offset, Page
from backend.schemas.configs import TaskConfigRead
from backend.services import configs, schedules
from backend.services.redis import history

router = APIRouter(prefix="/tasks/configs", tags=["schedules"])


@router.post(
    "/{config_id}/actions/{action}",
    response_model=TaskConfigRead,
    responses={409: {"description": "The action does not fit the schedule's status"}},
)
async def apply_action(
    config: ValidConfig,
    action: schedules.Action,
    session: SessionDep,
    redis: RedisDep,
    principal: CurrentPrincipal,
) -> TaskConfigRead:
    return await configs.apply_action(
        session, redis, config=config, action=action, actor=principal.actor
    )


@router.get("/{config_id}/history", response_model=Page[dict[str, Any]])
async def read_history(
    config: ValidConfig,
    redis: RedisDep,
    limit: int = Query(default=100, ge=1, le=100),
    offset: Offset = 0,
) -> Page[dict[str, Any]]:
    events, total = await history.read(redis, config.id, limit=limit, offset=offset)
    return Page(items=events, total=total, limit=limit, offset=offset)
