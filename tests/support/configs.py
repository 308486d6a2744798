"""Helpers for the task config tests: unique names (tests share one database) and bodies."""

import uuid
from typing import Any

CONFIGS = "/api/v1/tasks/configs"


def unique(prefix: str = "cfg") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def sleep_config(**overrides: Any) -> dict[str, Any]:
    """A valid `demo.sleep` interval config with a unique name."""
    body: dict[str, Any] = {
        "name": unique(),
        "task_type": "demo.sleep",
        "scheduler_type": "interval",
        "schedule_config": {"minutes": 5},
        "parameters": {"seconds": 1},
    }
    return body | overrides


def field_locs(response: Any) -> list[list[Any]]:
    return [field["loc"] for field in response.json()["error"]["fields"]]
