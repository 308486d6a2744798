"""Backfill: one run per past occurrence of a config's schedule (backend/services/backfill.py)."""

from fastapi import APIRouter, Response, status

from backend.api.access import CurrentPrincipal
from backend.api.deps import BrokerDep, RedisDep, SessionDep, SettingsDep, ValidConfig
from backend.schemas.backfill import BackfillRequest, BackfillResponse
from backend.services import backfill

router = APIRouter(prefix="/tasks/configs", tags=["executions"])


@router.post(
    "/{config_id}/backfill",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        200: {"description": "A dry run: the runs that would be sent", "model": BackfillResponse},
        409: {"description": "The config is manual or a one-off date: nothing to backfill"},
    },
)
async def backfill_config(
    body: BackfillRequest,
    config: ValidConfig,
    session: SessionDep,
    broker: BrokerDep,
    redis: RedisDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    response: Response,
) -> BackfillResponse:
    result = await backfill.backfill(
        session,
        broker=broker,
        redis=redis,
        settings=settings,
        config=config,
        request=body,
        actor=principal.actor,
    )
    if result.dry_run:
        response.status_code = status.HTTP_200_OK  # nothing was accepted for running
    return result
