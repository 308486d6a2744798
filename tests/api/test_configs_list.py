"""Listing task configs: filters, search, paging, order."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.models import TaskConfig, TaskExecution
from backend.services.redis import scheduler as schedule_state
from tests.support.configs import CONFIGS, sleep_config, unique
from tests.support.schedule_state import set_schedule_state


async def create_many(
    client: httpx.AsyncClient, headers: dict[str, str], bodies: list[dict]
) -> list[dict]:
    created = []
    for body in bodies:
        response = await client.post(CONFIGS, json=body, headers=headers)
        assert response.status_code == 201, response.text
        created.append(response.json())
    return created


async def test_paging_is_ordered_by_id_with_total(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    tag = unique("page")
    bodies = [sleep_config(name=f"{tag}-{i}") for i in range(5)]
    created = await create_many(client, superuser_headers, bodies)
    ids = [c["id"] for c in created]

    params = {"search": tag, "limit": 2, "offset": 1}
    page = (await client.get(CONFIGS, params=params, headers=superuser_headers)).json()
    assert (page["total"], page["limit"], page["offset"]) == (5, 2, 1)
    assert [item["id"] for item in page["items"]] == ids[1:3]

    past_end = {"search": tag, "offset": 10}
    empty = (await client.get(CONFIGS, params=past_end, headers=superuser_headers)).json()
    assert (empty["items"], empty["total"], empty["limit"]) == ([], 5, 20)


async def test_the_unfiltered_total_is_the_number_of_configs(
    client: httpx.AsyncClient, superuser_headers: dict[str, str], session: AsyncSession
) -> None:
    """Unfiltered, the total comes from the triggers' counter (task_config_count): it must
    be what counting the rows says, after creates and a delete, on a page and past the end."""
    tag = unique("total")
    created = await create_many(
        client, superuser_headers, [sleep_config(name=f"{tag}-{i}") for i in range(3)]
    )
    deleted = await client.delete(f"{CONFIGS}/{created[0]['id']}", headers=superuser_headers)
    assert deleted.status_code == 204, deleted.text
    rows = await session.scalar(select(func.count()).select_from(TaskConfig))

    page = (await client.get(CONFIGS, params={"limit": 1}, headers=superuser_headers)).json()
    past_end = {"offset": 10**9}
    empty = (await client.get(CONFIGS, params=past_end, headers=superuser_headers)).json()
    assert (page["total"], empty["total"], empty["items"]) == (rows, rows, [])


async def test_filters_by_task_type_and_scheduler_type(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    tag = unique("filter")
    bodies = [
        sleep_config(name=f"{tag}-interval"),
        sleep_config(name=f"{tag}-manual", scheduler_type="manual", schedule_config={}),
        sleep_config(
            name=f"{tag}-purge",
            task_type="maintenance.purge_executions",
            scheduler_type="manual",
            schedule_config={},
            parameters={"older_than_days": 30},
        ),
    ]
    await create_many(client, superuser_headers, bodies)

    async def names(**params: str) -> list[str]:
        query = {"search": tag, **params}
        page = (await client.get(CONFIGS, params=query, headers=superuser_headers)).json()
        return [item["name"] for item in page["items"]]

    assert await names(scheduler_type="manual") == [f"{tag}-manual", f"{tag}-purge"]
    assert await names(task_type="maintenance.purge_executions") == [f"{tag}-purge"]
    assert await names(task_type="demo.sleep", scheduler_type="interval") == [f"{tag}-interval"]


async def test_search_is_case_insensitive_on_name_and_description_and_escapes_wildcards(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    tag = unique("Srch")
    bodies = [
        sleep_config(name=f"{tag}-Nightly"),
        sleep_config(name=f"{tag}-other", description="runs NIGHTLY too"),
        sleep_config(name=f"{tag}-100%_done"),
        sleep_config(name=f"{tag}-1000xdone"),
    ]
    await create_many(client, superuser_headers, bodies)

    async def names(search: str) -> set[str]:
        query = {"search": search}
        page = (await client.get(CONFIGS, params=query, headers=superuser_headers)).json()
        return {item["name"] for item in page["items"]}

    assert await names(f"{tag.lower()}-nightly") == {f"{tag}-Nightly"}
    assert await names("nightly too") == {f"{tag}-other"}
    # `%` and `_` are literal characters, not wildcards.
    assert await names(f"{tag}-100%_") == {f"{tag}-100%_done"}
    assert await names(f"{tag}-1_0") == set()


async def test_filter_by_schedule_status(
    client: httpx.AsyncClient, superuser_headers: dict[str, str], redis: Redis
) -> None:
    tag = unique("status")
    created = await create_many(
        client, superuser_headers, [sleep_config(name=f"{tag}-{i}") for i in range(3)]
    )
    active, paused, inactive = (c["id"] for c in created)
    await set_schedule_state(redis, active, schedule_state.ScheduleState("active"))
    await set_schedule_state(redis, paused, schedule_state.ScheduleState("paused"))

    async def ids(status: str) -> list[int]:
        query = {"search": tag, "schedule_status": status}
        page = (await client.get(CONFIGS, params=query, headers=superuser_headers)).json()
        assert page["total"] == len(page["items"])
        assert {item["schedule_status"] for item in page["items"]} <= {status}
        return [item["id"] for item in page["items"]]

    assert await ids("active") == [active]
    assert await ids("paused") == [paused]
    assert await ids("inactive") == [inactive]
    assert await ids("completed") == []

    # A status change moves the config from one set to the other.
    await set_schedule_state(redis, paused, schedule_state.ScheduleState("active"))
    assert await ids("active") == [active, paused]
    assert await ids("paused") == []


async def test_include_stats_adds_success_rate_and_last_result_per_item(
    client: httpx.AsyncClient, superuser_headers: dict[str, str], session: AsyncSession
) -> None:
    tag = unique("stats")
    ran, idle = await create_many(
        client,
        superuser_headers,
        [sleep_config(name=f"{tag}-ran"), sleep_config(name=f"{tag}-idle")],
    )
    started = datetime.now(UTC) - timedelta(minutes=5)
    session.add_all(
        TaskExecution(
            config_id=ran["id"],
            task_id=unique("run"),
            is_success=ok,
            started_at=started + timedelta(minutes=i),
            completed_at=started + timedelta(minutes=i, seconds=1),
            duration_seconds=1.0,
            trigger="manual",
        )
        for i, ok in enumerate([True, True, False])
    )
    await session.commit()

    plain = (await client.get(CONFIGS, params={"search": tag}, headers=superuser_headers)).json()
    assert [item["stats"] for item in plain["items"]] == [None, None]

    params = {"search": tag, "include_stats": "true"}
    page = (await client.get(CONFIGS, params=params, headers=superuser_headers)).json()
    stats = {item["name"]: item["stats"] for item in page["items"]}
    assert stats[ran["name"]]["total_runs"] == 3
    assert stats[ran["name"]]["success_rate"] == pytest.approx(2 / 3)
    assert stats[ran["name"]]["last_run_success"] is False
    assert stats[idle["name"]]["total_runs"] == 0
    assert stats[idle["name"]]["last_run_success"] is None


async def test_items_carry_the_schedule_in_words(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    body = sleep_config(
        scheduler_type="cron",
        schedule_config={"cron_expression": "0 2 * * *", "timezone": "Europe/Berlin"},
    )
    [created] = await create_many(client, superuser_headers, [body])
    assert created["schedule_description"] == "At 02:00, every day (Europe/Berlin)"
    params = {"search": body["name"]}
    page = (await client.get(CONFIGS, params=params, headers=superuser_headers)).json()
    assert page["items"][0]["schedule_description"] == "At 02:00, every day (Europe/Berlin)"
