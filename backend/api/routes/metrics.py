"""`GET /metrics`: Prometheus text format, optionally behind a bearer token (METRICS_TOKEN)."""

import logging
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response
from redis.exceptions import RedisError

from backend import metrics
from backend.api.deps import RedisDep, SettingsDep
from backend.errors import Unauthorized
from backend.services.redis import timeout as live_runs

logger = logging.getLogger(__name__)


def require_metrics_token(
    settings: SettingsDep, authorization: Annotated[str | None, Header()] = None
) -> None:
    """With METRICS_TOKEN set, the scraper must send `Authorization: Bearer <token>`."""
    if settings.metrics_token is None:
        return
    scheme, _, presented = (authorization or "").partition(" ")
    expected = settings.metrics_token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not secrets.compare_digest(presented.encode(), expected):
        raise Unauthorized("A valid metrics token is required")


router = APIRouter(tags=["metrics"], dependencies=[Depends(require_metrics_token)])


@router.get("/metrics", include_in_schema=False)
async def get_metrics(redis: RedisDep) -> Response:
    try:
        in_flight: int | None = await live_runs.count_in_flight(redis)
    except RedisError as exc:
        # The other metrics matter most while Redis is down: serve them without this gauge.
        logger.warning("metrics: runs in flight unavailable: %s: %s", type(exc).__name__, exc)
        in_flight = None
    body = metrics.render(runs_in_flight=in_flight)
    return Response(body, media_type=metrics.CONTENT_TYPE_LATEST)
