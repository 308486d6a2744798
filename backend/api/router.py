"""All API routers in one place, behind the one access check (backend/api/access.py)."""

from fastapi import APIRouter, Depends

from backend.api.access import authorize
from backend.api.routes import (
    apply,
    audit,
    auth,
    configs,
    executions,
    notifications,
    schedules,
    status,
    task_types,
    tokens,
    users,
)

api_router = APIRouter(prefix="/api/v1", dependencies=[Depends(authorize)])
api_router.include_router(auth.router)
api_router.include_router(users.router)
api_router.include_router(tokens.router)
api_router.include_router(task_types.router)
api_router.include_router(apply.router)
api_router.include_router(configs.router)
api_router.include_router(schedules.router)
api_router.include_router(schedules.preview_router)
api_router.include_router(executions.router)
api_router.include_router(status.router)
api_router.include_router(audit.router)
api_router.include_router(notifications.router)
