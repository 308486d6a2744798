"""Login, refresh and token schemas."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from backend.schemas.common import Text


class LoginRequest(BaseModel):
    """`username` takes a username or an email. No length rule on the password here: a
    too-short guess must get the same 401 as any wrong password."""

    username: Text = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=4096)


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type
    expires_at: datetime = Field(description="Expiry of the access token (UTC)")
