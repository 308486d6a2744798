"""API tokens: create (the secret is shown once), list, revoke."""

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from backend.api.access import CurrentPrincipal
from backend.api.deps import RedisDep, SessionDep
from backend.errors import Forbidden
from backend.schemas.common import Id, Offset, Page
from backend.schemas.tokens import TokenCreate, TokenCreated, TokenRead
from backend.services import tokens

router = APIRouter(prefix="/tokens", tags=["tokens"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={403: {"description": "The role asked for is above yours"}},
)
async def create_token(
    body: TokenCreate, session: SessionDep, principal: CurrentPrincipal
) -> TokenCreated:
    return await tokens.create(session, actor=principal.actor, actor_role=principal.role, data=body)


@router.get("", responses={403: {"description": "`all=true` without the admin role"}})
async def list_tokens(
    session: SessionDep,
    principal: CurrentPrincipal,
    all: Annotated[bool, Query(description="every user's tokens (admins only)")] = False,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Offset = 0,
) -> Page[TokenRead]:
    if all and not principal.may("admin"):
        raise Forbidden("Listing every user's tokens needs the admin role")
    user_id = None if all else principal.user.id
    items, total = await tokens.list_page(session, user_id=user_id, limit=limit, offset=offset)
    return Page(
        items=[TokenRead.model_validate(t) for t in items], total=total, limit=limit, offset=offset
    )


@router.delete("/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_token(
    token_id: Id, session: SessionDep, redis: RedisDep, principal: CurrentPrincipal
) -> Response:
    await tokens.revoke(
        session, redis, actor=principal.actor, actor_role=principal.role, token_id=token_id
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
