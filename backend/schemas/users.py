"""User schemas: what the API accepts and returns; the password hash never appears here."""

from datetime import datetime
from typing import Annotated, ClassVar, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    computed_field,
    model_validator,
)

from backend.models import Role
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
    role: Role
    created_at: datetime
    updated_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def is_superuser(self) -> bool:
        """Read-only, for clients of the superuser days: `role == "admin"`."""
        return self.role == "admin"


class MeRead(UserRead):
    """The caller: the user, and what this request may do. Through an API token the role in
    effect is the lower of the token's and the user's (`role` stays the user's)."""

    effective_role: Role
    api_token_id: int | None = Field(
        default=None, description="The API token this request came with; null for a login."
    )


# Marked deprecated in the schema only: pydantic's own `deprecated=` warns on every read.
IS_SUPERUSER = Field(
    default=None,
    json_schema_extra={"deprecated": True},
    description='Deprecated synonym, for one release: true means `role: "admin"`, false '
    '`"viewer"`; ignored when `role` is sent too.',
)


class RoleInput(BaseModel):
    """`role`, or the deprecated `is_superuser` standing for it (`role` wins)."""

    role: Role | None = None
    is_superuser: bool | None = IS_SUPERUSER

    @model_validator(mode="after")
    def _superuser_means_admin(self) -> Self:
        if self.is_superuser is not None and self.role is None:
            self.role = "admin" if self.is_superuser else "viewer"
        return self


class UserCreate(RoleInput, RequestBody):
    email: Email
    username: Username
    password: Password
    full_name: FullName | None = None
    is_active: bool = True
    role: Role | None = Field(default=None, description="`viewer` when not given")


class UserUpdate(RoleInput, UpdateBody):
    """Only the fields sent are changed; only `full_name` may be set to null."""

    NULLABLE: ClassVar[tuple[str, ...]] = ("full_name",)

    email: Email | None = None
    username: Username | None = None
    password: Password | None = None
    full_name: FullName | None = None
    is_active: bool | None = None
    role: Role | None = None
