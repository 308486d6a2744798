"""Config routes: 409 for duplicate names (also under a race) and manual auto_start, 404 for
unknown ids, 413 for oversized bodies, auto_start."""

import asyncio

import httpx
import pytest

from tests.support.configs import CONFIGS, field_locs, sleep_config, unique


async def test_duplicate_name_is_409(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    body = sleep_config()
    assert (await client.post(CONFIGS, json=body, headers=superuser_headers)).status_code == 201
    again = await client.post(
        CONFIGS, json=sleep_config(name=body["name"]), headers=superuser_headers
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"
    assert body["name"] in again.json()["error"]["message"]


async def test_concurrent_creates_with_one_name_give_one_201_and_one_409(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    name = unique("race")
    for _ in range(3):  # several rounds, so the interleaving varies
        name = unique("race")
        responses = await asyncio.gather(
            *(
                client.post(CONFIGS, json=sleep_config(name=name), headers=superuser_headers)
                for _ in range(2)
            )
        )
        assert sorted(r.status_code for r in responses) == [201, 409]
    listed = await client.get(CONFIGS, params={"search": name}, headers=superuser_headers)
    assert listed.json()["total"] == 1


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_unknown_id_is_404(
    client: httpx.AsyncClient, superuser_headers: dict[str, str], method: str
) -> None:
    body = {"priority": 1} if method == "PATCH" else None
    response = await client.request(
        method, f"{CONFIGS}/987654321", json=body, headers=superuser_headers
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_non_integer_id_is_422(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    response = await client.get(f"{CONFIGS}/abc", headers=superuser_headers)
    assert response.status_code == 422
    assert ["path", "config_id"] in field_locs(response)


async def test_body_over_one_mebibyte_is_413(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    body = sleep_config(description="x" * (1024 * 1024))
    response = await client.post(CONFIGS, json=body, headers=superuser_headers)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


async def test_auto_start_schedules_at_once(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    body = sleep_config()
    response = await client.post(
        CONFIGS, params={"auto_start": "true"}, json=body, headers=superuser_headers
    )
    assert response.status_code == 201
    assert response.json()["schedule_status"] == "active"
    assert response.json()["next_run_at"] is not None


async def test_auto_start_of_a_manual_config_is_409(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    body = sleep_config(scheduler_type="manual", schedule_config={})
    response = await client.post(
        CONFIGS, params={"auto_start": "true"}, json=body, headers=superuser_headers
    )
    assert response.status_code == 409
    listed = await client.get(CONFIGS, params={"search": body["name"]}, headers=superuser_headers)
    assert listed.json()["total"] == 0
