"""The config list page, rendered to JSON: `GET /tasks/configs`, the API's busiest read.

One SQL statement reads the total and the page together (the total as a subquery in each
row: unfiltered, the counter triggers keep in task_config_count; filtered, a count; a page
past the end, which has no row, reads it in a second one); on request one more reads the
stats; one Redis call reads the live states. The statements run on a connection
of the reader (autocommit: no BEGIN and ROLLBACK) held only for them, not while Redis
answers and the page is rendered, so fifty clients share a pool of a few connections.

No ORM object, validation or serialization per config per request: a config's stored part
only changes when its row does, so its JSON (with the schedule in words) is rendered once per
row version and kept, and each request adds only the live part. A row version is its id and
PostgreSQL's `xmin` (the transaction that wrote it: any UPDATE changes it), read by the page
statement itself; JSONB columns come as text and are parsed only to render a version not
seen before.

The JSON is that of `Page[TaskConfigRead]`, keys in another order (the live fields last).
"""

import json
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import TypeAdapter
from redis.asyncio import Redis
from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Text,
    bindparam,
    cast,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from typing_extensions import TypedDict  # pydantic takes typing's only from Python 3.12

from backend.db import Reader
from backend.models import ScheduleStatus, TaskConfig, TaskConfigCount
from backend.schemas.configs import TaskConfigRead
from backend.schemas.executions import ExecutionStats
from backend.services import executions, schedule_entries
from backend.services.redis import scheduler as schedule_state
from backend.services.redis.scheduler import ScheduleView
from backend.triggers.options import max_runs_of

CACHED_VERSIONS = 20_000  # rendered rows kept (about 600 bytes each)
LIVE_FIELDS = {
    "schedule_status", "next_run_at", "schedule_note", "remaining_runs", "stats", "recent_history",
}  # fmt: skip
_COLUMNS = list(TaskConfig.__table__.columns)
_JSON_COLUMNS = {c.name for c in _COLUMNS if isinstance(c.type, JSONB)}
_SELECTED = [cast(c, Text).label(c.name) if c.name in _JSON_COLUMNS else c for c in _COLUMNS]
_ID_AT = [c.name for c in _COLUMNS].index("id")  # in a page row: _SELECTED, then xmin
CACHED_LIVE_PARTS = 20_000  # live parts kept; the whole cache is dropped when it is full


class _Live(TypedDict):
    """What a request adds to a config's stored part (serialized as TaskConfigRead does)."""

    schedule_status: ScheduleStatus
    next_run_at: datetime | None
    schedule_note: str | None
    remaining_runs: int | None
    stats: ExecutionStats | None
    recent_history: None


_LIVE = TypeAdapter(_Live)
_rendered: OrderedDict[tuple[int, int], tuple[bytes, int | None]] = OrderedDict()
# Without stats, a live part is one of few values (the configs of one schedule share their
# next run): `,"schedule_status":...}` by (status, next run and its offset, note, remaining).
_live_parts: dict[tuple[str, datetime | None, timedelta | None, str | None, int | None], bytes] = {}


def _live_part(view: ScheduleView, *, max_runs: int | None, stats: ExecutionStats | None) -> bytes:
    """`,"schedule_status": ...}`: the live fields after a stored part."""
    # Only an active schedule has a next run; a paused one keeps no stale time on show.
    next_run_at = view.next_run_at if view.status == "active" else None
    remaining = schedule_entries.remaining_runs(max_runs, view)
    # Equal datetimes may differ in offset, and the offset is written out: it is in the key.
    offset = next_run_at.utcoffset() if next_run_at is not None else None
    key = (view.status, next_run_at, offset, view.note, remaining)
    found = _live_parts.get(key) if stats is None else None
    if found is not None:
        return found
    live = _Live(
        schedule_status=view.status, next_run_at=next_run_at, schedule_note=view.note,
        remaining_runs=remaining, stats=stats, recent_history=None,
    )  # fmt: skip
    rendered = b"," + _LIVE.dump_json(live)[1:]
    if stats is None:
        if len(_live_parts) >= CACHED_LIVE_PARTS:
            _live_parts.clear()
        _live_parts[key] = rendered
    return rendered


def _stored_part(row: Sequence[Any]) -> tuple[bytes, int | None]:
    """`{...stored fields, "schedule_description": ...` (no closing brace) and the schedule's
    max_runs, once per row version. `row`: the _SELECTED columns, then xmin."""
    version = (row[_ID_AT], int(row[-1]))
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
        max_runs_of(read.schedule_config),
    )
    _rendered[version] = rendered
    if len(_rendered) > CACHED_VERSIONS:
        _rendered.popitem(last=False)
    return rendered


def _total(conditions: list[ColumnElement[bool]]) -> Select[Any]:
    """The number of configs the conditions select: without any, the triggers' counter (one
    row read rather than every row counted: at 100,000 configs the count was half a page's
    cost); with some, counted."""
    if not conditions:
        return select(TaskConfigCount.total)
    return select(func.count()).select_from(TaskConfig).where(*conditions)


def _total_and_page(conditions: list[ColumnElement[bool]]) -> Select[Any]:
    """`total, <the _SELECTED columns>, xmin` per row of the page (the total is an
    uncorrelated subquery: PostgreSQL reads it once per statement, in the statement's
    snapshot, so it agrees with the rows); limit and offset are the parameters `page_limit`
    and `page_offset`."""
    total = _total(conditions).scalar_subquery()
    return (
        select(total.label("total"), *_SELECTED, literal_column("task_configs.xmin").label("xmin"))
        .where(*conditions)
        .order_by(TaskConfig.id)
        .limit(bindparam("page_limit", type_=Integer))
        .offset(bindparam("page_offset", type_=Integer))
    )


# Built once: building the statement and its cache key took a tenth of an unfiltered page.
_UNFILTERED = _total_and_page([])


async def render_page(
    reader: Reader,
    redis: Redis,
    *,
    conditions: list[ColumnElement[bool]],
    limit: int,
    offset: int,
    include_stats: bool,
) -> bytes:
    """The page's JSON: `{"items": [...], "total", "limit", "offset"}`."""
    async with reader.connect() as connection:
        statement = _total_and_page(conditions) if conditions else _UNFILTERED
        parameters = {"page_limit": limit, "page_offset": offset}
        found = (await connection.execute(statement, parameters)).all()
        if found:
            total = found[0].total
        elif offset:  # past the end: no row carries the total
            total = await connection.scalar(_total(conditions)) or 0
        else:
            total = 0
        rows = [row[1:] for row in found]
        ids = [row[_ID_AT] for row in rows]
        stats = await executions.stats_for(connection, config_ids=ids) if include_stats else {}
    views = await schedule_state.read_views(redis, ids)
    items = []
    for config_id, row in zip(ids, rows, strict=True):
        stored, max_runs = _stored_part(row)
        live = _live_part(views[config_id], max_runs=max_runs, stats=stats.get(config_id))
        items.append(stored + live)
    tail = json.dumps({"total": total, "limit": limit, "offset": offset})[1:]
    return b'{"items":[' + b",".join(items) + b"]," + tail.encode()
