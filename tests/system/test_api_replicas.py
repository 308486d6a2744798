"""Two API processes on one database, Redis and broker, as behind a load balancer: a login
on one is refreshed on the other, a replayed refresh token is caught on either, schedule
actions on one config sent to both at once are serialized, and a user change reaches both
processes' view of the user at once."""

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.support import processes
from tests.support.api_process import ApiServer, start_api
from tests.support.auth import bearer, bearer_for, create_user, login_pair, unique_username
from tests.support.configs import CONFIGS, sleep_config

pytestmark = pytest.mark.e2e

Clients = tuple[httpx.AsyncClient, httpx.AsyncClient]


@pytest.fixture(scope="module")
async def replicas() -> AsyncIterator[tuple[ApiServer, ApiServer]]:
    first, second = await asyncio.gather(start_api(), start_api())
    yield first, second
    for server in (first, second):
        processes.stop(server.process)


@pytest.fixture
async def clients(replicas: tuple[ApiServer, ApiServer]) -> AsyncIterator[Clients]:
    first, second = replicas
    async with (
        httpx.AsyncClient(base_url=first.base_url, timeout=30) as a,
        httpx.AsyncClient(base_url=second.base_url, timeout=30) as b,
    ):
        yield a, b


async def test_a_login_on_one_replica_refreshes_on_the_other_and_reuse_is_caught(
    clients: Clients, session: AsyncSession
) -> None:
    a, b = clients
    user = await create_user(session, username=unique_username("replica"))
    pair = await login_pair(a, user.username, "password-1")
    refreshed = await b.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    newer = refreshed.json()
    assert (await a.get("/api/v1/users/me", headers=bearer(newer["access_token"]))).is_success

    # The used token replayed on the first replica: refused, and its whole login revoked,
    # so the pair the second replica handed out is dead too.
    replay = await a.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert replay.status_code == 401
    after = await b.post("/api/v1/auth/refresh", json={"refresh_token": newer["refresh_token"]})
    assert after.status_code == 401
    assert after.json()["error"]["code"] == "unauthorized"


async def test_the_same_action_sent_to_both_replicas_at_once_applies_once(
    clients: Clients, superuser_headers: dict[str, str]
) -> None:
    a, b = clients
    created = await a.post(CONFIGS, json=sleep_config(), headers=superuser_headers)
    assert created.status_code == 201, created.text
    config = f"{CONFIGS}/{created.json()['id']}"
    for action, status in [
        ("start", "active"), ("pause", "paused"), ("resume", "active"), ("stop", "inactive"),
    ] * 2:  # fmt: skip
        url = f"{config}/actions/{action}"
        answers = await asyncio.gather(
            a.post(url, headers=superuser_headers), b.post(url, headers=superuser_headers)
        )
        codes = sorted(answer.status_code for answer in answers)
        assert codes == [200, 409], f"{action}: {[r.text for r in answers]}"
        for read_from in (a, b):
            read = await read_from.get(config, headers=superuser_headers)
            assert read.json()["schedule_status"] == status

    # Exactly one history event per applied action: the refused twin left none.
    events = (await b.get(f"{config}/history", headers=superuser_headers)).json()["items"]
    kinds = [event["event"] for event in events if event["event"] != "created"]
    assert sorted(kinds) == sorted(["started", "paused", "resumed", "stopped"] * 2)


async def test_concurrent_updates_on_two_replicas_lose_neither(
    clients: Clients, superuser_headers: dict[str, str]
) -> None:
    a, b = clients
    created = await a.post(CONFIGS, json=sleep_config(), headers=superuser_headers)
    config = f"{CONFIGS}/{created.json()['id']}"
    assert (await a.post(f"{config}/actions/start", headers=superuser_headers)).is_success
    for round_ in range(5):
        answers = await asyncio.gather(
            a.patch(config, json={"priority": round_}, headers=superuser_headers),
            b.patch(config, json={"description": f"round {round_}"}, headers=superuser_headers),
        )
        assert all(answer.status_code == 200 for answer in answers), [r.text for r in answers]
        read = (await b.get(config, headers=superuser_headers)).json()
        assert (read["priority"], read["description"]) == (round_, f"round {round_}")
        assert read["schedule_status"] == "active"


async def test_a_user_change_on_one_replica_is_seen_by_the_other_at_once(
    clients: Clients, session: AsyncSession, superuser_headers: dict[str, str]
) -> None:
    a, b = clients
    user = await create_user(session, username=unique_username("cached"))
    headers = bearer_for(user.id)
    for replica in (a, b):  # both have read (and cached) the user
        assert (await replica.get("/api/v1/users/me", headers=headers)).json()["role"] == "viewer"

    changed = await a.patch(
        f"/api/v1/users/{user.id}", json={"role": "operator"}, headers=superuser_headers
    )
    assert changed.status_code == 200, changed.text
    assert (await b.get("/api/v1/users/me", headers=headers)).json()["role"] == "operator"

    deactivated = await b.patch(
        f"/api/v1/users/{user.id}", json={"is_active": False}, headers=superuser_headers
    )
    assert deactivated.status_code == 200, deactivated.text
    for replica in (a, b):
        assert (await replica.get("/api/v1/users/me", headers=headers)).status_code == 401
