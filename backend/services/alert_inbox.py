"""The scheduler's side of alerts: missed and late fires into the alert inbox, for the
notifier (backend/services/alerts.py) to turn into deliveries.

A module of its own so that the scheduler process, which only writes inbox rows, does not
import the alert rules and the deliveries behind them (notifications, delivery, the SSRF
guard, httpx: about 10 MiB of its RSS).
"""

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.models import AlertInbox, TaskConfig, TaskExecution


async def note_missed(
    sessionmaker: async_sessionmaker[AsyncSession], config_id: int, fires: list[datetime]
) -> None:
    """Missed fires of a config with alert rules, for the notifier."""
    data = {"first": fires[0].isoformat(), "last": fires[-1].isoformat(), "count": len(fires)}
    await _note(sessionmaker, [{"kind": "missed", "config_id": config_id, "data": data}])


async def note_late(
    sessionmaker: async_sessionmaker[AsyncSession], checks: list[tuple[int, str, datetime]]
) -> None:
    """Fires due for their late check (config id, task id, fire time) not recorded yet."""
    if not checks:
        return
    async with sessionmaker() as session:
        recorded = set(
            await session.scalars(
                select(TaskExecution.task_id).where(
                    TaskExecution.task_id.in_([task_id for _, task_id, _ in checks])
                )
            )
        )
    rows = [
        {
            "kind": "late",
            "config_id": config_id,
            "task_id": task_id,
            "data": {"fire_time": fire_at.isoformat()},
        }
        for config_id, task_id, fire_at in checks
        if task_id not in recorded
    ]
    await _note(sessionmaker, rows)


async def _note(sessionmaker: async_sessionmaker[AsyncSession], rows: list[dict[str, Any]]) -> None:
    """Into the inbox, for configs that (still) have alert rules."""
    if not rows:
        return
    async with sessionmaker() as session:
        ids = {row["config_id"] for row in rows}
        alerting = set(
            await session.scalars(
                select(TaskConfig.id).where(TaskConfig.id.in_(ids), TaskConfig.alerts.is_not(None))
            )
        )
        session.add_all(AlertInbox(**row) for row in rows if row["config_id"] in alerting)
        await session.commit()
