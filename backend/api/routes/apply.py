"""`POST /tasks/configs/apply`: a whole document of configs, planned and applied at once
(the rules live in `backend.services.config_apply`)."""

from fastapi import APIRouter

from backend.api.access import CurrentPrincipal
from backend.api.deps import RedisDep, SessionDep
from backend.schemas.apply import ApplyPlan, ApplyRequest
from backend.services import config_apply

router = APIRouter(prefix="/tasks/configs", tags=["configs"])


@router.post(
    "/apply",
    responses={
        409: {"description": "A config of the document was created meanwhile"},
        422: {"description": "An invalid item, a duplicate name, or an unconfirmed empty prune"},
    },
)
async def apply_configs(
    body: ApplyRequest, session: SessionDep, redis: RedisDep, principal: CurrentPrincipal
) -> ApplyPlan:
    """Match the document's configs by name: create, update, (with `prune`) delete, and set
    each schedule's status. All config changes commit together or none does."""
    return await config_apply.apply(session, redis, request=body, actor=principal.actor)
