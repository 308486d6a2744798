"""The audit trail: every change leaves one row naming who, what and when; nothing else does."""

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.support.auth import bearer, bearer_for, create_user, login, unique_username
from tests.support.configs import sleep_config

AUDIT = "/api/v1/audit"
CONFIGS = "/api/v1/tasks/configs"


async def trail(
    client: httpx.AsyncClient, headers: dict[str, str], **filters: Any
) -> list[dict[str, Any]]:
    response = await client.get(AUDIT, params={"limit": 100, **filters}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_a_config_s_life_is_in_its_trail(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    headers = superuser_headers
    body = sleep_config(scheduler_type="interval", schedule_config={"minutes": 5})
    created = (await client.post(CONFIGS, json=body, headers=headers)).json()
    url = f"{CONFIGS}/{created['id']}"
    await client.patch(url, json={"priority": 1, "description": "nightly"}, headers=headers)
    await client.post(f"{url}/actions/start", headers=headers)
    await client.post(f"{url}/actions/pause", headers=headers)
    await client.post(f"{url}/run", headers=headers)
    assert (await client.delete(url, headers=headers)).status_code == 204

    events = (await client.get(f"{url}/audit", params={"limit": 100}, headers=headers)).json()
    actions = [e["action"] for e in reversed(events["items"])]
    assert actions == [
        "config.create", "config.update", "schedule.start", "schedule.pause", "run.now",
        "config.delete",
    ]  # fmt: skip
    by_action = {e["action"]: e for e in events["items"]}
    assert by_action["config.create"]["changes"]["name"] == body["name"]
    assert by_action["config.update"]["changes"] == {
        "priority": [5, 1],
        "description": [None, "nightly"],
    }
    assert by_action["schedule.pause"]["changes"]["schedule_status"] == "paused"
    assert by_action["run.now"]["changes"]["task_id"]
    assert by_action["config.delete"]["changes"]["priority"] == 1  # the last state
    for event in events["items"]:
        assert event["actor"] == "admin"
        assert (event["target_type"], event["target_id"]) == ("config", created["id"])
        assert event["target_name"] == body["name"]
        assert event["request_id"]


async def test_a_user_change_never_shows_the_password(
    client: httpx.AsyncClient, session: AsyncSession, superuser_headers: dict[str, str]
) -> None:
    name = unique_username()
    created = await client.post(
        "/api/v1/users",
        json={"email": f"{name}@example.com", "username": name, "password": "first-pass"},
        headers=superuser_headers,
    )
    user_id = created.json()["id"]
    await client.patch(
        f"/api/v1/users/{user_id}",
        json={"password": "second-pass", "role": "operator"},
        headers=superuser_headers,
    )
    rows = await trail(client, superuser_headers, target_type="user", target_id=user_id)
    assert [r["action"] for r in rows] == ["user.update", "user.create"]
    assert rows[0]["changes"] == {"password": "changed", "role": ["viewer", "operator"]}
    assert "password" not in rows[1]["changes"]
    assert "first-pass" not in str(rows)
    assert "second-pass" not in str(rows)


async def test_an_api_token_is_named_as_the_actor(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session, username=unique_username("ops"), role="operator")
    minted = await client.post(
        "/api/v1/tokens", json={"name": "pipeline"}, headers=bearer_for(user.id)
    )
    token = minted.json()
    response = await client.post(
        "/api/v1/tasks/run", json={"config_ids": [2147483647]}, headers=bearer(token["token"])
    )
    assert response.json()["results"][0]["error"]["status"] == 404  # nothing sent: no row
    rows = await trail(client, bearer_for(user.id), actor=user.username)
    assert [(r["action"], r["actor_token_id"]) for r in rows] == [("token.create", None)]
    assert rows[0]["changes"]["name"] == "pipeline"
    assert "token" not in rows[0]["changes"]


async def test_a_refused_or_rolled_back_change_leaves_no_row(
    client: httpx.AsyncClient, session: AsyncSession, superuser_headers: dict[str, str]
) -> None:
    first = (await client.post(CONFIGS, json=sleep_config(), headers=superuser_headers)).json()
    second = (await client.post(CONFIGS, json=sleep_config(), headers=superuser_headers)).json()
    taken = await client.patch(
        f"{CONFIGS}/{second['id']}", json={"name": first["name"]}, headers=superuser_headers
    )
    assert taken.status_code == 409
    invalid = await client.patch(
        f"{CONFIGS}/{second['id']}", json={"priority": 99}, headers=superuser_headers
    )
    assert invalid.status_code == 422
    manual = await client.post(
        f"{CONFIGS}/{second['id']}/actions/resume", headers=superuser_headers
    )
    assert manual.status_code == 409
    rows = await trail(client, superuser_headers, target_type="config", target_id=second["id"])
    assert [r["action"] for r in rows] == ["config.create"]


async def test_a_lockout_is_audited(client: httpx.AsyncClient, session: AsyncSession) -> None:
    victim = await create_user(session, username=unique_username("victim"))
    for _ in range(5):
        await login(client, victim.username, "wrong-password")
    admin = await create_user(session, username=unique_username(), role="admin")
    rows = await trail(client, bearer_for(admin.id), action="auth.lockout", target_id=victim.id)
    assert len(rows) == 1
    assert rows[0]["actor"] is None
    assert rows[0]["target_name"] == victim.username
    assert rows[0]["changes"]["failures"] == 5


async def test_audit_filters(client: httpx.AsyncClient, superuser_headers: dict[str, str]) -> None:
    created = (await client.post(CONFIGS, json=sleep_config(), headers=superuser_headers)).json()
    mine = {"target_type": "config", "target_id": created["id"]}
    rows = await trail(client, superuser_headers, action="config.create", **mine)
    assert [r["target_name"] for r in rows] == [created["name"]]
    at = rows[0]["at"]
    assert await trail(client, superuser_headers, since=at, **mine)
    assert not await trail(client, superuser_headers, until=at, **mine)
    assert not await trail(client, superuser_headers, actor="nobody", **mine)
    assert not await trail(client, superuser_headers, action="config.delete", **mine)


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"since": "yesterday"}, ["query", "since"]),
        ({"until": "2026-13-01"}, ["query", "until"]),
        ({"limit": 101}, ["query", "limit"]),
        ({"offset": -1}, ["query", "offset"]),
        ({"target_id": 0}, ["query", "target_id"]),
    ],
)
async def test_bad_audit_queries_are_422(
    client: httpx.AsyncClient,
    superuser_headers: dict[str, str],
    params: dict[str, Any],
    loc: list[str],
) -> None:
    for url in (AUDIT, f"{CONFIGS}/1/audit"):
        if "target_id" in params and url != AUDIT:
            continue
        response = await client.get(url, params=params, headers=superuser_headers)
        assert response.status_code == 422, response.text
        assert [f["loc"] for f in response.json()["error"]["fields"]] == [loc]


async def test_a_number_is_no_time(client: httpx.AsyncClient, superuser_headers: dict) -> None:
    """pydantic alone would read `0.5` as half a second past 1970."""
    response = await client.get(AUDIT, params={"until": "0.5"}, headers=superuser_headers)
    assert response.status_code == 422
