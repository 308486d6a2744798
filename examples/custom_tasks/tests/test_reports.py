"""The example type on its own: no services needed, the function is called directly."""

import asyncio
from datetime import UTC, datetime

from custom_tasks.reports import ReportParameters, report, report_period

from backend.tasks import RunContext, registry

FIRE = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def context(**fields: object) -> RunContext:
    values: dict[str, object] = {
        "task_id": "s7-1796104800000",
        "config_id": 7,
        "trigger": "scheduled",
        "scheduled_for": FIRE,
        "attempt": 1,
        "max_attempts": 3,
        **fields,
    }
    return RunContext(**values)  # type: ignore[arg-type]


def test_registered_with_its_schema_only() -> None:
    registered = registry.get("example.report")
    assert registered is not None
    schema = registered.parameters_schema()
    assert set(schema["properties"]) == {"name", "period_minutes"}  # no `context`


def test_the_period_ends_at_the_fire_time_whatever_the_attempt() -> None:
    params = ReportParameters(name="sales", period_minutes=30)
    now = datetime(2026, 12, 1, 6, 7, tzinfo=UTC)
    first = report_period(params, context(), now=now)
    retried = report_period(params, context(attempt=2, trigger="backfill"), now=now)
    assert first["period_start"] == "2026-12-01T05:30:00+00:00"
    assert first["period_end"] == "2026-12-01T06:00:00+00:00"
    assert first["idempotency_key"] == retried["idempotency_key"]
    assert retried["attempt"] == "2/3"


def test_a_manual_run_reports_up_to_now() -> None:
    params = ReportParameters(name="sales")
    now = datetime(2026, 12, 1, 9, 15, tzinfo=UTC)
    result = report_period(params, context(trigger="manual", scheduled_for=None), now=now)
    assert result["period_end"] == now.isoformat()


def test_the_task_function_runs() -> None:
    result = asyncio.run(report(ReportParameters(name="sales"), context()))
    assert result["period_end"] == FIRE.isoformat()
