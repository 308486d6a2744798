"""`GET /health`: liveness and readiness of PostgreSQL, Redis and RabbitMQ (no sign-in)."""

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from backend.api.deps import BrokerDep, RedisDep, SessionmakerDep
from backend.api.errors import error_body
from backend.services import health

router = APIRouter(tags=["health"])


class HealthRead(BaseModel):
    status: str
    checks: dict[str, str]


class HealthUnavailable(HealthRead):
    """The error shape, plus which dependency is down."""

    error: dict[str, Any]


@router.get(
    "/health",
    response_model=HealthRead,
    responses={503: {"model": HealthUnavailable, "description": "A dependency is down"}},
)
async def get_health(
    sessionmaker: SessionmakerDep, redis: RedisDep, broker: BrokerDep
) -> JSONResponse:
    checks = await health.check_all(sessionmaker=sessionmaker, redis=redis, broker=broker)
    down = [name for name, outcome in checks.items() if outcome != "ok"]
    if not down:
        return JSONResponse({"status": "ok", "checks": checks})
    message = f"unavailable: {', '.join(down)}"
    body = {
        "status": "unavailable",
        "checks": checks,
        **error_body(503, "service_unavailable", message),
    }
    return JSONResponse(body, status_code=503)
