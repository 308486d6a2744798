"""All API routers in one place."""

from fastapi import APIRouter

api_router = APIRouter(prefix="/api/v1")
