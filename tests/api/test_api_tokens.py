"""API tokens: minted once, scoped by role, refused the moment they are revoked or expire."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.models import ApiToken, Role
from backend.services import tokens
from backend.services.redis import cache
from tests.support.auth import bearer, bearer_for, create_user, unique_username
from tests.support.configs import sleep_config
from tests.support.sql import count_statements

TOKENS = "/api/v1/tokens"
ME = "/api/v1/users/me"


async def user_headers(session: AsyncSession, role: Role) -> tuple[int, dict[str, str]]:
    user = await create_user(session, username=unique_username(role), role=role)
    return user.id, bearer_for(user.id)


async def mint(
    client: httpx.AsyncClient, headers: dict[str, str], **body: object
) -> dict[str, object]:
    response = await client.post(TOKENS, json={"name": "ci", **body}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_token_is_shown_once_and_works_as_a_bearer(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user_id, headers = await user_headers(session, "operator")
    created = await mint(client, headers, expires_in_days=30)
    secret = str(created["token"])
    assert secret.startswith("thk_")
    assert len(secret) == 44
    assert created["prefix"] == secret[:12]
    assert created["role"] == "operator"  # the caller's, by default
    assert created["last_used_at"] is None
    me = await client.get(ME, headers=bearer(secret))
    assert me.status_code == 200
    assert me.json()["id"] == user_id
    listed = (await client.get(TOKENS, headers=headers)).json()
    assert [t["id"] for t in listed["items"]] == [created["id"]]
    assert "token" not in listed["items"][0]
    [row] = (await session.scalars(select(ApiToken).where(ApiToken.id == created["id"]))).all()
    assert row.token_hash == tokens.hash_token(secret)
    assert secret not in row.token_hash


async def test_the_effective_role_is_the_lower_of_token_and_user(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, admin = await user_headers(session, "admin")
    minted = await mint(client, admin, role="viewer")
    viewer_token = bearer(str(minted["token"]))
    me = (await client.get(ME, headers=viewer_token)).json()
    assert (me["role"], me["effective_role"], me["api_token_id"]) == (
        "admin",
        "viewer",
        minted["id"],
    )
    logged_in = (await client.get(ME, headers=admin)).json()
    assert (logged_in["effective_role"], logged_in["api_token_id"]) == ("admin", None)
    assert (await client.get("/api/v1/tasks/configs", headers=viewer_token)).status_code == 200
    refused = await client.post("/api/v1/tasks/configs", json=sleep_config(), headers=viewer_token)
    assert refused.status_code == 403
    # ... and it cannot mint itself a stronger token.
    stronger = await client.post(TOKENS, json={"name": "up", "role": "admin"}, headers=viewer_token)
    assert stronger.status_code == 403


async def test_a_role_above_the_callers_is_403(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, headers = await user_headers(session, "operator")
    response = await client.post(TOKENS, json={"name": "x", "role": "admin"}, headers=headers)
    assert response.status_code == 403
    assert "operator" in response.json()["error"]["message"]
    assert (await client.get(TOKENS, headers=headers)).json()["total"] == 0


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"name": "x", "expires_in_days": 0}, ["body", "expires_in_days"]),
        ({"name": "x", "expires_in_days": 366}, ["body", "expires_in_days"]),
        ({"name": "x", "role": "root"}, ["body", "role"]),
        ({"name": ""}, ["body", "name"]),
    ],
)
async def test_bad_token_requests_are_422(
    client: httpx.AsyncClient, session: AsyncSession, body: dict[str, object], loc: list[str]
) -> None:
    _, headers = await user_headers(session, "viewer")
    response = await client.post(TOKENS, json=body, headers=headers)
    assert response.status_code == 422
    assert [f["loc"] for f in response.json()["error"]["fields"]] == [loc]


async def test_a_token_that_never_expires(client: httpx.AsyncClient, session: AsyncSession) -> None:
    _, headers = await user_headers(session, "viewer")
    assert (await mint(client, headers, expires_in_days=None))["expires_at"] is None


async def test_revoked_expired_and_unknown_tokens_are_401(
    client: httpx.AsyncClient, session: AsyncSession, redis: Redis
) -> None:
    _, headers = await user_headers(session, "viewer")
    revoked, expired = await mint(client, headers), await mint(client, headers)
    assert (await client.get(ME, headers=bearer(str(revoked["token"])))).status_code == 200
    assert (await client.delete(f"{TOKENS}/{revoked['id']}", headers=headers)).status_code == 204
    await session.execute(
        update(ApiToken)
        .where(ApiToken.id == expired["id"])
        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    )
    await session.commit()
    await cache.drop_token(redis, tokens.hash_token(str(expired["token"])))
    secrets = [revoked["token"], expired["token"], "thk_" + "x" * 40, "thk_", "thk_no such"]
    for secret in secrets:
        response = await client.get(ME, headers=bearer(str(secret)))
        assert response.status_code == 401, secret
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"


async def test_a_deactivated_users_tokens_stop_at_once(
    client: httpx.AsyncClient, session: AsyncSession, superuser_headers: dict[str, str]
) -> None:
    user_id, headers = await user_headers(session, "operator")
    secret = bearer(str((await mint(client, headers))["token"]))
    assert (await client.get(ME, headers=secret)).status_code == 200
    patched = await client.patch(
        f"/api/v1/users/{user_id}", json={"is_active": False}, headers=superuser_headers
    )
    assert patched.status_code == 200
    assert (await client.get(ME, headers=secret)).status_code == 401


async def test_a_demoted_users_tokens_lose_the_role_at_once(
    client: httpx.AsyncClient, session: AsyncSession, superuser_headers: dict[str, str]
) -> None:
    user_id, headers = await user_headers(session, "operator")
    secret = bearer(str((await mint(client, headers))["token"]))
    run_batch = {"config_ids": [2147483647]}
    assert (
        await client.post("/api/v1/tasks/run", json=run_batch, headers=secret)
    ).status_code == 200
    await client.patch(
        f"/api/v1/users/{user_id}", json={"role": "viewer"}, headers=superuser_headers
    )
    assert (
        await client.post("/api/v1/tasks/run", json=run_batch, headers=secret)
    ).status_code == 403


async def test_only_admins_list_and_revoke_everyones_tokens(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, owner = await user_headers(session, "operator")
    _, other = await user_headers(session, "operator")
    _, admin = await user_headers(session, "admin")
    token = await mint(client, owner)
    assert (await client.get(TOKENS, params={"all": "true"}, headers=other)).status_code == 403
    assert (await client.delete(f"{TOKENS}/{token['id']}", headers=other)).status_code == 404
    everyone = (
        await client.get(TOKENS, params={"all": "true", "limit": 100}, headers=admin)
    ).json()
    assert token["id"] in [t["id"] for t in everyone["items"]]
    assert (await client.delete(f"{TOKENS}/{token['id']}", headers=admin)).status_code == 204
    assert (await client.get(ME, headers=bearer(str(token["token"])))).status_code == 401


async def test_a_token_is_no_refresh_token(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, headers = await user_headers(session, "viewer")
    secret = str((await mint(client, headers))["token"])
    response = await client.post("/api/v1/auth/refresh", json={"refresh_token": secret})
    assert response.status_code == 401


async def test_a_warm_token_costs_no_sql_and_last_used_is_written_once_a_minute(
    app: FastAPI, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, headers = await user_headers(session, "viewer")
    created = await mint(client, headers)
    secret = bearer(str(created["token"]))
    with count_statements(app) as first:
        assert (await client.get(ME, headers=secret)).status_code == 200
    with count_statements(app) as warm:
        for _ in range(3):
            assert (await client.get(ME, headers=secret)).status_code == 200
    assert warm == []
    assert any("UPDATE api_tokens SET last_used_at" in s for s in first)
    row = await session.get(ApiToken, created["id"], populate_existing=True)
    assert row is not None
    assert row.last_used_at is not None
