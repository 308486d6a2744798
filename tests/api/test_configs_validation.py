"""Bad input to the config routes: a 4xx with field errors pointing at the field, never a 500."""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support.configs import CONFIGS, field_locs, sleep_config

FUTURE = (datetime.now(UTC) + timedelta(days=30)).isoformat()
PAST = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"task_type": "no.such.type"}, ["body", "task_type"]),
        ({"parameters": {"seconds": -1}}, ["body", "parameters", "seconds"]),
        ({"parameters": {"seconds": 1, "colour": "red"}}, ["body", "parameters", "colour"]),
        (
            {"scheduler_type": "cron", "schedule_config": {"cron_expression": "61 * * * *"}},
            ["body", "schedule_config", "cron_expression"],
        ),
        (
            {"scheduler_type": "cron", "schedule_config": {"cron_expression": "* * *"}},
            ["body", "schedule_config", "cron_expression"],
        ),
        (
            {"scheduler_type": "cron", "schedule_config": {"minute": "99"}},
            ["body", "schedule_config", "minute"],
        ),
        (
            {"scheduler_type": "cron", "schedule_config": {"minute": "5", "day_of_week": "8"}},
            ["body", "schedule_config", "day_of_week"],
        ),
        (
            {
                "scheduler_type": "cron",
                "schedule_config": {"cron_expression": "@daily", "timezone": "Mars/Olympus"},
            },
            ["body", "schedule_config", "timezone"],
        ),
        ({"schedule_config": {"seconds": 0}}, ["body", "schedule_config"]),
        (
            {"scheduler_type": "date", "schedule_config": {"run_date": PAST}},
            ["body", "schedule_config", "run_date"],
        ),
        (
            {"scheduler_type": "date", "schedule_config": {"run_date": "next tuesday"}},
            ["body", "schedule_config", "run_date"],
        ),
        ({"scheduler_type": "weekly"}, ["body", "scheduler_type"]),
        ({"schedule_config": {"minutes": 5, "color": "red"}}, ["body", "schedule_config", "color"]),
        (
            {"scheduler_type": "manual", "schedule_config": {"x": 1}},
            ["body", "schedule_config", "x"],
        ),
        ({"timeout_seconds": 0}, ["body", "timeout_seconds"]),
        ({"timeout_seconds": 86401}, ["body", "timeout_seconds"]),
        ({"max_retries": -1}, ["body", "max_retries"]),
        ({"max_retries": 11}, ["body", "max_retries"]),
        ({"priority": 10}, ["body", "priority"]),
        ({"overlap_policy": "queue"}, ["body", "overlap_policy"]),
        ({"name": ""}, ["body", "name"]),
        ({"name": "x" * 201}, ["body", "name"]),
        ({"surprise": True}, ["body", "surprise"]),
        ({"name": "nul\x00name"}, ["body", "name"]),
        ({"description": "nul\x00"}, ["body", "description"]),
        ({"parameters": {"seconds": 1, "message": "a\x00b"}}, ["body", "parameters"]),
        ({"parameters": {"nested": [{"k\x00": 1}]}}, ["body", "parameters"]),
        ({"schedule_config": {"minutes": 5, "tz\x00": "x"}}, ["body", "schedule_config"]),
        ({"task_type": "demo.sleep\x00"}, ["body", "task_type"]),
    ],
)
async def test_create_rejects(
    client: httpx.AsyncClient,
    superuser_headers: dict[str, str],
    overrides: dict[str, Any],
    loc: list[Any],
) -> None:
    body = sleep_config(**overrides)
    response = await client.post(CONFIGS, json=body, headers=superuser_headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"
    assert loc in field_locs(response)
    # Nothing was stored.
    listed = await client.get(CONFIGS, params={"search": body["name"]}, headers=superuser_headers)
    if 0 < len(body["name"]) <= 200 and "\x00" not in body["name"]:
        assert listed.json()["total"] == 0


async def test_all_field_errors_are_reported_at_once(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    body = sleep_config(parameters={"seconds": -1}, schedule_config={"seconds": 0})
    response = await client.post(CONFIGS, json=body, headers=superuser_headers)
    assert response.status_code == 422
    assert field_locs(response) == [["body", "parameters", "seconds"], ["body", "schedule_config"]]


async def test_nan_in_parameters_is_422(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    content = json.dumps(sleep_config(parameters={"extra": float("nan")}))
    assert "NaN" in content
    response = await client.post(
        CONFIGS,
        content=content,
        headers=superuser_headers | {"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert ["body", "parameters"] in field_locs(response)


@pytest.mark.parametrize(
    ("scheduler_type", "schedule_config"),
    [
        ("cron", {"cron_expression": "*/5 * * * *", "timezone": "Europe/Berlin"}),
        ("cron", {"cron_expression": "@weekly"}),
        ("cron", {"minute": "30", "hour": "2"}),
        ("interval", {"days": 1, "seconds": 30}),
        ("date", {"run_date": FUTURE}),
        ("date", {"run_date": "2099-01-01T02:00:00"}),
        ("manual", {}),
    ],
)
async def test_create_accepts_each_schedule_format(
    client: httpx.AsyncClient,
    superuser_headers: dict[str, str],
    scheduler_type: str,
    schedule_config: dict[str, Any],
) -> None:
    body = sleep_config(scheduler_type=scheduler_type, schedule_config=schedule_config)
    response = await client.post(CONFIGS, json=body, headers=superuser_headers)
    assert response.status_code == 201, response.text
    assert response.json()["scheduler_type"] == scheduler_type


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"limit": 101}, ["query", "limit"]),
        ({"limit": 0}, ["query", "limit"]),
        ({"offset": -1}, ["query", "offset"]),
        ({"scheduler_type": "weekly"}, ["query", "scheduler_type"]),
        ({"schedule_status": "running"}, ["query", "schedule_status"]),
        ({"search": "a\x00b"}, ["query", "search"]),
        ({"task_type": "demo\x00"}, ["query", "task_type"]),
    ],
)
async def test_list_rejects(
    client: httpx.AsyncClient,
    superuser_headers: dict[str, str],
    params: dict[str, Any],
    loc: list[Any],
) -> None:
    response = await client.get(CONFIGS, params=params, headers=superuser_headers)
    assert response.status_code == 422, response.text
    assert loc in field_locs(response)


async def create(client: httpx.AsyncClient, headers: dict[str, str], **overrides: Any) -> dict:
    response = await client.post(CONFIGS, json=sleep_config(**overrides), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        ({"scheduler_type": "cron"}, ["body", "schedule_config", "minutes"]),
        ({"scheduler_type": "manual"}, ["body", "schedule_config", "minutes"]),
        (
            {"schedule_config": {"cron_expression": "@daily"}},
            ["body", "schedule_config", "cron_expression"],
        ),
        ({"task_type": "maintenance.purge_executions"}, ["body", "parameters", "older_than_days"]),
        ({"task_type": "no.such.type"}, ["body", "task_type"]),
        ({"parameters": {"seconds": "long"}}, ["body", "parameters", "seconds"]),
        ({"name": None}, ["body", "name"]),
        ({"priority": None}, ["body", "priority"]),
        ({"timeout_seconds": 0}, ["body", "timeout_seconds"]),
        ({"id": 5}, ["body", "id"]),
        (
            {"scheduler_type": "date", "schedule_config": {"run_date": PAST}},
            ["body", "schedule_config", "run_date"],
        ),
    ],
)
async def test_patch_rejects_and_changes_nothing(
    client: httpx.AsyncClient,
    superuser_headers: dict[str, str],
    changes: dict[str, Any],
    loc: list[Any],
) -> None:
    config = await create(client, superuser_headers)
    url = f"{CONFIGS}/{config['id']}"
    response = await client.patch(url, json=changes, headers=superuser_headers)
    assert response.status_code == 422, response.text
    assert loc in field_locs(response)
    assert (await client.get(url, headers=superuser_headers)).json() == config


async def test_a_past_run_date_is_only_checked_when_the_schedule_changes(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    config = await create(
        client, superuser_headers, scheduler_type="date", schedule_config={"run_date": soon}
    )
    await asyncio.sleep(1.1)
    url = f"{CONFIGS}/{config['id']}"
    # The date has passed (the one-off may have fired): other fields stay editable.
    renamed = await client.patch(url, json={"priority": 2}, headers=superuser_headers)
    assert renamed.status_code == 200, renamed.text
    resent = await client.patch(
        url, json={"schedule_config": {"run_date": PAST}}, headers=superuser_headers
    )
    assert resent.status_code == 422
