"""The config list page, rendered to JSON: `GET /tasks/configs`, the API's busiest read.

Same statements and round trips as any page (the total, the page, on request the stats; one
Redis call for the live states), but without an ORM object, a validation and a
serialization per config per request: a config's stored part only changes when its row
does, so its JSON (with the schedule in words) is rendered once per row version and kept,
and each request adds only the live part. A row version is its id and PostgreSQL's `xmin`
(the transaction that wrote it: any UPDATE changes it), read by the page statement itself;
JSONB columns come as text and are parsed only to render a version not seen before.

The JSON is that of `Page[TaskConfigRead]`, keys in another order (the live fields last).
"""

import json
from collections import OrderedDict
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from redis.asyncio import Redis
from sqlalchemy import ColumnElement, Text, cast, func, literal_column, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from backend.models import ScheduleStatus, TaskConfig
from backend.schemas.configs import TaskConfigRead
from backend.schemas.executions import ExecutionStats
from backend.services import executions
from backend.services.redis import scheduler as schedule_state

CACHED_VERSIONS = 20_000  # rendered rows kept (about 600 bytes each)
LIVE_FIELDS = {
    "schedule_status", "next_run_at", "schedule_note", "remaining_runs", "stats", "recent_history",
}  # fmt: skip
_COLUMNS = list(TaskConfig.__table__.columns)
_JSON_COLUMNS = {c.name for c in _COLUMNS if isinstance(c.type, JSONB)}
_SELECTED = [cast(c, Text).label(c.name) if c.name in _JSON_COLUMNS else c for c in _COLUMNS]


class _Live(BaseModel):
    """What a request adds to a config's stored part (serialized as TaskConfigRead does)."""

    schedule_status: ScheduleStatus
    next_run_at: datetime | None
    schedule_note: str | None
    remaining_runs: int | None
    stats: ExecutionStats | None = None
    recent_history: None = None


_rendered: OrderedDict[tuple[int, int], tuple[bytes, int | None]] = OrderedDict()


def remaining_runs(max_runs: int | None, *, status: str, fired: int) -> int | None:
    """Scheduled fires `max_runs` still allows (an inactive schedule's count starts anew)."""
    if max_runs is None:
        return None
    return max(0, max_runs - (fired if status != "inactive" else 0))


def _stored_part(row: Any) -> tuple[bytes, int | None]:
    """`{...stored fields, "schedule_description": ...` (no closing brace) and the schedule's
    max_runs, once per row version."""
    version = (row.id, int(row.xmin))
    found = _rendered.get(version)
    if found is not None:
        _rendered.move_to_end(version)
        return found
    fields = {
        c.name: json.loads(v) if c.name in _JSON_COLUMNS and v is not None else v
        for c, v in zip(_COLUMNS, row, strict=False)
    }
    read = TaskConfigRead.model_validate(fields)
    rendered = (
        read.model_dump_json(exclude=LIVE_FIELDS).encode()[:-1],
        read.schedule_config.get("max_runs"),
    )
    _rendered[version] = rendered
    if len(_rendered) > CACHED_VERSIONS:
        _rendered.popitem(last=False)
    return rendered


async def render_page(
    session: AsyncSession,
    redis: Redis,
    *,
    conditions: list[ColumnElement[bool]],
    limit: int,
    offset: int,
    include_stats: bool,
) -> bytes:
    """The page's JSON: `{"items": [...], "total", "limit", "offset"}`."""
    total = await session.scalar(select(func.count(TaskConfig.id)).where(*conditions))
    page = (
        select(*_SELECTED, literal_column("task_configs.xmin").label("xmin"))
        .where(*conditions)
        .order_by(TaskConfig.id)
        .limit(limit)
        .offset(offset)
    )
    rows = (await session.execute(page)).all()
    ids = [row.id for row in rows]
    views = await schedule_state.read_views(redis, ids)
    stats = await executions.stats_for(session, config_ids=ids) if include_stats else {}
    items = []
    for row in rows:
        view = views[row.id]
        stored, max_runs = _stored_part(row)
        live = _Live(
            schedule_status=view.status,
            # Only an active schedule has a next run; a paused one keeps no stale time on show.
            next_run_at=view.next_run_at if view.status == "active" else None,
            schedule_note=view.note,
            remaining_runs=remaining_runs(max_runs, status=view.status, fired=view.fired),
            stats=stats.get(row.id),
        )
        items.append(stored + b"," + live.model_dump_json().encode()[1:])
    tail = json.dumps({"total": total or 0, "limit": limit, "offset": offset})[1:]
    return b'{"items":[' + b",".join(items) + b"]," + tail.encode()
