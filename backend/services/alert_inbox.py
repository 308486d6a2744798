"""The scheduler's side of alerts: missed and late fires into the alert inbox, for the
notifier (backend/services/alerts.py) to turn into deliveries.

A module of its own so that the scheduler process, which only writes inbox rows, does not
import the alert rules and the deliveries behind them (notifications, delivery, the SSRF
guard, httpx: about 10 MiB of its RSS); and over plain asyncpg (the scheduler's pool,
backend/scheduler/database.py), as that process holds no SQLAlchemy (some 21 MiB more).
"""

import json
from datetime import datetime
from typing import Any

import asyncpg

# One statement for any number of rows (parallel arrays): only the configs that (still)
# have alert rules get them, and a late check's fire recorded by now gets none (a missed
# fire's row has no task id, so no record matches it).
_NOTE = """
INSERT INTO alert_inbox (kind, config_id, task_id, data)
SELECT r.kind, r.config_id, r.task_id, r.data::jsonb
FROM unnest($1::varchar[], $2::integer[], $3::varchar[], $4::text[])
    AS r(kind, config_id, task_id, data)
JOIN task_configs AS c ON c.id = r.config_id
WHERE c.alerts IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM task_executions AS e WHERE e.task_id = r.task_id)
"""


async def note_missed(pool: asyncpg.Pool, config_id: int, fires: list[datetime]) -> None:
    """Missed fires of a config with alert rules, for the notifier."""
    data = {"first": fires[0].isoformat(), "last": fires[-1].isoformat(), "count": len(fires)}
    await _note(pool, [("missed", config_id, None, data)])


async def note_late(pool: asyncpg.Pool, checks: list[tuple[int, str, datetime]]) -> None:
    """Fires due for their late check (config id, task id, fire time) not recorded yet."""
    await _note(
        pool,
        [
            ("late", config_id, task_id, {"fire_time": fire_at.isoformat()})
            for config_id, task_id, fire_at in checks
        ],
    )


async def _note(
    pool: asyncpg.Pool, rows: list[tuple[str, int, str | None, dict[str, Any]]]
) -> None:
    if not rows:
        return
    await pool.execute(
        _NOTE,
        [kind for kind, _, _, _ in rows],
        [config_id for _, config_id, _, _ in rows],
        [task_id for _, _, task_id, _ in rows],
        [json.dumps(data) for _, _, _, data in rows],
    )
