"""The audit trail: every change, by whom, what changed, when (PostgreSQL `audit_events`).

A change to PostgreSQL adds its row to the same session, so both commit together or neither
does; a Redis-only change (a schedule action, a run sent) commits its row right after the
change succeeded. `changes` holds `{field: [old, new]}` for updates, the created object for
creates and the last state for deletes; never a secret.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.log import request_id_var
from backend.models import AuditEvent

SECRET_FIELDS = frozenset({"password"})
CHANGED = "changed"  # what an audit row says of a secret that changed


@dataclass(frozen=True)
class Actor:
    """Who makes a change: a signed-in user, through an API token or not; None for the system."""

    user_id: int
    username: str
    token_id: int | None = None


def record(
    session: AsyncSession,
    *,
    actor: Actor | None,
    action: str,
    target_type: str,
    target_id: int | None,
    target_name: str | None,
    changes: dict[str, Any],
) -> None:
    """Add the audit row to the session: it commits with the change it describes."""
    session.add(
        AuditEvent(
            actor_user_id=actor.user_id if actor else None,
            actor_token_id=actor.token_id if actor else None,
            actor=actor.username if actor else None,
            action=action,
            target_type=target_type,
            target_id=target_id,
            target_name=target_name,
            changes=changes,
            request_id=request_id_var.get(),
        )
    )


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """`{field: [old, new]}` for the fields that changed; a secret reads `"changed"`."""
    return {
        field: CHANGED if field in SECRET_FIELDS else [before.get(field), value]
        for field, value in after.items()
        if field in SECRET_FIELDS or before.get(field) != value
    }


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None


def _conditions(filters: AuditFilter) -> list[ColumnElement[bool]]:
    event = AuditEvent
    conditions: list[ColumnElement[bool]] = []
    if filters.actor is not None:
        conditions.append(event.actor == filters.actor)
    if filters.action is not None:
        conditions.append(event.action == filters.action)
    if filters.target_type is not None:
        conditions.append(event.target_type == filters.target_type)
    if filters.target_id is not None:
        conditions.append(event.target_id == filters.target_id)
    if filters.since is not None:
        conditions.append(event.at >= filters.since)
    if filters.until is not None:
        conditions.append(event.at < filters.until)
    return conditions


async def page(
    session: AsyncSession, *, filters: AuditFilter, limit: int, offset: int
) -> tuple[list[AuditEvent], int]:
    """One page, newest first, and the total matching the filters."""
    conditions = _conditions(filters)
    total = await session.scalar(select(func.count(AuditEvent.id)).where(*conditions))
    query = select(AuditEvent).where(*conditions).order_by(AuditEvent.id.desc())
    rows = await session.scalars(query.limit(limit).offset(offset))
    return list(rows), total or 0
