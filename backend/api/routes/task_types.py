"""`GET /tasks/types`: the registered task types and the JSON schema of their parameters."""

from fastapi import APIRouter

from backend.schemas.configs import TaskTypeRead
from backend.tasks import registry

router = APIRouter(prefix="/tasks/types", tags=["task types"])


@router.get("")
async def list_task_types() -> list[TaskTypeRead]:
    return [
        TaskTypeRead(
            name=t.name, description=t.description, parameters_schema=t.parameters_schema()
        )
        for t in registry.all_types()
    ]
