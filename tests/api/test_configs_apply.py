"""`POST /tasks/configs/apply`: the plan, one transaction, idempotence, and the bad input."""

from typing import Any

import httpx
import pytest
import redis.exceptions
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.models import AuditEvent, TaskConfig
from backend.services import config_apply
from backend.services.redis import history
from backend.services.redis import scheduler as schedule_state
from tests.support.auth import bearer_for, create_user, unique_username
from tests.support.configs import CONFIGS, field_locs, sleep_config

APPLY = f"{CONFIGS}/apply"


async def apply(
    client: httpx.AsyncClient, headers: dict[str, str], configs: list[dict[str, Any]], **flags: Any
) -> httpx.Response:
    return await client.post(APPLY, json={"configs": configs, **flags}, headers=headers)


async def by_name(session: AsyncSession, name: str) -> TaskConfig | None:
    return await session.scalar(select(TaskConfig).where(TaskConfig.name == name))


async def audit_count(session: AsyncSession) -> int:
    return await session.scalar(select(func.count(AuditEvent.id))) or 0


async def test_create_then_unchanged_then_update(
    client: httpx.AsyncClient, superuser_headers: dict[str, str], session: AsyncSession,
    redis: Redis,
) -> None:  # fmt: skip
    nap = sleep_config(schedule_status="active")
    cron = sleep_config(scheduler_type="cron", schedule_config={"cron_expression": "0 3 * * *"})
    created = await apply(client, superuser_headers, [nap, cron])
    assert created.status_code == 200, created.text
    plan = created.json()
    assert plan["create"] == [nap["name"], cron["name"]]
    assert (plan["update"], plan["delete"], plan["unchanged"]) == ([], [], [])
    assert plan["applied"] is True
    assert plan["schedule_status"] == {nap["name"]: "active", cron["name"]: "inactive"}
    nap_id = (await by_name(session, nap["name"])).id  # type: ignore[union-attr]
    state = await schedule_state.read_state(redis, nap_id)
    assert state.status == "active"
    assert state.next_run_at is not None

    # The same document again: all unchanged, and nothing written anywhere.
    audits, (_, events) = await audit_count(session), await history.read(redis, nap_id)
    again = (await apply(client, superuser_headers, [nap, cron])).json()
    assert again["unchanged"] == [nap["name"], cron["name"]]
    assert again["create"] == again["update"] == again["delete"] == []
    assert await audit_count(session) == audits
    assert (await history.read(redis, nap_id))[1] == events
    assert (await schedule_state.read_state(redis, nap_id)).generation == state.generation

    # An edit: the diff per field, the schedule reloaded with the new settings, then paused.
    edited = nap | {"priority": 8, "schedule_config": {"minutes": 10}, "schedule_status": "paused"}
    updated = (await apply(client, superuser_headers, [edited, cron])).json()
    assert updated["unchanged"] == [cron["name"]]
    [change] = updated["update"]
    assert change == {
        "name": nap["name"],
        "changes": {
            "priority": [5, 8],
            "schedule_config": [{"minutes": 5}, {"minutes": 10}],
            "schedule_status": ["active", "paused"],
        },
    }
    assert updated["schedule_status"][nap["name"]] == "paused"
    state = await schedule_state.read_state(redis, nap_id)
    assert state.status == "paused"
    assert state.plan is not None
    assert state.plan["schedule_config"] == {"minutes": 10}


async def test_one_apply_row_with_the_plan_plus_the_per_config_rows(
    client: httpx.AsyncClient, superuser_headers: dict[str, str], session: AsyncSession
) -> None:
    body = sleep_config(schedule_status="active")
    before = await session.scalar(select(func.max(AuditEvent.id))) or 0
    assert (await apply(client, superuser_headers, [body])).status_code == 200
    rows = (await session.scalars(select(AuditEvent).where(AuditEvent.id > before))).all()
    mine = [row for row in rows if row.target_name in (None, body["name"])]
    assert sorted(row.action for row in mine) == ["config.apply", "config.create",
                                                  "schedule.start"]  # fmt: skip
    [plan_row] = [row for row in mine if row.action == "config.apply"]
    assert plan_row.changes == {"create": [body["name"]], "update": [], "delete": []}


async def test_dry_run_plans_and_writes_nothing(
    client: httpx.AsyncClient, superuser_headers: dict[str, str], session: AsyncSession
) -> None:
    body = sleep_config(schedule_status="active")
    audits = await audit_count(session)
    plan = (await apply(client, superuser_headers, [body], dry_run=True)).json()
    assert plan["create"] == [body["name"]]
    assert plan["applied"] is False
    assert plan["schedule_status"] == {body["name"]: "active"}
    assert await by_name(session, body["name"]) is None
    assert await audit_count(session) == audits


async def test_prune_dry_run_lists_the_configs_the_document_omits(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    kept, dropped = sleep_config(), sleep_config()
    assert (await apply(client, superuser_headers, [kept, dropped])).status_code == 200
    plan = (await apply(client, superuser_headers, [kept], prune=True, dry_run=True)).json()
    assert dropped["name"] in plan["delete"]
    assert kept["name"] not in plan["delete"]
    assert plan["unchanged"] == [kept["name"]]


async def test_prune_deletes_and_unschedules(
    client: httpx.AsyncClient, superuser_headers: dict[str, str], session: AsyncSession,
    redis: Redis,
) -> None:  # fmt: skip
    # A real prune deletes every config the document omits: here, those other tests left.
    kept, dropped = sleep_config(), sleep_config(schedule_status="active")
    assert (await apply(client, superuser_headers, [kept, dropped])).status_code == 200
    dropped_id = (await by_name(session, dropped["name"])).id  # type: ignore[union-attr]
    plan = (await apply(client, superuser_headers, [kept], prune=True)).json()
    assert dropped["name"] in plan["delete"]
    session.expire_all()
    assert await by_name(session, dropped["name"]) is None
    assert (await schedule_state.read_state(redis, dropped_id)).status == "inactive"
    events, _ = await history.read(redis, dropped_id)
    assert events[0]["event"] == "deleted"


async def test_two_items_of_one_name(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    body = sleep_config()
    response = await apply(client, superuser_headers, [body, body | {"priority": 1}])
    assert response.status_code == 422
    assert field_locs(response) == [["body", "configs", 1, "name"]]


async def test_an_invalid_item_applies_nothing(
    client: httpx.AsyncClient, superuser_headers: dict[str, str], session: AsyncSession
) -> None:
    good = sleep_config()
    bad = sleep_config(scheduler_type="cron", schedule_config={"cron_expression": "61 * * * *"})
    response = await apply(client, superuser_headers, [good, bad])
    assert response.status_code == 422
    assert field_locs(response) == [["body", "configs", 1, "schedule_config", "cron_expression"]]
    assert await by_name(session, good["name"]) is None


@pytest.mark.parametrize(
    ("item", "loc"),
    [
        ({"task_type": "no.such.type"}, ["task_type"]),
        ({"parameters": {"seconds": -1}}, ["parameters", "seconds"]),
        ({"schedule_status": "completed"}, ["schedule_status"]),
        ({"scheduler_type": "manual", "schedule_config": {}, "schedule_status": "active"},
         ["schedule_status"]),
        ({"colour": "red"}, ["colour"]),
    ],
)  # fmt: skip
async def test_item_errors_point_into_the_document(
    client: httpx.AsyncClient, superuser_headers: dict[str, str], item: dict, loc: list
) -> None:
    response = await apply(client, superuser_headers, [sleep_config(), sleep_config(**item)])
    assert response.status_code == 422, response.text
    assert field_locs(response) == [["body", "configs", 1, *loc]]


async def test_prune_with_no_item_needs_confirm_empty(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    refused = await apply(client, superuser_headers, [], prune=True)
    assert refused.status_code == 422
    assert field_locs(refused) == [["body", "configs"]]
    confirmed = await apply(client, superuser_headers, [], prune=True, confirm_empty=True,
                            dry_run=True)  # fmt: skip
    assert confirmed.status_code == 200
    assert confirmed.json()["applied"] is False


async def test_a_non_admin_is_refused(client: httpx.AsyncClient, session: AsyncSession) -> None:
    operator = await create_user(session, username=unique_username("op"), role="operator")
    body = sleep_config()
    response = await apply(client, bearer_for(operator.id), [body])
    assert response.status_code == 403
    assert await by_name(session, body["name"]) is None


async def test_a_failure_before_the_commit_applies_nothing(
    client: httpx.AsyncClient, superuser_headers: dict[str, str], session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    existing = sleep_config()
    assert (await apply(client, superuser_headers, [existing])).status_code == 200

    def redis_down(*_: Any, **__: Any) -> None:
        raise redis.exceptions.ConnectionError("Redis is gone")

    monkeypatch.setattr(config_apply.history, "queue_append", redis_down)
    new = sleep_config()
    response = await apply(client, superuser_headers, [existing | {"priority": 9}, new])
    assert response.status_code == 503
    session.expire_all()
    assert await by_name(session, new["name"]) is None
    assert (await by_name(session, existing["name"])).priority == 5  # type: ignore[union-attr]


async def test_a_fired_one_off_stays_completed(
    client: httpx.AsyncClient, superuser_headers: dict[str, str], session: AsyncSession,
    redis: Redis,
) -> None:  # fmt: skip
    body = sleep_config(scheduler_type="date",
                        schedule_config={"run_date": "2031-01-01T00:00:00+00:00"},
                        schedule_status="active")  # fmt: skip
    assert (await apply(client, superuser_headers, [body])).status_code == 200
    config_id = (await by_name(session, body["name"])).id  # type: ignore[union-attr]
    completed = schedule_state.ScheduleState(status="completed")
    async with redis.pipeline(transaction=True) as pipe:
        schedule_state.queue_state(pipe, config_id, completed)
        await pipe.execute()
    plan = (await apply(client, superuser_headers, [body])).json()
    assert plan["unchanged"] == [body["name"]]
    assert plan["schedule_status"] == {body["name"]: "completed"}


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_another_method_on_apply_is_405(
    client: httpx.AsyncClient, superuser_headers: dict[str, str], method: str
) -> None:
    # Not a 422 for a config id "apply": the path names the apply route.
    response = await client.request(method, APPLY, headers=superuser_headers)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    refused = await client.get(f"{CONFIGS}/abc", headers=superuser_headers)
    assert refused.status_code == 422
