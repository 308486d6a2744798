"""All API routers in one place."""

from fastapi import APIRouter

from backend.api.routes import auth, configs, executions, schedules, status, task_types, users

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(auth.router)
api_router.include_router(users.router)
api_router.include_router(task_types.router)
api_router.include_router(configs.router)
api_router.include_router(schedules.router)
api_router.include_router(executions.router)
api_router.include_router(status.router)
