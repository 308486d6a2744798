"""The audit trail as the API returns it."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class AuditEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor_user_id: int | None
    actor_token_id: int | None
    actor: str | None
    action: str
    target_type: str
    target_id: int | None
    target_name: str | None
    changes: Any
    request_id: str | None
