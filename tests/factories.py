"""Rows the tests need, written straight to the database."""

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from backend.models import TaskConfig


async def create_config(
    session: AsyncSession,
    *,
    scheduler_type: str = "interval",
    schedule_config: dict[str, Any] | None = None,
    parameters: dict[str, Any] | None = None,
    **fields: Any,
) -> TaskConfig:
    config = TaskConfig(
        name=fields.pop("name", f"test-{uuid.uuid4().hex[:12]}"),
        task_type=fields.pop("task_type", "demo.sleep"),
        scheduler_type=scheduler_type,
        schedule_config=schedule_config if schedule_config is not None else {"seconds": 60},
        parameters=parameters or {},
        **fields,
    )
    session.add(config)
    await session.commit()
    return config
