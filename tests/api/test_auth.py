"""Login, refresh rotation with reuse detection, logout and the login lockout."""

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from backend.config import get_settings
from tests.support.auth import bearer, create_user, login, login_pair, unique_username

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/users/me"


def claims_of(token: str) -> dict:
    return jwt.decode(token, get_settings().jwt_secret.get_secret_value(), algorithms=["HS256"])


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(REFRESH, json={"refresh_token": token})


def without_request_id(body: dict) -> dict:
    return {**body, "error": {k: v for k, v in body["error"].items() if k != "request_id"}}


async def test_login_with_json_returns_a_token_pair(client: httpx.AsyncClient) -> None:
    before = datetime.now(UTC)
    response = await login(client, "admin@example.com", "admin-password")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_at"}
    assert body["token_type"] == "bearer"
    access, refresh_claims = claims_of(body["access_token"]), claims_of(body["refresh_token"])
    assert access["type"] == "access"
    assert refresh_claims["type"] == "refresh"
    assert refresh_claims["family"]
    expires_at = datetime.fromisoformat(body["expires_at"])
    assert expires_at.utcoffset() == timedelta(0)
    assert expires_at.timestamp() == access["exp"]
    lifetime = timedelta(minutes=15)
    assert before.replace(microsecond=0) + lifetime <= expires_at <= datetime.now(UTC) + lifetime
    me = await client.get(ME, headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["email"] == "admin@example.com"


async def test_login_with_the_oauth2_form_and_a_username(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    name = unique_username()
    await create_user(session, username=name)
    form = {"grant_type": "password", "username": name, "password": "password-1"}
    response = await client.post(LOGIN, data=form)
    assert response.status_code == 200
    me = await client.get(ME, headers=bearer(response.json()["access_token"]))
    assert me.json()["username"] == name


async def test_login_by_email_ignores_its_case(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    name = unique_username()
    await create_user(session, username=name)
    response = await login(client, f"{name.upper()}@EXAMPLE.com", "password-1")
    assert response.status_code == 200


async def test_login_body_errors_are_422(client: httpx.AsyncClient) -> None:
    missing = await client.post(LOGIN, json={"username": "admin"})
    assert missing.status_code == 422
    assert missing.json()["error"]["fields"][0]["loc"] == ["body", "password"]
    broken = await client.post(
        LOGIN, content=b"{nope", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 422


async def test_wrong_password_unknown_and_inactive_user_look_the_same(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    known, inactive = unique_username(), unique_username()
    await create_user(session, username=known)
    user = await create_user(session, username=inactive)
    user.is_active = False
    await session.commit()
    responses = [
        await login(client, known, "wrong-password"),
        await login(client, unique_username("nobody"), "wrong-password"),
        await login(client, inactive, "password-1"),
    ]
    assert {r.status_code for r in responses} == {401}
    assert {r.headers["WWW-Authenticate"] for r in responses} == {"Bearer"}
    bodies = [without_request_id(r.json()) for r in responses]
    assert bodies[0] == bodies[1] == bodies[2]


async def test_refresh_rotates_the_token(client: httpx.AsyncClient) -> None:
    first = await login_pair(client, "admin", "admin-password")
    response = await refresh(client, first["refresh_token"])
    assert response.status_code == 200
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (
        claims_of(second["refresh_token"])["family"] == claims_of(first["refresh_token"])["family"]
    )
    me = await client.get(ME, headers=bearer(second["access_token"]))
    assert me.status_code == 200
    third = await refresh(client, second["refresh_token"])
    assert third.status_code == 200


async def test_replay_revokes_the_family_but_not_other_logins(client: httpx.AsyncClient) -> None:
    stolen = await login_pair(client, "admin", "admin-password")
    other_login = await login_pair(client, "admin", "admin-password")
    newest = (await refresh(client, stolen["refresh_token"])).json()

    replay = await refresh(client, stolen["refresh_token"])
    assert replay.status_code == 401
    assert replay.headers["WWW-Authenticate"] == "Bearer"
    assert (await refresh(client, newest["refresh_token"])).status_code == 401
    assert (await refresh(client, other_login["refresh_token"])).status_code == 200


async def test_concurrent_use_of_one_refresh_token_yields_one_pair(
    client: httpx.AsyncClient,
) -> None:
    pair = await login_pair(client, "admin", "admin-password")
    responses = await asyncio.gather(*(refresh(client, pair["refresh_token"]) for _ in range(2)))
    assert sorted(r.status_code for r in responses) == [200, 401]


async def test_an_access_token_is_refused_by_refresh(client: httpx.AsyncClient) -> None:
    pair = await login_pair(client, "admin", "admin-password")
    response = await refresh(client, pair["access_token"])
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_logout_revokes_every_refresh_token_of_the_user(client: httpx.AsyncClient) -> None:
    one = await login_pair(client, "admin", "admin-password")
    two = await login_pair(client, "admin", "admin-password")
    response = await client.post(LOGOUT, headers=bearer(one["access_token"]))
    assert response.status_code == 204
    assert response.content == b""
    for pair in (one, two):
        assert (await refresh(client, pair["refresh_token"])).status_code == 401


async def test_logout_needs_a_bearer(client: httpx.AsyncClient) -> None:
    response = await client.post(LOGOUT)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_sixth_failed_login_is_429_and_locks_only_that_username(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    victim, bystander = unique_username(), unique_username()
    await create_user(session, username=victim)
    await create_user(session, username=bystander)
    for _ in range(5):
        assert (await login(client, victim, "wrong-password")).status_code == 401
    locked = await login(client, victim, "wrong-password")
    assert locked.status_code == 429
    assert 1 <= int(locked.headers["Retry-After"]) <= 15 * 60
    assert locked.json()["error"]["code"] == "too_many_requests"
    assert (await login(client, victim, "password-1")).status_code == 429, "correct one too"
    assert (await login(client, bystander, "password-1")).status_code == 200


async def test_lockout_counts_per_account_whichever_spelling_is_typed(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    name = unique_username()
    await create_user(session, username=name)
    for attempt in range(5):
        spelling = name if attempt % 2 else f"{name}@example.com"
        assert (await login(client, spelling, "wrong-password")).status_code == 401
    assert (await login(client, name, "password-1")).status_code == 429
    assert (await login(client, f"{name}@EXAMPLE.com", "password-1")).status_code == 429


async def test_unknown_usernames_are_locked_out_alike(client: httpx.AsyncClient) -> None:
    nobody = unique_username("nobody")
    statuses = [(await login(client, nobody, "wrong-password")).status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]


async def test_a_successful_login_resets_the_failure_count(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    name = unique_username()
    await create_user(session, username=name)
    for _ in range(4):
        await login(client, name, "wrong-password")
    assert (await login(client, name, "password-1")).status_code == 200
    statuses = [(await login(client, name, "wrong-password")).status_code for _ in range(5)]
    assert statuses == [401] * 5


async def test_no_token_or_password_in_any_log_line(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await login(client, "admin", "not-the-password-xyz")
    pair = await login_pair(client, "admin", "admin-password")
    rotated = (await refresh(client, pair["refresh_token"])).json()
    await refresh(client, pair["refresh_token"])  # a replay logs a warning
    await client.post(LOGOUT, headers=bearer(rotated["access_token"]))
    secrets = [
        "not-the-password-xyz",
        "admin-password",
        pair["access_token"],
        pair["refresh_token"],
        rotated["access_token"],
        rotated["refresh_token"],
    ]
    lines = [record.getMessage() for record in caplog.records]
    assert any("refresh token reuse" in line for line in lines)
    assert not [line for line in lines if any(secret in line for secret in secrets)]
