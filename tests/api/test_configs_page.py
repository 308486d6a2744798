"""The rendered list page (backend/services/config_pages.py) is the JSON of
Page[TaskConfigRead], and a config's change shows on the next page (its row version is new)."""

import httpx
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from backend.models import TaskConfig
from backend.schemas.common import Page
from backend.schemas.configs import TaskConfigRead
from backend.services import configs
from backend.services.redis import scheduler as schedule_state
from tests.support.configs import CONFIGS, sleep_config, unique
from tests.support.schedule_state import set_schedule_state


async def listed(client: httpx.AsyncClient, headers: dict[str, str], tag: str) -> dict:
    response = await client.get(CONFIGS, params={"search": tag, "limit": 100}, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    return response.json()


async def test_the_page_is_what_page_of_task_config_read_would_say(
    client: httpx.AsyncClient, superuser_headers: dict[str, str], session: AsyncSession,
    redis: Redis,
) -> None:  # fmt: skip
    tag = unique("page")
    ids = []
    for i in range(3):
        body = sleep_config(name=f"{tag}-{i}", description=f"number {i}", alerts=None)
        created = await client.post(CONFIGS, json=body, headers=superuser_headers)
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    await set_schedule_state(redis, ids[1], schedule_state.ScheduleState("paused", note="why"))
    limited = sleep_config(name=f"{tag}-3", schedule_config={"minutes": 5, "max_runs": 5})
    created = await client.post(CONFIGS, json=limited, headers=superuser_headers)
    assert created.status_code == 201, created.text
    ids.append(created.json()["id"])
    await set_schedule_state(redis, ids[3], schedule_state.ScheduleState("active", fired=2))

    page = await listed(client, superuser_headers, tag)

    expected = []
    for config_id in ids:
        config = await session.get(TaskConfig, config_id)
        assert config is not None
        expected.append(await configs.present(session, redis, config=config))
    wanted = Page[TaskConfigRead](items=expected, total=4, limit=100, offset=0)
    assert page == wanted.model_dump(mode="json")
    assert page["items"][1]["schedule_status"] == "paused"
    assert page["items"][1]["schedule_note"] == "why"
    assert page["items"][3]["remaining_runs"] == 3
    assert page["items"][0]["remaining_runs"] is None


async def test_a_changed_config_shows_changed_on_the_next_page(
    client: httpx.AsyncClient, superuser_headers: dict[str, str], session: AsyncSession
) -> None:
    tag = unique("page-change")
    created = await client.post(CONFIGS, json=sleep_config(name=tag), headers=superuser_headers)
    config_id = created.json()["id"]
    assert (await listed(client, superuser_headers, tag))["items"][0]["priority"] == 5

    patched = await client.patch(
        f"{CONFIGS}/{config_id}", json={"priority": 8}, headers=superuser_headers
    )
    assert patched.status_code == 200
    assert (await listed(client, superuser_headers, tag))["items"][0]["priority"] == 8

    # Even a write that leaves updated_at as it was (SQL by hand) is a new row version.
    await session.execute(text("UPDATE task_configs SET priority = 2 WHERE id = :id"),
                          {"id": config_id})  # fmt: skip
    await session.commit()
    assert (await listed(client, superuser_headers, tag))["items"][0]["priority"] == 2


async def test_stats_on_the_page_are_each_configs_stats(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    tag = unique("page-stats")
    await client.post(CONFIGS, json=sleep_config(name=tag), headers=superuser_headers)
    response = await client.get(
        CONFIGS, params={"search": tag, "include_stats": "true"}, headers=superuser_headers
    )
    [item] = response.json()["items"]
    assert item["stats"]["total_runs"] == 0
    assert item["recent_history"] is None
