"""The access rules: every route has one, and every (route, role) pair obeys it."""

import re

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy.ext.asyncio import AsyncSession

from backend.api.access import PUBLIC, RULES, SIGNED_IN
from backend.models import ROLES, Role, role_rank
from tests.support.auth import bearer_for, create_user, unique_username

# Path parameters that name nothing: an allowed call answers 404 or 422, never a change.
NO_ID = "2147483647"
PLACEHOLDERS = {"config_id": NO_ID, "user_id": NO_ID, "token_id": NO_ID, "channel_id": NO_ID,
                "task_id": "no-such-run", "action": "start"}  # fmt: skip


def api_routes(app: FastAPI) -> set[tuple[str, str]]:
    found = set()
    for context in iter_route_contexts(app.routes):
        path = context.path_format
        if path is not None and path.startswith("/api/v1"):
            found |= {(method, path) for method in context.original_route.methods}
    return found


def test_every_api_route_has_an_access_rule(app: FastAPI) -> None:
    routes = api_routes(app)
    assert routes - RULES.keys() == set(), "routes without a rule in backend/api/access.py"
    assert RULES.keys() - routes == set(), "rules for routes that do not exist"


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PLACEHOLDERS[m[1]], path)


@pytest.fixture(scope="module")
async def role_headers(app: FastAPI) -> dict[Role, dict[str, str]]:
    headers = {}
    async with app.state.resources.sessionmaker() as session:
        for role in ROLES:
            user = await create_user(session, username=unique_username(role), role=role)
            headers[role] = bearer_for(user.id)
    return headers


@pytest.mark.parametrize(("method", "path"), sorted(RULES))
async def test_each_role_gets_what_the_table_says(
    client: httpx.AsyncClient,
    role_headers: dict[Role, dict[str, str]],
    method: str,
    path: str,
) -> None:
    rule = RULES[(method, path)]
    if path.endswith("/auth/logout"):
        pytest.skip("logging out revokes the role's refresh tokens: tested in test_auth")
    for role in ROLES:
        response = await client.request(method, concrete(path), headers=role_headers[role])
        allowed = rule in (PUBLIC, SIGNED_IN) or role_rank(role) >= role_rank(rule)  # type: ignore[arg-type]
        if allowed:
            assert response.status_code != 403, (role, response.text)
        else:
            assert response.status_code == 403, (role, response.text)
            error = response.json()["error"]
            assert error["code"] == "forbidden"
            assert f"needs the {rule} role" in error["message"]
    anonymous = await client.request(method, concrete(path))
    if rule == PUBLIC:
        assert anonymous.status_code != 401
    else:
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"] == "Bearer"


async def test_a_refused_request_writes_nothing(
    client: httpx.AsyncClient, session: AsyncSession, role_headers: dict[Role, dict[str, str]]
) -> None:
    body = {"name": unique_username("refused"), "task_type": "demo.sleep",
            "scheduler_type": "manual"}  # fmt: skip
    response = await client.post(
        "/api/v1/tasks/configs", json=body, headers=role_headers["operator"]
    )
    assert response.status_code == 403
    admin = role_headers["admin"]
    listed = await client.get(
        "/api/v1/tasks/configs", params={"search": body["name"]}, headers=admin
    )
    assert listed.json()["total"] == 0
    audit = await client.get("/api/v1/audit", params={"action": "config.create"}, headers=admin)
    assert body["name"] not in {item["target_name"] for item in audit.json()["items"]}
