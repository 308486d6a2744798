"""User schemas: what the API accepts and returns; the password hash never appears here."""

from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field

from backend.schemas.common import RequestBody, Text, UpdateBody

# Emails are stored lower-case so that login by email is case-insensitive.
Email = Annotated[EmailStr, Field(max_length=320), AfterValidator(str.lower)]
# No "@" in usernames: login tells a username from an email by it, so the two never collide.
Username = Annotated[str, Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
Password = Annotated[str, Field(min_length=8, max_length=128)]
FullName = Annotated[Text, Field(max_length=255)]


class UserRead(BaseModel):
    """A user as the API returns it, and as the user cache holds it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    username: str
    full_name: str | None
    is_active: bool
    is_superuser: bool
    created_at: datetime
    updated_at: datetime


class UserCreate(RequestBody):
    email: Email
    username: Username
    password: Password
    full_name: FullName | None = None
    is_active: bool = True
    is_superuser: bool = False


class UserUpdate(UpdateBody):
    """Only the fields sent are changed; only `full_name` may be set to null."""

    NULLABLE: ClassVar[tuple[str, ...]] = ("full_name",)

    email: Email | None = None
    username: Username | None = None
    password: Password | None = None
    full_name: FullName | None = None
    is_active: bool | None = None
    is_superuser: bool | None = None
