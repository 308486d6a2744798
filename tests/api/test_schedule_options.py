"""The repeating-schedule options through the API: validation, reads, and the previews."""

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.support.auth import bearer_for, create_user, unique_username
from tests.support.configs import CONFIGS, field_locs, sleep_config

PREVIEW = "/api/v1/tasks/schedules/preview"
SOON = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
LATER = SOON + timedelta(days=1)


def interval(**options: Any) -> dict[str, Any]:
    return {"scheduler_type": "interval", "schedule_config": {"minutes": 5, **options}}


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        (
            interval(start_at=LATER.isoformat(), end_at=SOON.isoformat()),
            ["body", "schedule_config", "end_at"],
        ),
        (
            interval(start_at=SOON.isoformat(), end_at=SOON.isoformat()),
            ["body", "schedule_config", "end_at"],
        ),
        (
            {
                "scheduler_type": "date",
                "schedule_config": {"run_date": LATER.isoformat(), "start_at": SOON.isoformat()},
            },
            ["body", "schedule_config"],
        ),
        (
            {"scheduler_type": "manual", "schedule_config": {"end_at": SOON.isoformat()}},
            ["body", "schedule_config"],
        ),
        (interval(max_runs=0), ["body", "schedule_config", "max_runs"]),
        (interval(jitter_seconds=-1), ["body", "schedule_config", "jitter_seconds"]),
        (
            {"scheduler_type": "cron", "schedule_config": {"minute": "0", "jitter_seconds": 3601}},
            ["body", "schedule_config", "jitter_seconds"],
        ),
        (interval(jitter_seconds=300), ["body", "schedule_config", "jitter_seconds"]),
        (interval(exclude=["tomorrow"]), ["body", "schedule_config", "exclude", 0, "day"]),
        (
            interval(exclude=[{"from": "2026-12-31", "to": "2026-12-24"}]),
            ["body", "schedule_config", "exclude", 0, "range"],
        ),
        (
            interval(exclude=[{"from": "2026-12-24"}]),
            ["body", "schedule_config", "exclude", 0, "range", "to"],
        ),
    ],
)
async def test_bad_options_are_422_at_their_field(
    client: httpx.AsyncClient, superuser_headers: dict, overrides: dict, loc: list
) -> None:
    response = await client.post(CONFIGS, json=sleep_config(**overrides), headers=superuser_headers)
    assert response.status_code == 422, response.text
    assert loc in field_locs(response)


async def test_options_are_stored_and_returned_with_remaining_runs(
    client: httpx.AsyncClient, superuser_headers: dict
) -> None:
    options = {
        "start_at": SOON.replace(tzinfo=None).isoformat(),  # naive: UTC
        "max_runs": 4,
        "jitter_seconds": 30,
        "exclude": ["2030-12-25", {"from": "2030-12-31", "to": "2031-01-01"}],
    }
    created = await client.post(
        CONFIGS, json=sleep_config(**interval(**options)), headers=superuser_headers
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["schedule_config"]["start_at"] == SOON.isoformat().replace("+00:00", "Z")
    assert body["schedule_config"]["exclude"] == options["exclude"]
    assert body["remaining_runs"] == 4
    plain = await client.post(CONFIGS, json=sleep_config(), headers=superuser_headers)
    assert plain.json()["remaining_runs"] is None


async def test_next_runs_of_an_inactive_then_started_config(
    client: httpx.AsyncClient, superuser_headers: dict
) -> None:
    schedule = {"cron_expression": "0 9 * * *", "timezone": "Asia/Tokyo", "jitter_seconds": 600}
    created = await client.post(
        CONFIGS,
        json=sleep_config(scheduler_type="cron", schedule_config=schedule),
        headers=superuser_headers,
    )
    config_id = created.json()["id"]
    url = f"{CONFIGS}/{config_id}/next-runs"

    before = await client.get(url, params={"count": 3}, headers=superuser_headers)
    assert before.status_code == 200, before.text
    preview = before.json()
    assert preview["active"] is False
    assert preview["timezone"] == "Asia/Tokyo"
    assert len(preview["runs"]) == 3
    for run in preview["runs"]:
        at, nominal = datetime.fromisoformat(run["at"]), datetime.fromisoformat(run["nominal"])
        assert timedelta() <= at - nominal < timedelta(minutes=10)
        assert nominal.astimezone(ZoneInfo("Asia/Tokyo")).hour == 9
        assert datetime.fromisoformat(run["local"]).utcoffset() == timedelta(hours=9)
        assert datetime.fromisoformat(run["local"]) == at

    started = await client.post(f"{CONFIGS}/{config_id}/actions/start", headers=superuser_headers)
    after = (await client.get(url, headers=superuser_headers)).json()
    assert after["active"] is True
    assert len(after["runs"]) == 10
    assert after["runs"][0]["at"] == started.json()["next_run_at"]
    assert after["runs"][:3] == preview["runs"]  # the same seed: the same jittered times


async def test_next_runs_stop_at_max_runs_and_show_excluded_days(
    client: httpx.AsyncClient, superuser_headers: dict
) -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    schedule = {"cron_expression": "0 12 * * *", "max_runs": 3, "exclude": [tomorrow]}
    created = await client.post(
        CONFIGS,
        json=sleep_config(scheduler_type="cron", schedule_config=schedule),
        headers=superuser_headers,
    )
    preview = (
        await client.get(f"{CONFIGS}/{created.json()['id']}/next-runs", headers=superuser_headers)
    ).json()
    assert preview["remaining_runs"] == 3
    assert len(preview["runs"]) == 3
    assert all(not run["at"].startswith(tomorrow) for run in preview["runs"])
    assert [s["nominal"][:10] for s in preview["skipped"]] == [tomorrow]


async def test_preview_of_an_unsaved_schedule(
    client: httpx.AsyncClient, superuser_headers: dict
) -> None:
    body = {
        "scheduler_type": "interval",
        "schedule_config": {"hours": 1, "start_at": SOON.isoformat(), "max_runs": 2},
        "count": 5,
    }
    response = await client.post(PREVIEW, json=body, headers=superuser_headers)
    assert response.status_code == 200, response.text
    runs = [datetime.fromisoformat(run["at"]) for run in response.json()["runs"]]
    assert runs == [SOON, SOON + timedelta(hours=1)]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (
            {"scheduler_type": "interval", "schedule_config": {"seconds": 5, "jitter_seconds": 5}},
            ["body", "schedule_config", "jitter_seconds"],
        ),
        (
            {"scheduler_type": "cron", "schedule_config": {"cron_expression": "99 * * * *"}},
            ["body", "schedule_config", "cron_expression"],
        ),
        (
            {"scheduler_type": "interval", "schedule_config": {"seconds": 5}, "count": 0},
            ["body", "count"],
        ),
        (
            {"scheduler_type": "interval", "schedule_config": {"seconds": 5}, "count": 101},
            ["body", "count"],
        ),
        ({"scheduler_type": "weekly", "schedule_config": {}}, ["body", "scheduler_type"]),
    ],
)
async def test_preview_of_a_bad_schedule_is_422(
    client: httpx.AsyncClient, superuser_headers: dict, body: dict, loc: list
) -> None:
    response = await client.post(PREVIEW, json=body, headers=superuser_headers)
    assert response.status_code == 422, response.text
    assert loc in field_locs(response)


@pytest.mark.parametrize("count", [0, 101])
async def test_next_runs_count_out_of_range_is_422(
    client: httpx.AsyncClient, superuser_headers: dict, count: int
) -> None:
    created = await client.post(CONFIGS, json=sleep_config(), headers=superuser_headers)
    response = await client.get(
        f"{CONFIGS}/{created.json()['id']}/next-runs",
        params={"count": count},
        headers=superuser_headers,
    )
    assert response.status_code == 422
    assert ["query", "count"] in field_locs(response)


async def test_next_runs_of_an_unknown_config_is_404(
    client: httpx.AsyncClient, superuser_headers: dict
) -> None:
    response = await client.get(f"{CONFIGS}/999999999/next-runs", headers=superuser_headers)
    assert response.status_code == 404


async def test_a_viewer_may_preview(client: httpx.AsyncClient, session) -> None:
    viewer = await create_user(session, username=unique_username("viewer"), role="viewer")
    body = {"scheduler_type": "interval", "schedule_config": {"seconds": 5}, "count": 2}
    response = await client.post(PREVIEW, json=body, headers=bearer_for(viewer.id))
    assert response.status_code == 200
    assert len(response.json()["runs"]) == 2
