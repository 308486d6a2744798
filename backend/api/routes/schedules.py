"""Schedule actions and schedule history of one config."""

from typing import Any

from fastapi import APIRouter, Query

from backend.api.access import CurrentPrincipal
from backend.api.deps import RedisDep, SessionDep, ValidConfig
from backend.schemas.common import Offset, Page
from backend.schemas.configs import TaskConfigRead
from backend.schemas.notifications import Note
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
    body: Note | None = None,
) -> TaskConfigRead:
    """`pause`, `resume` and `stop` take an optional `{"note": "..."}`, kept as the schedule's
    note until the next action."""
    return await configs.apply_action(
        session, redis, config=config, action=action, actor=principal.actor,
        note=body.note if body else None,
    )  # fmt: skip


@router.get("/{config_id}/history", response_model=Page[dict[str, Any]])
async def read_history(
    config: ValidConfig,
    redis: RedisDep,
    limit: int = Query(default=100, ge=1, le=100),
    offset: Offset = 0,
) -> Page[dict[str, Any]]:
    events, total = await history.read(redis, config.id, limit=limit, offset=offset)
    return Page(items=events, total=total, limit=limit, offset=offset)
