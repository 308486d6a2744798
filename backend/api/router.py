"""All API routers in one place."""

from fastapi import APIRouter

from backend.api.routes import configs, task_types

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(task_types.router)
api_router.include_router(configs.router)
