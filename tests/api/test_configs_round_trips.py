"""Listing a page costs the same SQL statements and Redis round trips for 1 or 100 configs."""

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from backend.models import TaskConfig
from backend.services.redis import scheduler as schedule_state
from tests.support.configs import CONFIGS, unique
from tests.support.schedule_state import set_schedule_state


@dataclass
class RoundTrips:
    sql: list[str] = field(default_factory=list)
    # One entry per Redis round trip: the command names it carried.
    redis: list[list[str]] = field(default_factory=list)

    def sql_on_configs(self) -> list[str]:
        return [s for s in self.sql if "task_configs" in s]

    def redis_reading_states(self) -> list[list[str]]:
        return [trip for trip in self.redis if any(c.startswith("EVALSHA") for c in trip)]


@contextmanager
def counting(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> Iterator[RoundTrips]:
    trips = RoundTrips()
    resources = app.state.resources
    engines = [resources.engine.sync_engine, resources.reader.engine.sync_engine]

    def on_sql(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        trips.sql.append(statement)

    # Redis.execute_command is one round trip; a pipeline queues commands (its own
    # execute_command) and sends them all in Pipeline.execute: one round trip.
    single = Redis.execute_command
    flush = Pipeline.execute

    async def counted_single(self: Redis, *args: Any, **options: Any) -> Any:
        name = str(args[0]).upper()
        # A script's call says how many keys it carries: `EVALSHA/100`.
        trips.redis.append([f"{name}/{args[2]}" if name == "EVALSHA" else name])
        return await single(self, *args, **options)

    async def counted_flush(self: Pipeline, raise_on_error: bool = True) -> Any:
        trips.redis.append([str(command[0][0]).upper() for command in self.command_stack])
        return await flush(self, raise_on_error)

    for engine in engines:
        event.listen(engine, "before_cursor_execute", on_sql)
    monkeypatch.setattr(Redis, "execute_command", counted_single)
    monkeypatch.setattr(Pipeline, "execute", counted_flush)
    try:
        yield trips
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", on_sql)
        monkeypatch.undo()


async def seed_configs(session: AsyncSession, tag: str, count: int) -> list[TaskConfig]:
    configs = [
        TaskConfig(
            name=f"{tag}-{i:03}",
            task_type="demo.sleep",
            scheduler_type="manual",
            schedule_config={},
            parameters={},
        )
        for i in range(count)
    ]
    session.add_all(configs)
    await session.commit()
    return configs


def page_lister(
    app: FastAPI,
    client: httpx.AsyncClient,
    headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    **params: str,
) -> Callable[[int], Awaitable[tuple[RoundTrips, dict]]]:
    """Lists one page while counting its round trips (after a warm-up request: the first
    request of a session also loads the user)."""
    warm = False

    async def list_page(limit: int) -> tuple[RoundTrips, dict]:
        nonlocal warm
        if not warm:
            await client.get(CONFIGS, params={"limit": 1}, headers=headers)
            warm = True
        with counting(app, monkeypatch) as trips:
            response = await client.get(CONFIGS, params={**params, "limit": limit}, headers=headers)
        assert response.status_code == 200
        return trips, response.json()

    return list_page


async def test_a_page_of_100_costs_what_a_page_of_1_costs(
    app: FastAPI,
    client: httpx.AsyncClient,
    superuser_headers: dict[str, str],
    session: AsyncSession,
    redis: Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tag = unique("trips")
    configs = await seed_configs(session, tag, 100)
    await set_schedule_state(redis, configs[0].id, schedule_state.ScheduleState("active"))
    list_page = page_lister(app, client, superuser_headers, monkeypatch, search=tag)

    one, small = await list_page(1)
    hundred, large = await list_page(100)

    assert len(small["items"]) == 1
    assert len(large["items"]) == 100
    assert large["total"] == small["total"] == 100
    assert large["items"][0]["schedule_status"] == "active"
    # Whatever the request costs around the listing (e.g. loading the current user), the
    # page size changes nothing...
    assert len(hundred.sql) == len(one.sql)
    assert len(hundred.redis) == len(one.redis)
    # ...and the listing itself is one statement for the total and the page, and one Redis
    # round trip (a script reading each state) carrying every live state of the page.
    assert len(hundred.sql_on_configs()) == len(one.sql_on_configs()) == 1
    assert one.redis_reading_states() == [["EVALSHA/1"]]
    assert hundred.redis_reading_states() == [["EVALSHA/100"]]


async def test_stats_for_a_page_cost_one_statement_whatever_its_size(
    app: FastAPI,
    client: httpx.AsyncClient,
    superuser_headers: dict[str, str],
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tag = unique("trips-stats")
    await seed_configs(session, tag, 30)
    list_page = page_lister(
        app, client, superuser_headers, monkeypatch, search=tag, include_stats="true"
    )

    one, small = await list_page(1)
    assert len(small["items"]) == 1
    thirty, large = await list_page(30)

    assert len(large["items"]) == 30
    assert large["items"][0]["stats"]["total_runs"] == 0
    assert large["items"][0]["stats"]["last_run_success"] is None
    on_runs = [s for s in thirty.sql if "task_executions" in s]
    assert len(on_runs) == len([s for s in one.sql if "task_executions" in s]) == 1
    assert len(thirty.sql) == len(one.sql)
    assert len(thirty.redis) == len(one.redis)
