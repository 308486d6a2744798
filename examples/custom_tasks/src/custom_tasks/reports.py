"""`example.report`: a report of the period that ends at the run's nominal fire time.

It takes `context: RunContext` to be idempotent per fire: a retry, a run whose worker died,
or a backfill of the same fire has the same `scheduled_for`, so it reports the same period
under the same key; a downstream system can drop a second delivery by that key.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from backend.tasks import RunContext, task_type


class ReportParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    period_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)


def report_period(
    params: ReportParameters, context: RunContext, *, now: datetime
) -> dict[str, Any]:
    """The period a run covers: the one ending at its fire time, or now for a manual run."""
    end = context.scheduled_for or now
    start = end - timedelta(minutes=params.period_minutes)
    return {
        "report": params.name,
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
        "idempotency_key": f"{params.name}:{context.config_id}:{end.isoformat()}",
        "trigger": context.trigger,
        "attempt": f"{context.attempt}/{context.max_attempts}",
    }


@task_type(
    "example.report",
    description="Report on the `period_minutes` before the run's fire time (an example type).",
    parameters=ReportParameters,
)
async def report(params: ReportParameters, context: RunContext) -> dict[str, Any]:
    return report_period(params, context, now=datetime.now(UTC))
