"""The labels a run of a config carries: one definition for run-now and the scheduler."""

from typing import Any, Literal

from backend.models import TaskConfig

Trigger = Literal["scheduled", "manual"]


def for_config(config: TaskConfig, *, trigger: Trigger) -> dict[str, Any]:
    return {
        "config_id": config.id,
        "trigger": trigger,
        # taskiq's own labels: the receiver's timeout, the retry middleware, the broker priority
        "timeout": config.timeout_seconds,
        "retry_on_error": config.max_retries > 0,
        "max_retries": config.max_retries,
        "priority": config.priority,
        "overlap_policy": config.overlap_policy,
    }
