"""`GET /tasks/status`: the backing services' reachability and a few counts from each."""

from fastapi import APIRouter

from backend.api.deps import BrokerDep, RedisDep, SessionmakerDep
from backend.schemas.executions import SystemStatus
from backend.services import health

router = APIRouter(prefix="/tasks", tags=["executions"])


@router.get("/status")
async def get_status(
    sessionmaker: SessionmakerDep, redis: RedisDep, broker: BrokerDep
) -> SystemStatus:
    return await health.system_status(sessionmaker=sessionmaker, redis=redis, broker=broker)
