"""Who may call what: one rule per route, in one table, enforced by one dependency.

Every route under /api/v1 has a rule: PUBLIC (no sign-in), SIGNED_IN (any user or token), or
the least role it takes (`viewer` < `operator` < `admin`). `authorize` runs before anything
else of a request (it is the API router's dependency), so a refused request writes nothing.
tests/api/test_access.py fails for a route without a rule and checks every (route, role) pair.
"""

from typing import Annotated, Literal

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from backend.api.deps import get_app_settings, get_redis, get_sessionmaker
from backend.api.route_templates import RouteTemplates
from backend.errors import Forbidden, Unauthorized
from backend.models import Role
from backend.services import auth
from backend.services.auth import Principal

PUBLIC: Literal["public"] = "public"
SIGNED_IN: Literal["signed_in"] = "signed_in"
Rule = Literal["public", "signed_in"] | Role

V1 = "/api/v1"
CONFIG = f"{V1}/tasks/configs/{{config_id}}"

RULES: dict[tuple[str, str], Rule] = {
    ("POST", f"{V1}/auth/login"): PUBLIC,
    ("POST", f"{V1}/auth/refresh"): PUBLIC,
    ("POST", f"{V1}/auth/logout"): SIGNED_IN,
    ("GET", f"{V1}/users/me"): SIGNED_IN,
    ("GET", f"{V1}/users"): "admin",
    ("POST", f"{V1}/users"): "admin",
    ("PATCH", f"{V1}/users/{{user_id}}"): "admin",
    ("POST", f"{V1}/tokens"): SIGNED_IN,  # a token's role never exceeds its creator's
    ("GET", f"{V1}/tokens"): SIGNED_IN,  # one's own; everyone's for an admin
    ("DELETE", f"{V1}/tokens/{{token_id}}"): SIGNED_IN,
    ("GET", f"{V1}/audit"): "viewer",
    ("GET", f"{V1}/tasks/types"): "viewer",
    ("GET", f"{V1}/tasks/configs"): "viewer",
    ("POST", f"{V1}/tasks/configs"): "admin",
    ("POST", f"{V1}/tasks/configs/apply"): "admin",  # may create and delete: as those
    ("GET", CONFIG): "viewer",
    ("PATCH", CONFIG): "admin",
    ("DELETE", CONFIG): "admin",
    ("GET", f"{CONFIG}/history"): "viewer",
    ("GET", f"{CONFIG}/audit"): "viewer",
    ("GET", f"{CONFIG}/executions"): "viewer",
    ("GET", f"{CONFIG}/next-runs"): "viewer",
    ("POST", f"{V1}/tasks/schedules/preview"): "viewer",  # computes only, stores nothing
    ("POST", f"{CONFIG}/actions/{{action}}"): "operator",
    ("POST", f"{CONFIG}/run"): "operator",
    ("POST", f"{CONFIG}/backfill"): "operator",
    ("POST", f"{V1}/tasks/run"): "operator",
    ("GET", f"{V1}/tasks/executions/{{task_id}}"): "viewer",
    ("POST", f"{V1}/tasks/executions/{{task_id}}/cancel"): "operator",
    ("GET", f"{V1}/tasks/status"): "viewer",
    ("POST", f"{V1}/notifications/channels"): "admin",
    ("GET", f"{V1}/notifications/channels"): "viewer",
    ("GET", f"{V1}/notifications/channels/{{channel_id}}"): "viewer",
    ("PATCH", f"{V1}/notifications/channels/{{channel_id}}"): "admin",
    ("DELETE", f"{V1}/notifications/channels/{{channel_id}}"): "admin",
    ("POST", f"{V1}/notifications/channels/{{channel_id}}/test"): "admin",
    ("GET", f"{V1}/notifications/deliveries"): "viewer",
}

oauth2_scheme = OAuth2PasswordBearer(tokenUrl=f"{V1}/auth/login", auto_error=False)
_templates = RouteTemplates()


def rule_for(request: Request) -> Rule:
    template = _templates.of(request.app, request.scope["route"])
    return RULES[(request.method, template)]


async def authorize(
    request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> Principal | None:
    """The caller, checked against the route's rule (None on a public route)."""
    rule = rule_for(request)
    if rule == PUBLIC:
        return None
    if token is None:
        raise Unauthorized("Not authenticated")
    # The getters called, not depended on: FastAPI walks each dependency of every request
    # (a tenth of a `/users/me`), and a session is opened only when a cache misses.
    principal = await auth.authenticate(
        await get_sessionmaker(request),
        await get_redis(request),
        settings=await get_app_settings(request),
        token=token,
    )
    if rule != SIGNED_IN and not principal.may(rule):
        raise Forbidden(f"This needs the {rule} role or higher; you have {principal.role}")
    return principal


async def current_principal(
    principal: Annotated[Principal | None, Depends(authorize)],
) -> Principal:
    assert principal is not None, "a route taking the caller must not be public"
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
