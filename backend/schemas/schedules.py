from datetime import datetime

from pydantic import BaseModel

from backend.services.redis.scheduler import Status


class ScheduleStateRead(BaseModel):
    config_id: int
    schedule_status: Status
    next_run_at: datetime | None
