"""The current user, user management, and the user cache behind authenticated requests."""

import httpx
import pytest
import redis.exceptions
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.models import User
from backend.schemas.users import UserUpdate
from backend.services import users
from backend.services.audit import Actor
from backend.services.redis import cache
from tests.support.auth import bearer, bearer_for, create_user, login, login_pair, unique_username
from tests.support.sql import count_statements

USERS = "/api/v1/users"
ME = "/api/v1/users/me"
READ_FIELDS = {
    "id", "email", "username", "full_name", "is_active", "role", "is_superuser", "created_at",
    "updated_at",
}  # fmt: skip


async def test_me_returns_the_user_without_the_hash(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    response = await client.get(ME, headers=superuser_headers)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == READ_FIELDS | {"effective_role", "api_token_id"}
    assert body["email"] == "admin@example.com"
    assert body["is_superuser"] is True
    assert "argon2" not in response.text


async def test_warm_cache_request_runs_no_sql(
    app: FastAPI, client: httpx.AsyncClient, session: AsyncSession, redis: Redis
) -> None:
    user = await create_user(session, username=unique_username())
    headers = bearer_for(user.id)
    await cache.drop_user(redis, user.id)
    with count_statements(app) as cold:
        assert (await client.get(ME, headers=headers)).status_code == 200
    with count_statements(app) as warm:
        response = await client.get(ME, headers=headers)
    assert response.status_code == 200
    assert response.json()["id"] == user.id
    assert cold, "the cold request reads the user from PostgreSQL"
    assert warm == []


async def test_list_users_is_paged(
    client: httpx.AsyncClient, session: AsyncSession, superuser_headers: dict[str, str]
) -> None:
    for _ in range(3):
        await create_user(session, username=unique_username())
    response = await client.get(USERS, params={"limit": 2, "offset": 1}, headers=superuser_headers)
    assert response.status_code == 200
    page = response.json()
    assert set(page) == {"items", "total", "limit", "offset"}
    assert (page["limit"], page["offset"]) == (2, 1)
    assert page["total"] >= 4
    assert len(page["items"]) == 2
    assert all(set(item) == READ_FIELDS for item in page["items"])
    too_many = await client.get(USERS, params={"limit": 101}, headers=superuser_headers)
    assert too_many.status_code == 422


async def test_create_user_then_log_in_as_them(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    name = unique_username()
    body = {"email": f"{name}@Example.COM", "username": name, "password": "long-enough"}
    response = await client.post(USERS, json=body, headers=superuser_headers)
    assert response.status_code == 201
    created = response.json()
    assert set(created) == READ_FIELDS
    assert created["email"] == f"{name}@example.com"
    assert (created["is_active"], created["is_superuser"]) == (True, False)
    assert (await login(client, name, "long-enough")).status_code == 200


async def test_create_user_refuses_duplicates_with_409(
    client: httpx.AsyncClient, session: AsyncSession, superuser_headers: dict[str, str]
) -> None:
    taken = unique_username()
    await create_user(session, username=taken)
    fresh = unique_username()
    same_email = {"email": f"{taken}@example.com", "username": fresh, "password": "long-enough"}
    same_name = {"email": f"{fresh}@example.com", "username": taken, "password": "long-enough"}
    for body, field in ((same_email, "email"), (same_name, "username")):
        response = await client.post(USERS, json=body, headers=superuser_headers)
        assert response.status_code == 409
        assert field in response.json()["error"]["message"]


async def test_create_user_validates_with_422(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    name = unique_username()
    cases = {
        "password": {"email": f"{name}@example.com", "username": name, "password": "short"},
        "username": {"email": f"{name}@example.com", "username": "a@b", "password": "long-enough"},
        "email": {"email": "not-an-email", "username": name, "password": "long-enough"},
    }
    for field, body in cases.items():
        response = await client.post(USERS, json=body, headers=superuser_headers)
        assert response.status_code == 422
        assert [f["loc"] for f in response.json()["error"]["fields"]] == [["body", field]]


async def test_patch_unknown_user_is_404(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    response = await client.patch(
        f"{USERS}/999999999", json={"full_name": "x"}, headers=superuser_headers
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_patch_is_seen_by_the_next_request_of_that_user(
    client: httpx.AsyncClient, session: AsyncSession, superuser_headers: dict[str, str]
) -> None:
    user = await create_user(session, username=unique_username())
    headers = bearer_for(user.id)
    assert (await client.get(ME, headers=headers)).json()["full_name"] is None  # cache warm
    patched = await client.patch(
        f"{USERS}/{user.id}", json={"full_name": "Ada Lovelace"}, headers=superuser_headers
    )
    assert patched.status_code == 200
    assert patched.json()["full_name"] == "Ada Lovelace"
    assert (await client.get(ME, headers=headers)).json()["full_name"] == "Ada Lovelace"


async def test_patch_refuses_taken_email_and_nulls(
    client: httpx.AsyncClient, session: AsyncSession, superuser_headers: dict[str, str]
) -> None:
    taken = await create_user(session, username=unique_username())
    user = await create_user(session, username=unique_username())
    url = f"{USERS}/{user.id}"
    conflict = await client.patch(url, json={"email": taken.email}, headers=superuser_headers)
    assert conflict.status_code == 409
    null = await client.patch(url, json={"email": None}, headers=superuser_headers)
    assert null.status_code == 422
    short = await client.patch(url, json={"password": "short"}, headers=superuser_headers)
    assert short.status_code == 422


async def test_deactivation_takes_effect_on_the_next_request(
    client: httpx.AsyncClient, session: AsyncSession, superuser_headers: dict[str, str]
) -> None:
    name = unique_username()
    user = await create_user(session, username=name)
    pair = await login_pair(client, name, "password-1")
    assert (await client.get(ME, headers=bearer(pair["access_token"]))).status_code == 200
    response = await client.patch(
        f"{USERS}/{user.id}", json={"is_active": False}, headers=superuser_headers
    )
    assert response.status_code == 200
    me = await client.get(ME, headers=bearer(pair["access_token"]))
    assert me.status_code == 401
    assert me.headers["WWW-Authenticate"] == "Bearer"
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert refreshed.status_code == 401
    assert (await login(client, name, "password-1")).status_code == 401


async def test_password_change_revokes_refresh_tokens(
    client: httpx.AsyncClient, session: AsyncSession, superuser_headers: dict[str, str]
) -> None:
    name = unique_username()
    user = await create_user(session, username=name)
    pair = await login_pair(client, name, "password-1")
    response = await client.patch(
        f"{USERS}/{user.id}", json={"password": "a-new-password"}, headers=superuser_headers
    )
    assert response.status_code == 200
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert refreshed.status_code == 401
    assert (await login(client, name, "password-1")).status_code == 401
    assert (await login(client, name, "a-new-password")).status_code == 200


async def test_a_superuser_cannot_demote_or_deactivate_themselves(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    admin = await create_user(session, username=unique_username(), superuser=True)
    headers = bearer_for(admin.id)
    for change in ({"is_active": False}, {"is_superuser": False}, {"role": "operator"}):
        response = await client.patch(f"{USERS}/{admin.id}", json=change, headers=headers)
        assert response.status_code == 409
    assert (await client.get(ME, headers=headers)).json()["is_superuser"] is True


async def test_user_management_is_403_for_an_operator(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session, username=unique_username(), role="operator")
    headers = bearer_for(user.id)
    name = unique_username()
    body = {"email": f"{name}@example.com", "username": name, "password": "long-enough"}
    responses = [
        await client.get(USERS, headers=headers),
        await client.post(USERS, json=body, headers=headers),
        await client.patch(f"{USERS}/{user.id}", json={"is_superuser": True}, headers=headers),
    ]
    assert [r.status_code for r in responses] == [403, 403, 403]
    assert {r.json()["error"]["code"] for r in responses} == {"forbidden"}
    assert (await client.get(ME, headers=headers)).json()["is_superuser"] is False


SYSTEM = Actor(user_id=0, username="test")


async def test_a_change_with_redis_down_is_not_committed(session: AsyncSession) -> None:
    """The cache entry and refresh tokens are dropped before the commit, or nothing changes."""
    user = await create_user(session, username=unique_username())
    user_id = user.id
    down = Redis.from_url("redis://127.0.0.1:1/0")
    try:
        with pytest.raises(redis.exceptions.ConnectionError):
            await users.update(
                session, down, user=user, data=UserUpdate(is_active=False), actor=SYSTEM
            )
    finally:
        await down.aclose()
    await session.rollback()
    assert await session.scalar(select(User.is_active).where(User.id == user_id)) is True


async def create_with(client: httpx.AsyncClient, headers: dict[str, str], **fields: object):
    name = unique_username()
    body = {"email": f"{name}@example.com", "username": name, "password": "long-enough"}
    return await client.post(USERS, json=body | fields, headers=headers)


async def test_a_user_has_a_role_viewer_by_default(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    plain = (await create_with(client, superuser_headers)).json()
    assert (plain["role"], plain["is_superuser"]) == ("viewer", False)
    operator = (await create_with(client, superuser_headers, role="operator")).json()
    assert operator["role"] == "operator"
    changed = await client.patch(
        f"{USERS}/{operator['id']}", json={"role": "admin"}, headers=superuser_headers
    )
    assert (changed.json()["role"], changed.json()["is_superuser"]) == ("admin", True)


async def test_is_superuser_is_still_accepted_as_a_synonym(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    admin = (await create_with(client, superuser_headers, is_superuser=True)).json()
    assert admin["role"] == "admin"
    demoted = await client.patch(
        f"{USERS}/{admin['id']}", json={"is_superuser": False}, headers=superuser_headers
    )
    assert demoted.json()["role"] == "viewer"
    both = await create_with(client, superuser_headers, is_superuser=False, role="admin")
    assert both.json()["role"] == "admin"  # `role` wins


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"role": "root"}, ["body", "role"]),
        ({"role": None}, ["body", "role"]),
        ({"role": 1}, ["body", "role"]),
    ],
)
async def test_a_bad_role_is_422(
    client: httpx.AsyncClient, superuser_headers: dict[str, str], fields: dict, loc: list
) -> None:
    created = await create_with(client, superuser_headers, **fields)
    if fields.get("role", "x") is None:  # null is a valid "not given" on create: PATCH refuses
        assert created.status_code == 201
        created = await client.patch(
            f"{USERS}/{created.json()['id']}", json=fields, headers=superuser_headers
        )
    assert created.status_code == 422, created.text
    assert [f["loc"][: len(loc)] for f in created.json()["error"]["fields"]] == [loc]
