"""The current user and user management (superusers)."""

from typing import Annotated

from fastapi import APIRouter, Query, status

from backend.api.deps import (
    SUPERUSER_ONLY,
    CurrentUser,
    RedisDep,
    SessionDep,
    SuperUser,
    ValidUser,
)
from backend.schemas.common import Offset, Page
from backend.schemas.users import UserCreate, UserRead, UserUpdate
from backend.services import users

router = APIRouter(prefix="/users", tags=["users"])


@router.get("/me")
async def read_me(user: CurrentUser) -> UserRead:
    return user


@router.get("", responses=SUPERUSER_ONLY)
async def list_users(
    _: SuperUser,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Offset = 0,
) -> Page[UserRead]:
    items, total = await users.list_page(session, limit=limit, offset=offset)
    return Page(
        items=[UserRead.model_validate(u) for u in items], total=total, limit=limit, offset=offset
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=SUPERUSER_ONLY | {409: {"description": "The email or username is taken"}},
)
async def create_user(_: SuperUser, body: UserCreate, session: SessionDep) -> UserRead:
    return UserRead.model_validate(await users.create(session, data=body))


@router.patch(
    # Digits only: so PATCH /users/me is a 405, not an attempt at a user called "me".
    "/{user_id:int}",
    responses=SUPERUSER_ONLY
    | {409: {"description": "The email or username is taken, or you demote yourself"}},
)
async def update_user(
    actor: SuperUser, user: ValidUser, body: UserUpdate, session: SessionDep, redis: RedisDep
) -> UserRead:
    updated = await users.update(session, redis, user=user, data=body, actor_id=actor.id)
    return UserRead.model_validate(updated)
