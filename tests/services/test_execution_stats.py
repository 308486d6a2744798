"""Execution stats per config: one SQL statement for any number of configs."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from backend.models import TaskConfig, TaskExecution
from backend.schemas.executions import ExecutionStats
from backend.services.executions import stats_for
from tests.support.configs import unique

T0 = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)


async def make_config(session: AsyncSession) -> TaskConfig:
    config = TaskConfig(
        name=unique("stats"), task_type="demo.sleep", scheduler_type="manual", parameters={}
    )
    session.add(config)
    await session.flush()
    return config


def run(config_id: int, *, ok: bool, minute: int, duration: float) -> TaskExecution:
    started = T0 + timedelta(minutes=minute)
    return TaskExecution(
        config_id=config_id,
        task_id=unique("run"),
        is_success=ok,
        started_at=started,
        completed_at=started + timedelta(seconds=duration),
        duration_seconds=duration,
        trigger="scheduled",
    )


async def test_stats_for_several_configs_in_one_statement(
    app: FastAPI, session: AsyncSession
) -> None:
    busy, idle = await make_config(session), await make_config(session)
    durations = [1.0, 2.0, 3.0, 4.0, 10.0]
    outcomes = [True, False, True, True, False]
    session.add_all(
        run(busy.id, ok=ok, minute=i, duration=d)
        for i, (ok, d) in enumerate(zip(outcomes, durations, strict=True))
    )
    await session.commit()

    statements: list[str] = []

    def on_sql(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    engine = app.state.resources.engine.sync_engine
    event.listen(engine, "before_cursor_execute", on_sql)
    try:
        stats = await stats_for(session, config_ids=[busy.id, idle.id])
    finally:
        event.remove(engine, "before_cursor_execute", on_sql)

    assert len(statements) == 1
    assert stats[idle.id] == ExecutionStats()
    busy_stats = stats[busy.id]
    assert (busy_stats.total_runs, busy_stats.successes, busy_stats.failures) == (5, 3, 2)
    assert busy_stats.success_rate == pytest.approx(0.6)
    assert busy_stats.avg_duration_seconds == pytest.approx(4.0)
    # percentile_cont interpolates: rank 0.95 * 4 = 3.8 between 4.0 and 10.0.
    assert busy_stats.p95_duration_seconds == pytest.approx(4.0 + 0.8 * 6.0)
    assert busy_stats.last_run_at == T0 + timedelta(minutes=4)
    assert busy_stats.last_success_at == T0 + timedelta(minutes=3)
    assert busy_stats.last_failure_at == T0 + timedelta(minutes=4)
    assert busy_stats.last_run_success is False
    assert stats[idle.id].last_run_success is None


async def test_last_run_success_is_the_outcome_of_the_newest_run(session: AsyncSession) -> None:
    config = await make_config(session)
    # Inserted newest first, so the answer cannot come from insertion order.
    session.add_all(
        [
            run(config.id, ok=True, minute=9, duration=1.0),
            run(config.id, ok=False, minute=5, duration=1.0),
            run(config.id, ok=False, minute=1, duration=1.0),
        ]
    )
    await session.commit()
    stats = (await stats_for(session, config_ids=[config.id]))[config.id]
    assert stats.last_run_success is True
    assert stats.success_rate == pytest.approx(1 / 3)


async def test_no_ids_asks_nothing(session: AsyncSession) -> None:
    assert await stats_for(session, config_ids=[]) == {}
