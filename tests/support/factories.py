"""Rows the tests need, written straight to the database (the API has its own tests)."""

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from backend.models import TaskConfig


async def create_config(session: AsyncSession, **fields: Any) -> TaskConfig:
    """A `demo.sleep` config, manual unless the fields say otherwise, with a unique name."""
    values: dict[str, Any] = {
        "name": f"test-{uuid.uuid4().hex[:12]}",
        "task_type": "demo.sleep",
        "scheduler_type": "manual",
        "schedule_config": {},
        "parameters": {"seconds": 0},
        **fields,
    }
    config = TaskConfig(**values)
    session.add(config)
    await session.commit()
    return config
