"""The audit trail: every change, newest first; and one config's changes (also once deleted)."""

from typing import Annotated

from fastapi import APIRouter, Query

from backend.api.deps import SessionDep
from backend.schemas.audit import AuditEventRead
from backend.schemas.common import Id, Offset, Page, Text, UtcDatetime
from backend.services import audit

router = APIRouter(tags=["audit"])

Limit = Annotated[int, Query(ge=1, le=100)]
Since = Annotated[UtcDatetime | None, Query(description="events at or after")]
Until = Annotated[UtcDatetime | None, Query(description="events before")]


async def _page(
    session: SessionDep, filters: audit.AuditFilter, limit: int, offset: int
) -> Page[AuditEventRead]:
    items, total = await audit.page(session, filters=filters, limit=limit, offset=offset)
    return Page(
        items=[AuditEventRead.model_validate(e) for e in items],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/audit")
async def list_audit(
    session: SessionDep,
    actor: Annotated[Text | None, Query(max_length=320, description="username")] = None,
    action: Annotated[Text | None, Query(max_length=64, examples=["config.update"])] = None,
    target_type: Annotated[Text | None, Query(max_length=32, examples=["config"])] = None,
    target_id: Id | None = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> Page[AuditEventRead]:
    filters = audit.AuditFilter(
        actor=actor, action=action, target_type=target_type, target_id=target_id,
        since=since, until=until,
    )  # fmt: skip
    return await _page(session, filters, limit, offset)


@router.get("/tasks/configs/{config_id}/audit")
async def list_config_audit(
    config_id: Id,
    session: SessionDep,
    since: Since = None,
    until: Until = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> Page[AuditEventRead]:
    """A config's changes; found by id, so a deleted config's trail stays readable."""
    filters = audit.AuditFilter(target_type="config", target_id=config_id, since=since, until=until)
    return await _page(session, filters, limit, offset)
