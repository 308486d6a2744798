"""`GET /metrics`: route-template labels, the settings that turn it off or protect it, lost runs."""

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession
from taskiq import ScheduledTask
from taskiq.exceptions import ScheduledTaskCancelledError

from backend.api.http_metrics import HttpMetricsMiddleware
from backend.config import Settings, get_settings
from backend.main import attach_resources, create_app
from backend.scheduler.reconcile import reconcile
from backend.scheduler.source import ClaimHeld, TaskhubScheduleSource
from backend.services import schedules
from backend.services.redis import history
from backend.services.redis import scheduler as schedule_state
from backend.services.redis import timeout as live_runs
from backend.worker.reaper import reap_once
from tests.support.factories import create_config
from tests.support.metrics import reader, rendered, scrape, value
from tests.support.processes import eventually

TOKEN = "scrape-token-0123456789"
DURATION_COUNT = "taskhub_http_request_duration_seconds_count"


async def test_http_metrics_are_labelled_by_route_template(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    template = "/api/v1/tasks/configs/{config_id}"
    before = await scrape(client)
    for config_id in (987651, 987652):
        response = await client.get(f"/api/v1/tasks/configs/{config_id}", headers=superuser_headers)
        assert response.status_code == 404
    after = await scrape(client)

    counted = "taskhub_http_requests_total"
    labels = {"method": "GET", "route": template, "status": "404"}
    assert value(after, counted, **labels) == value(before, counted, **labels) + 2
    timed = {"method": "GET", "route": template}
    assert value(after, DURATION_COUNT, **timed) == value(before, DURATION_COUNT, **timed) + 2
    assert not [s for s in after if "98765" in s.labels.get("route", "")]


async def test_unrouted_paths_share_one_label(client: httpx.AsyncClient) -> None:
    before = await scrape(client)
    for path in ("/no/such/page", "/wp-admin/setup.php"):
        assert (await client.get(path)).status_code == 404
    after = await scrape(client)
    labels = {"method": "GET", "route": "unmatched"}
    assert value(after, DURATION_COUNT, **labels) == value(before, DURATION_COUNT, **labels) + 2
    assert not [s for s in after if "wp-admin" in s.labels.get("route", "")]


async def test_templates_of_nested_routers_and_mounts(tmp_path: Path) -> None:
    inner = APIRouter(prefix="/items")

    @inner.get("/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        return {"id": item_id}

    outer = APIRouter(prefix="/v2")
    outer.include_router(inner)
    sub = FastAPI()

    @sub.get("/hello/{name}")
    async def hello(name: str) -> dict[str, str]:
        return {"name": name}

    (tmp_path / "app.js").write_text("//")
    app = FastAPI()
    app.include_router(outer, prefix="/shop")
    app.mount("/sub", sub)
    app.mount("/static", StaticFiles(directory=tmp_path))
    app.add_middleware(HttpMetricsMiddleware)
    before = rendered()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
        assert (await http.get("/shop/v2/items/a1")).status_code == 200
        assert (await http.delete("/shop/v2/items/a1")).status_code == 405
        assert (await http.get("/sub/hello/ann")).status_code == 200
        assert (await http.get("/static/app.js")).status_code == 200
        assert (await http.request("BREW", "/static/app.js")).status_code == 405
    after = rendered()
    for method, route, status in [
        ("GET", "/shop/v2/items/{item_id}", "200"),
        ("DELETE", "/shop/v2/items/{item_id}", "405"),
        ("GET", "/sub/hello/{name}", "200"),
        ("GET", "/static/{path}", "200"),
        ("other", "/static/{path}", "405"),
    ]:
        labels = {"method": method, "route": route, "status": status}
        counted = "taskhub_http_requests_total"
        assert value(after, counted, **labels) == value(before, counted, **labels) + 1, labels


async def test_metrics_disabled_is_a_404() -> None:
    app = create_app(Settings(metrics_enabled=False))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
        response = await http.get("/metrics")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_metrics_token_protects_the_endpoint(app: FastAPI) -> None:
    protected = create_app(Settings(metrics_token=TOKEN))
    protected.state.resources = app.state.resources  # the session's: no second lifespan
    transport = httpx.ASGITransport(protected)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        missing = await http.get("/metrics")
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
        basic = await http.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"})
        samples = await scrape(http, headers={"Authorization": f"Bearer {TOKEN}"})
    for response in (missing, wrong, basic):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"]["code"] == "unauthorized"
    assert [s for s in samples if s.name == "taskhub_runs_in_flight"]


async def test_without_redis_the_other_metrics_are_still_served() -> None:
    settings = get_settings().model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    app = create_app(settings)
    resources = attach_resources(app)  # nothing listens at that Redis URL
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        await http.get("/no/such/page")
        samples = await scrape(http)
    await resources.close()
    assert not [s for s in samples if s.name == "taskhub_runs_in_flight"]
    assert [s for s in samples if s.name == "taskhub_http_requests_total"]


def test_a_short_metrics_token_is_refused() -> None:
    with pytest.raises(ValidationError, match="METRICS_TOKEN"):
        Settings(metrics_token="short")


async def test_lost_runs_count_per_task_type(
    app: FastAPI, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    lost = reader(client, "taskhub_runs_finished_total", task_type="demo.sleep", outcome="lost")
    before = await lost()
    config = await create_config(session)
    now = time.time()
    await live_runs.start(
        app.state.resources.redis,
        live_runs.Start(
            task_id=f"metrics-lost-{config.id}",
            config_id=config.id,
            trigger="manual",
            task_type="demo.sleep",
            attempt=1,
            started_at=now - 5,
            deadline=now - 1,
            overlap="allow",
            ttl=60,
        ),
    )
    assert await reap_once(app.state.resources, get_settings()) == 1
    assert await eventually(lost) == before + 1


async def test_missed_fires_are_counted_by_reconcile(
    client: httpx.AsyncClient, session: AsyncSession, redis: Redis
) -> None:
    missed = reader(client, "taskhub_schedule_fires_missed_total", task_type="demo.sleep")
    before = await missed()
    config = await create_config(
        session, scheduler_type="interval", schedule_config={"seconds": 10}
    )
    # Started five minutes ago with no scheduler since: about 30 fires missed, the newest
    # (inside the grace) coalesced and sent, every other one counted.
    await schedules.apply_action(
        redis, config, "start", now=datetime.now(UTC) - timedelta(minutes=5)
    )

    async def only_this_one(config_ids: set[int]) -> set[int]:
        # Other tests' configs read as missing: a first pass only notes them (it removes a
        # config missing twice), and repairs none of them, so the counter moves for ours alone.
        return config_ids & {config.id}

    try:
        await reconcile(
            redis, now=datetime.now(UTC), grace=timedelta(seconds=60), existing=only_this_one
        )
    finally:
        await schedules.apply_action(redis, config, "stop")
    events, _ = await history.read(redis, config.id)
    [event] = [e for e in events if e["event"] == "missed"]
    assert event["count"] >= 25
    assert await missed() == before + event["count"]


async def test_a_fire_claimed_by_another_replica_is_counted(
    client: httpx.AsyncClient, session: AsyncSession, redis: Redis
) -> None:
    lost = reader(client, "taskhub_schedule_fires_claimed_elsewhere_total", task_type="demo.sleep")
    before = await lost()
    config = await create_config(session, scheduler_type="interval", schedule_config={"minutes": 1})
    await schedules.apply_action(redis, config, "start")
    source = TaskhubScheduleSource(get_settings())
    try:
        entry_id, _ = (await schedule_state.queued_entries(redis, config.id))[0]
        task = ScheduledTask.model_validate_json(await redis.get(schedule_state.data_key(entry_id)))
        claims = await schedule_state.claim_fires(
            redis, [entry_id], owner="replica-b", lease_seconds=30
        )
        assert [claim.outcome for claim in claims] == ["ok"]
        with pytest.raises(ClaimHeld):  # replica-b is sending it: looked at again later
            await source.pre_send(task)
        assert await lost() == before
        await schedule_state.mark_sent(redis, [entry_id], owner="replica-b")
        with pytest.raises(ScheduledTaskCancelledError):  # replica-b sent it
            await source.pre_send(task)
    finally:
        await source.shutdown()
        await schedules.apply_action(redis, config, "stop")
    assert await lost() == before + 1


async def test_every_family_is_served_from_the_start(client: httpx.AsyncClient) -> None:
    """Initialised at zero for the registered task types when the process starts."""
    names = {sample.name for sample in await scrape(client)}
    for family in (
        "taskhub_runs_started_total", "taskhub_runs_finished_total", "taskhub_runs_skipped_total",
        "taskhub_run_duration_seconds_count", "taskhub_schedule_fires_sent_total",
        "taskhub_schedule_fires_missed_total", "taskhub_schedule_lag_seconds_count",
        "taskhub_notifications_total",
    ):  # fmt: skip
        assert family in names, family
