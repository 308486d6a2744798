"""Schedule actions, schedule history and previews of the next runs."""

from typing import Annotated, Any

from fastapi import APIRouter, Query

from backend.api.access import CurrentPrincipal
from backend.api.deps import RedisDep, SessionDep, ValidConfig
from backend.schemas.common import Offset, Page
from backend.schemas.configs import TaskConfigRead
from backend.schemas.notifications import Note
from backend.schemas.previews import Preview, PreviewRequest
from backend.services import configs, previews, schedules
from backend.services.redis import history

router = APIRouter(prefix="/tasks/configs", tags=["schedules"])
preview_router = APIRouter(prefix="/tasks/schedules", tags=["schedules"])


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


@router.get("/{config_id}/next-runs")
async def next_runs(
    config: ValidConfig,
    redis: RedisDep,
    count: Annotated[int, Query(ge=1, le=100)] = 10,
) -> Preview:
    """The next runs exactly as the scheduler will send them; for a schedule not active,
    what a start (or a paused one's resume) now would give, with `"active": false`."""
    return await previews.next_runs(redis, config, count=count)


@preview_router.post("/preview")
async def preview_schedule(body: PreviewRequest) -> Preview:
    """The next runs of a schedule not saved yet (422 with field errors if it is invalid)."""
    return previews.preview(body.scheduler_type, body.schedule_config, count=body.count)
