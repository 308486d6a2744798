"""The action state machine over the API, with real Redis (no scheduler process needed)."""

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from backend.services.redis import scheduler as schedule_state
from backend.triggers.specs import CronSpec
from tests.support.auth import bearer_for, create_user
from tests.support.factories import create_config
from tests.support.schedule_state import set_schedule_state

pytestmark = pytest.mark.usefixtures("superuser_headers")


async def act(client: httpx.AsyncClient, headers: dict, config_id: int, action: str):
    return await client.post(f"/api/v1/tasks/configs/{config_id}/actions/{action}", headers=headers)


async def events(client: httpx.AsyncClient, headers: dict, config_id: int) -> list[str]:
    response = await client.get(f"/api/v1/tasks/configs/{config_id}/history", headers=headers)
    assert response.status_code == 200
    return [e["event"] for e in response.json()["items"]]


async def test_every_transition_and_its_history(
    client: httpx.AsyncClient, superuser_headers: dict, session: AsyncSession
) -> None:
    config = await create_config(session, scheduler_type="interval", schedule_config={"minutes": 5})
    expected = [
        ("start", "active", "started"),
        ("pause", "paused", "paused"),
        ("reload", "paused", "reloaded"),
        ("resume", "active", "resumed"),
        ("reload", "active", "reloaded"),
        ("stop", "inactive", "stopped"),
        ("start", "active", "started"),
        ("pause", "paused", "paused"),
        ("stop", "inactive", "stopped"),
    ]
    for action, status, _ in expected:
        response = await act(client, superuser_headers, config.id, action)
        assert response.status_code == 200, (action, response.text)
        assert response.json()["schedule_status"] == status
        assert (response.json()["next_run_at"] is not None) == (status == "active")
    assert await events(client, superuser_headers, config.id) == [e for *_, e in reversed(expected)]


@pytest.mark.parametrize(
    ("setup", "action", "status"),
    [
        ([], "pause", "inactive"),
        ([], "resume", "inactive"),
        ([], "stop", "inactive"),
        ([], "reload", "inactive"),
        (["start"], "start", "active"),
        (["start"], "resume", "active"),
        (["start", "pause"], "pause", "paused"),
        (["start", "pause"], "start", "paused"),
    ],
)
async def test_actions_that_do_not_fit_are_409_naming_the_status(
    client: httpx.AsyncClient,
    superuser_headers: dict,
    session: AsyncSession,
    setup: list[str],
    action: str,
    status: str,
) -> None:
    config = await create_config(
        session, scheduler_type="interval", schedule_config={"seconds": 60}
    )
    for step in setup:
        assert (await act(client, superuser_headers, config.id, step)).status_code == 200
    response = await act(client, superuser_headers, config.id, action)
    assert response.status_code == 409
    assert status in response.json()["error"]["message"]


async def test_start_manual_is_409(
    client: httpx.AsyncClient, superuser_headers: dict, session: AsyncSession
) -> None:
    config = await create_config(session, scheduler_type="manual", schedule_config={})
    response = await act(client, superuser_headers, config.id, "start")
    assert response.status_code == 409
    assert "manual" in response.json()["error"]["message"]


async def test_start_date_in_the_past_is_422(
    client: httpx.AsyncClient, superuser_headers: dict, session: AsyncSession, redis: Redis
) -> None:
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    config = await create_config(session, scheduler_type="date", schedule_config={"run_date": past})
    response = await act(client, superuser_headers, config.id, "start")
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["loc"][-1] == "run_date"
    assert (await schedule_state.read_state(redis, config.id)).status == "inactive"


async def test_unknown_action_is_422_and_unknown_config_404(
    client: httpx.AsyncClient, superuser_headers: dict, session: AsyncSession
) -> None:
    config = await create_config(
        session, scheduler_type="interval", schedule_config={"seconds": 60}
    )
    assert (await act(client, superuser_headers, config.id, "explode")).status_code == 422
    assert (await act(client, superuser_headers, 987654321, "start")).status_code == 404
    history = await client.get("/api/v1/tasks/configs/987654321/history", headers=superuser_headers)
    assert history.status_code == 404


async def test_schedule_actions_are_for_operators(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    config = await create_config(
        session, scheduler_type="interval", schedule_config={"seconds": 60}
    )
    viewer = await create_user(session, username=f"viewer-{config.id}")
    response = await act(client, bearer_for(viewer.id), config.id, "start")
    assert response.status_code == 403
    assert "operator" in response.json()["error"]["message"]
    operator = await create_user(session, username=f"operator-{config.id}", role="operator")
    assert (await act(client, bearer_for(operator.id), config.id, "start")).status_code == 200
    assert (await act(client, bearer_for(operator.id), config.id, "stop")).status_code == 200


async def test_next_run_at_is_the_true_next_cron_fire(
    client: httpx.AsyncClient, superuser_headers: dict, session: AsyncSession
) -> None:
    schedule = {"cron_expression": "30 2 * * *", "timezone": "Europe/Berlin"}
    config = await create_config(session, scheduler_type="cron", schedule_config=schedule)
    before = datetime.now(UTC)
    response = await act(client, superuser_headers, config.id, "start")
    next_run_at = datetime.fromisoformat(response.json()["next_run_at"])
    assert next_run_at == CronSpec(**schedule).next_fire_after(before)


async def test_start_queues_the_next_three_interval_fires_on_the_start_grid(
    client: httpx.AsyncClient, superuser_headers: dict, session: AsyncSession, redis: Redis
) -> None:
    config = await create_config(session, scheduler_type="interval", schedule_config={"seconds": 7})
    response = await act(client, superuser_headers, config.id, "start")
    next_run_at = datetime.fromisoformat(response.json()["next_run_at"])
    fires = [fire for _, fire in await schedule_state.queued_entries(redis, config.id)]
    assert fires[0] == next_run_at
    assert [b - a for a, b in pairwise(fires)] == [timedelta(seconds=7)] * 2
    state = await schedule_state.read_state(redis, config.id)
    assert state.anchor is not None
    assert fires[0] - state.anchor == timedelta(seconds=7)


async def test_stop_and_pause_remove_every_queued_entry(
    client: httpx.AsyncClient, superuser_headers: dict, session: AsyncSession, redis: Redis
) -> None:
    config = await create_config(session, scheduler_type="interval", schedule_config={"seconds": 5})
    await act(client, superuser_headers, config.id, "start")
    assert len(await schedule_state.queued_entries(redis, config.id)) == 3
    await act(client, superuser_headers, config.id, "pause")
    assert await schedule_state.queued_entries(redis, config.id) == []
    await act(client, superuser_headers, config.id, "resume")
    assert len(await schedule_state.queued_entries(redis, config.id)) == 3
    await act(client, superuser_headers, config.id, "stop")
    assert await schedule_state.queued_entries(redis, config.id) == []
    due = await redis.zrange(schedule_state.due_key(), 0, -1)
    assert not [d for d in due if d.startswith(f"{config.id}:")]


async def test_concurrent_actions_are_serialized(
    client: httpx.AsyncClient, superuser_headers: dict, session: AsyncSession, redis: Redis
) -> None:
    import asyncio

    config = await create_config(session, scheduler_type="interval", schedule_config={"seconds": 5})
    responses = await asyncio.gather(
        *[act(client, superuser_headers, config.id, "start") for _ in range(5)]
    )
    assert sorted(r.status_code for r in responses) == [200, 409, 409, 409, 409]
    assert len(await schedule_state.queued_entries(redis, config.id)) == 3


async def completed_config(session: AsyncSession, redis: Redis):
    """An interval config whose schedule reads `completed` (as after a date fired)."""
    config = await create_config(
        session, scheduler_type="interval", schedule_config={"seconds": 60}
    )
    await set_schedule_state(
        redis, config.id, schedule_state.ScheduleState("completed", generation=4)
    )
    return config


async def test_start_from_completed_rearms_the_schedule(
    client: httpx.AsyncClient, superuser_headers: dict, session: AsyncSession, redis: Redis
) -> None:
    config = await completed_config(session, redis)
    response = await act(client, superuser_headers, config.id, "start")
    assert response.status_code == 200, response.text
    assert response.json()["schedule_status"] == "active"
    assert response.json()["next_run_at"] is not None
    assert len(await schedule_state.queued_entries(redis, config.id)) == 3
    assert (await schedule_state.read_state(redis, config.id)).generation == 5


@pytest.mark.parametrize("action", ["pause", "resume", "stop", "reload"])
async def test_only_start_leaves_completed(
    client: httpx.AsyncClient,
    superuser_headers: dict,
    session: AsyncSession,
    redis: Redis,
    action: str,
) -> None:
    config = await completed_config(session, redis)
    response = await act(client, superuser_headers, config.id, action)
    assert response.status_code == 409
    assert "completed" in response.json()["error"]["message"]
    assert (await schedule_state.read_state(redis, config.id)).status == "completed"
