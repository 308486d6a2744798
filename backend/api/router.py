"""All API routers in one place."""

from fastapi import APIRouter

from backend.api.routes import schedules

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(schedules.router)
