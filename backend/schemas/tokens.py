"""API token requests and responses; the secret appears only in the creation response."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from backend.models import Role
from backend.schemas.common import WHOLE, Name, RequestBody

ExpiresInDays = Annotated[int, Field(ge=1, le=365), WHOLE]


class TokenCreate(RequestBody):
    name: Name
    role: Role | None = Field(
        default=None, description="Your own role when not given; not above it"
    )
    expires_in_days: ExpiresInDays | None = Field(
        default=90, description="1 to 365, or null for a token that never expires"
    )


class TokenRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    name: str
    role: Role
    prefix: str = Field(description="The first characters of the token, to tell tokens apart")
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenRead):
    token: str = Field(description="The secret: shown in this response only, never again")


class CachedToken(BaseModel):
    """What a request needs of a token, as the cache holds it."""

    id: int
    user_id: int
    role: Role
    expires_at: datetime | None
    revoked: bool
