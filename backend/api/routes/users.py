"""The current user and user management (admins)."""

from typing import Annotated

from fastapi import APIRouter, Query, status

from backend.api.access import CurrentPrincipal
from backend.api.deps import RedisDep, SessionDep, ValidUser
from backend.schemas.common import Offset, Page
from backend.schemas.users import MeRead, UserCreate, UserRead, UserUpdate
from backend.services import users

router = APIRouter(prefix="/users", tags=["users"])


@router.get("/me")
async def read_me(principal: CurrentPrincipal) -> MeRead:
    return MeRead(
        **principal.user.model_dump(exclude={"is_superuser"}),
        effective_role=principal.role,
        api_token_id=principal.token_id,
    )


@router.get("")
async def list_users(
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
    responses={409: {"description": "The email or username is taken"}},
)
async def create_user(
    body: UserCreate, session: SessionDep, principal: CurrentPrincipal
) -> UserRead:
    return UserRead.model_validate(await users.create(session, data=body, actor=principal.actor))


@router.patch(
    # Digits only: so PATCH /users/me is a 405, not an attempt at a user called "me".
    "/{user_id:int}",
    responses={
        409: {
            "description": "The email or username is taken, you demote or deactivate yourself, "
            "or the last active admin would be demoted or deactivated"
        }
    },
)
async def update_user(
    principal: CurrentPrincipal,
    user: ValidUser,
    body: UserUpdate,
    session: SessionDep,
    redis: RedisDep,
) -> UserRead:
    updated = await users.update(session, redis, user=user, data=body, actor=principal.actor)
    return UserRead.model_validate(updated)
