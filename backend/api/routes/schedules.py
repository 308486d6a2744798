"""Schedule actions and schedule history of one config."""

from typing import Any

from fastapi import APIRouter, Query

from backend.api.deps import RedisDep, SuperUser, ValidConfig
from backend.schemas.common import Page
from backend.schemas.schedules import ScheduleStateRead
from backend.services import schedules
from backend.services.redis import history

router = APIRouter(prefix="/tasks/configs", tags=["schedules"])


@router.post("/{config_id}/actions/{action}", response_model=ScheduleStateRead)
async def apply_action(
    config: ValidConfig, action: schedules.Action, redis: RedisDep, _: SuperUser
) -> ScheduleStateRead:
    state = await schedules.apply_action(redis, config, action)
    return ScheduleStateRead(
        config_id=config.id, schedule_status=state.status, next_run_at=state.next_run_at
    )


@router.get("/{config_id}/history", response_model=Page[dict[str, Any]])
async def read_history(
    config: ValidConfig,
    redis: RedisDep,
    _: SuperUser,
    limit: int = Query(default=100, ge=1, le=100),
    offset: int = Query(default=0, ge=0),
) -> Page[dict[str, Any]]:
    events, total = await history.read(redis, config.id, limit=limit, offset=offset)
    return Page(items=events, total=total, limit=limit, offset=offset)
