"""Login, refresh and logout."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from backend.api.access import CurrentPrincipal
from backend.api.deps import RedisDep, SessionDep, SettingsDep
from backend.schemas.auth import LoginRequest, RefreshRequest, TokenPair
from backend.services import auth

router = APIRouter(prefix="/auth", tags=["auth"])

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def login_credentials(request: Request) -> LoginRequest:
    """JSON `{username, password}`, or the OAuth2 password form that /docs Authorize sends."""
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith(FORM_TYPES):
            form = await request.form()
            return LoginRequest.model_validate(
                {name: form.get(name) for name in ("username", "password")}
            )
        return LoginRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        # Into the API's one 422 shape, located in the body like any other body error.
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in errors]
        ) from exc


_LOGIN_SCHEMA: dict[str, Any] = LoginRequest.model_json_schema()
_LOGIN_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _LOGIN_SCHEMA},
            "application/x-www-form-urlencoded": {"schema": _LOGIN_SCHEMA},
        },
    }
}


@router.post(
    "/login",
    openapi_extra=_LOGIN_BODY,
    responses={401: {"description": "Wrong credentials"}, 429: {"description": "Locked out"}},
)
async def login(
    credentials: Annotated[LoginRequest, Depends(login_credentials)],
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
) -> TokenPair:
    return await auth.login(
        session,
        redis,
        settings=settings,
        username=credentials.username,
        password=credentials.password,
    )


@router.post("/refresh", responses={401: {"description": "Invalid, expired or reused"}})
async def refresh(
    body: RefreshRequest, session: SessionDep, redis: RedisDep, settings: SettingsDep
) -> TokenPair:
    return await auth.refresh(session, redis, settings=settings, refresh_token=body.refresh_token)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(principal: CurrentPrincipal, redis: RedisDep) -> Response:
    await auth.logout(redis, user_id=principal.user.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
