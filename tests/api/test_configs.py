"""Task config CRUD through the API, merged with the live state in Redis."""

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import httpx
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.models import TaskConfig, TaskExecution
from backend.services.redis import history
from backend.services.redis import scheduler as schedule_state
from tests.support.auth import bearer_for, create_user
from tests.support.configs import CONFIGS, sleep_config, unique
from tests.support.schedule_state import set_schedule_state

STORED_FIELDS = {
    "id", "name", "description", "task_type", "scheduler_type", "schedule_config",
    "parameters", "max_retries", "timeout_seconds", "priority", "overlap_policy",
    "created_at", "updated_at",
}  # fmt: skip


async def test_create_returns_the_merged_config_and_get_reads_it_back(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    body = sleep_config(description="five-minutely nap", priority=7, overlap_policy="allow")
    created = await client.post(CONFIGS, json=body, headers=superuser_headers)
    assert created.status_code == 201, created.text
    config = created.json()
    assert STORED_FIELDS | {"schedule_status", "next_run_at"} <= set(config)
    assert config["name"] == body["name"]
    assert config["schedule_config"] == {"minutes": 5}
    assert config["parameters"] == {"seconds": 1}
    assert (config["max_retries"], config["timeout_seconds"]) == (0, 300)
    assert (config["priority"], config["overlap_policy"]) == (7, "allow")
    assert config["schedule_status"] == "inactive"
    assert config["next_run_at"] is None

    read = await client.get(f"{CONFIGS}/{config['id']}", headers=superuser_headers)
    assert read.status_code == 200
    assert read.json() == config


async def test_live_state_from_redis_is_merged(
    client: httpx.AsyncClient, superuser_headers: dict[str, str], redis: Redis
) -> None:
    created = (await client.post(CONFIGS, json=sleep_config(), headers=superuser_headers)).json()
    next_run = datetime(2031, 1, 1, 12, 0, tzinfo=UTC)
    state = schedule_state.ScheduleState(status="active", next_run_at=next_run)
    await set_schedule_state(redis, created["id"], state)

    read = (await client.get(f"{CONFIGS}/{created['id']}", headers=superuser_headers)).json()
    assert read["schedule_status"] == "active"
    assert datetime.fromisoformat(read["next_run_at"]) == next_run

    # A paused schedule shows no next run, even if one is still recorded.
    paused = schedule_state.ScheduleState(status="paused", next_run_at=next_run)
    await set_schedule_state(redis, created["id"], paused)
    read = (await client.get(f"{CONFIGS}/{created['id']}", headers=superuser_headers)).json()
    assert (read["schedule_status"], read["next_run_at"]) == ("paused", None)


async def test_include_stats_and_history(
    client: httpx.AsyncClient, superuser_headers: dict[str, str], session: AsyncSession
) -> None:
    created = (await client.post(CONFIGS, json=sleep_config(), headers=superuser_headers)).json()
    started = datetime.now(UTC) - timedelta(minutes=5)
    for index, ok in enumerate([True, True, False]):
        session.add(
            TaskExecution(
                config_id=created["id"],
                task_id=unique("run"),
                is_success=ok,
                started_at=started + timedelta(seconds=index),
                completed_at=started + timedelta(seconds=index + 1),
                duration_seconds=1.0,
                trigger="manual",
            )
        )
    await session.commit()
    await client.patch(
        f"{CONFIGS}/{created['id']}", json={"priority": 1}, headers=superuser_headers
    )

    plain = (await client.get(f"{CONFIGS}/{created['id']}", headers=superuser_headers)).json()
    assert plain["stats"] is None
    assert plain["recent_history"] is None

    url = f"{CONFIGS}/{created['id']}?include_stats=true&include_history=true"
    full = (await client.get(url, headers=superuser_headers)).json()
    assert full["stats"]["total_runs"] == 3
    assert full["stats"]["failures"] == 1
    assert full["stats"]["success_rate"] == 2 / 3
    assert [e["event"] for e in full["recent_history"]] == ["updated", "created"]
    assert full["recent_history"][0]["fields"] == ["priority"]


async def test_recent_history_is_the_latest_ten(
    client: httpx.AsyncClient, superuser_headers: dict[str, str], redis: Redis
) -> None:
    created = (await client.post(CONFIGS, json=sleep_config(), headers=superuser_headers)).json()
    for _ in range(12):
        await history.append(redis, created["id"], "fired")
    url = f"{CONFIGS}/{created['id']}?include_history=true"
    events = (await client.get(url, headers=superuser_headers)).json()["recent_history"]
    assert len(events) == 10
    assert {e["event"] for e in events} == {"fired"}


async def test_patch_is_partial_and_validates_the_merged_config(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    created = (
        await client.post(CONFIGS, json=sleep_config(description="d"), headers=superuser_headers)
    ).json()
    url = f"{CONFIGS}/{created['id']}"

    patched = await client.patch(url, json={"timeout_seconds": 60}, headers=superuser_headers)
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["timeout_seconds"] == 60
    assert body["description"] == "d"  # untouched fields stay
    assert body["parameters"] == {"seconds": 1}
    assert body["updated_at"] >= created["updated_at"]

    cleared = await client.patch(url, json={"description": None}, headers=superuser_headers)
    assert cleared.json()["description"] is None

    # Both parts of the schedule change together: accepted.
    to_cron = {"scheduler_type": "cron", "schedule_config": {"cron_expression": "@daily"}}
    changed = await client.patch(url, json=to_cron, headers=superuser_headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["schedule_config"] == {"cron_expression": "@daily"}


async def test_patch_renames_and_a_taken_name_is_409(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    first = (await client.post(CONFIGS, json=sleep_config(), headers=superuser_headers)).json()
    second = (await client.post(CONFIGS, json=sleep_config(), headers=superuser_headers)).json()
    new_name = unique("renamed")
    renamed = await client.patch(
        f"{CONFIGS}/{first['id']}", json={"name": new_name}, headers=superuser_headers
    )
    assert renamed.json()["name"] == new_name
    taken = await client.patch(
        f"{CONFIGS}/{second['id']}", json={"name": new_name}, headers=superuser_headers
    )
    assert taken.status_code == 409
    assert taken.json()["error"]["code"] == "conflict"


async def test_delete_keeps_execution_records_and_clears_live_state(
    client: httpx.AsyncClient,
    superuser_headers: dict[str, str],
    session: AsyncSession,
    redis: Redis,
) -> None:
    created = (await client.post(CONFIGS, json=sleep_config(), headers=superuser_headers)).json()
    task_id = unique("run")
    now = datetime.now(UTC)
    session.add(
        TaskExecution(
            config_id=created["id"],
            task_id=task_id,
            is_success=True,
            started_at=now,
            completed_at=now,
            duration_seconds=0.0,
            trigger="manual",
        )
    )
    await session.commit()
    await set_schedule_state(redis, created["id"], schedule_state.ScheduleState("paused"))

    deleted = await client.delete(f"{CONFIGS}/{created['id']}", headers=superuser_headers)
    assert deleted.status_code == 204
    assert deleted.content == b""

    gone = await client.get(f"{CONFIGS}/{created['id']}", headers=superuser_headers)
    assert gone.status_code == 404
    assert await session.get(TaskConfig, created["id"]) is None
    record = await session.scalar(select(TaskExecution).where(TaskExecution.task_id == task_id))
    assert record is not None
    assert record.config_id is None  # ON DELETE SET NULL: the run's record stays
    assert created["id"] not in await schedule_state.ids_with_status(redis, "paused")
    assert (await schedule_state.read_state(redis, created["id"])).status == "inactive"
    events, _ = await history.read(redis, created["id"])
    assert events[0]["event"] == "deleted"


async def test_config_writes_are_for_admins_reads_for_viewers(
    client: httpx.AsyncClient, session: AsyncSession, superuser_headers: dict[str, str]
) -> None:
    created = (await client.post(CONFIGS, json=sleep_config(), headers=superuser_headers)).json()
    for role in ("viewer", "operator"):
        user = await create_user(session, username=unique(role), role=role)
        headers = bearer_for(user.id)
        writes = [
            await client.post(CONFIGS, json=sleep_config(), headers=headers),
            await client.patch(f"{CONFIGS}/{created['id']}", json={"priority": 1}, headers=headers),
            await client.delete(f"{CONFIGS}/{created['id']}", headers=headers),
        ]
        assert [r.status_code for r in writes] == [403, 403, 403]
        assert all("admin" in r.json()["error"]["message"] for r in writes)
        reads = [
            await client.get("/api/v1/tasks/types", headers=headers),
            await client.get(CONFIGS, headers=headers),
            await client.get(f"{CONFIGS}/{created['id']}", headers=headers),
        ]
        assert [r.status_code for r in reads] == [200, 200, 200]
    unchanged = await client.get(f"{CONFIGS}/{created['id']}", headers=superuser_headers)
    assert unchanged.json()["priority"] == created["priority"]
    assert (await client.get(CONFIGS)).status_code == 401


async def test_patch_of_an_active_config_rebuilds_its_entries(
    client: httpx.AsyncClient, superuser_headers: dict[str, str], redis: Redis
) -> None:
    body = sleep_config(schedule_config={"seconds": 60})
    created = (
        await client.post(f"{CONFIGS}?auto_start=true", json=body, headers=superuser_headers)
    ).json()
    old_ids = [
        entry_id for entry_id, _ in await schedule_state.queued_entries(redis, created["id"])
    ]
    assert len(old_ids) == 3

    patched = await client.patch(
        f"{CONFIGS}/{created['id']}",
        json={"schedule_config": {"seconds": 30}},
        headers=superuser_headers,
    )
    assert patched.status_code == 200, patched.text
    entries = await schedule_state.queued_entries(redis, created["id"])
    fires = [fire for _, fire in entries]
    assert [b - a for a, b in pairwise(fires)] == [timedelta(seconds=30)] * 2
    assert datetime.fromisoformat(patched.json()["next_run_at"]) == fires[0]
    assert patched.json()["schedule_status"] == "active"
    assert not {entry_id for entry_id, _ in entries} & set(old_ids)
    for entry_id in old_ids:
        assert not await redis.exists(schedule_state.data_key(entry_id))
        assert await redis.zscore(schedule_state.due_key(), entry_id) is None
    events, _ = await history.read(redis, created["id"])
    assert [e["event"] for e in events[:2]] == ["reloaded", "updated"]


async def test_delete_of_a_started_config_removes_its_entries_and_state(
    client: httpx.AsyncClient, superuser_headers: dict[str, str], redis: Redis
) -> None:
    created = (
        await client.post(
            f"{CONFIGS}?auto_start=true", json=sleep_config(), headers=superuser_headers
        )
    ).json()
    config_id = created["id"]
    entry_ids = [entry_id for entry_id, _ in await schedule_state.queued_entries(redis, config_id)]
    assert len(entry_ids) == 3

    deleted = await client.delete(f"{CONFIGS}/{config_id}", headers=superuser_headers)
    assert deleted.status_code == 204
    due = await redis.zrange(schedule_state.due_key(), 0, -1)
    assert not set(entry_ids) & set(due)
    assert not [d for d in due if d.startswith(f"{config_id}:")]
    for entry_id in entry_ids:
        assert not await redis.exists(schedule_state.data_key(entry_id))
    assert not await redis.exists(schedule_state.config_entries_key(config_id))
    assert not await redis.exists(schedule_state.state_key(config_id))
    assert config_id not in await schedule_state.ids_with_status(redis, "inactive")
