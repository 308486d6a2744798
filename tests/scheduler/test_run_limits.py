"""max_runs and the window against real Redis, at chosen moments (no scheduler, no waiting):
fires are sent by marking their claim sent and calling after_fire, as a sender does."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from backend.config import get_settings
from backend.errors import InvalidInput
from backend.models import TaskConfig
from backend.scheduler.reconcile import reconcile
from backend.services import schedule_entries, schedules
from backend.services.redis import history
from backend.services.redis import scheduler as schedule_state
from tests.support.factories import create_config

T0 = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
GRACE = timedelta(seconds=60)


@pytest.fixture(autouse=True)
def own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "redis_prefix", f"taskhub-limits-{uuid.uuid4().hex}")


async def all_exist(config_ids: set[int]) -> set[int]:
    return config_ids


async def started(session: AsyncSession, redis: Redis, **schedule: Any) -> TaskConfig:
    config = await create_config(
        session, scheduler_type="interval", schedule_config={"minutes": 1, **schedule}
    )
    await schedules.apply_action(redis, config, "start", now=T0)
    return config


async def queued(redis: Redis, config_id: int) -> list[tuple[str, datetime]]:
    return await schedule_state.queued_entries(redis, config_id)


async def send(redis: Redis, config_id: int, entry_id: str, fire_at: datetime) -> None:
    key = schedule_state.claim_key(config_id, schedule_state.to_ms(fire_at))
    await redis.set(key, schedule_state.SENT + "replica-a")
    await schedule_entries.after_fire(redis, entry_id, now=fire_at + timedelta(milliseconds=50))


async def send_next(redis: Redis, config_id: int) -> datetime:
    entry_id, fire_at = (await queued(redis, config_id))[0]
    await send(redis, config_id, entry_id, fire_at)
    return fire_at


async def event_names(redis: Redis, config_id: int) -> list[str]:
    found, _ = await history.read(redis, config_id)
    return [event["event"] for event in found]


async def test_max_runs_completes_after_exactly_that_many_fires(
    session: AsyncSession, redis: Redis
) -> None:
    config = await started(session, redis, max_runs=2)
    assert [fire for _, fire in await queued(redis, config.id)] == [T0 + MINUTE, T0 + 2 * MINUTE]

    sent = [await send_next(redis, config.id)]
    state = await schedule_state.read_state(redis, config.id)
    assert (state.status, state.fired, state.next_run_at) == ("active", 1, T0 + 2 * MINUTE)
    assert len(await queued(redis, config.id)) == 1  # nothing queued beyond the limit

    sent.append(await send_next(redis, config.id))
    state = await schedule_state.read_state(redis, config.id)
    assert (state.status, state.fired, state.next_run_at) == ("completed", 2, None)
    assert await queued(redis, config.id) == []
    assert (await event_names(redis, config.id)).count("fired") == 2
    assert "completed" in await event_names(redis, config.id)
    assert sent == [T0 + MINUTE, T0 + 2 * MINUTE]


async def test_a_new_start_counts_from_zero_and_pause_resume_keeps_the_count(
    session: AsyncSession, redis: Redis
) -> None:
    config = await started(session, redis, max_runs=3)
    await send_next(redis, config.id)
    await schedules.apply_action(redis, config, "pause", now=T0 + 90 * timedelta(seconds=1))
    resumed = await schedules.apply_action(redis, config, "resume", now=T0 + 2 * MINUTE)
    assert resumed.fired == 1
    assert len(await queued(redis, config.id)) == 2
    await schedules.apply_action(redis, config, "stop", now=T0 + 3 * MINUTE)
    restarted = await schedules.apply_action(redis, config, "start", now=T0 + 4 * MINUTE)
    assert restarted.fired == 0
    assert len(await queued(redis, config.id)) == 3


async def test_a_reload_while_the_last_allowed_fire_is_sent_completes_after_it(
    session: AsyncSession, redis: Redis
) -> None:
    config = await started(session, redis, max_runs=1)
    [(entry_id, fire_at)] = await queued(redis, config.id)
    claim = schedule_state.claim_key(config.id, schedule_state.to_ms(fire_at))
    await redis.set(claim, "replica-a|0")  # being sent right now
    reloaded = await schedules.apply_action(redis, config, "reload", now=fire_at)
    assert await queued(redis, config.id) == []  # its place is kept: no second fire
    assert reloaded.status == "active"

    await redis.set(claim, schedule_state.SENT + "replica-a")
    await schedule_entries.after_fire(redis, entry_id, now=fire_at + timedelta(milliseconds=50))
    state = await schedule_state.read_state(redis, config.id)
    assert (state.status, state.fired) == ("completed", 1)


async def test_a_fire_caught_up_by_reconcile_counts(session: AsyncSession, redis: Redis) -> None:
    """The sender of 12:01 died after RabbitMQ confirmed it, before its bookkeeping."""
    config = await started(session, redis, max_runs=2)
    (_, first), _ = await queued(redis, config.id)
    await redis.set(
        schedule_state.claim_key(config.id, schedule_state.to_ms(first)),
        schedule_state.SENT + "replica-a",
    )
    await reconcile(redis, now=first + timedelta(seconds=30), grace=GRACE, existing=all_exist)
    state = await schedule_state.read_state(redis, config.id)
    assert (state.status, state.fired) == ("active", 1)
    assert [fire for _, fire in await queued(redis, config.id)] == [T0 + 2 * MINUTE]


async def test_missed_fires_do_not_count(session: AsyncSession, redis: Redis) -> None:
    """Down for ten minutes: the fires nobody sent are missed, and max_runs still allows 2."""
    config = await started(session, redis, max_runs=2)
    now = T0 + 10 * MINUTE + timedelta(seconds=30)
    await reconcile(redis, now=now, grace=GRACE, existing=all_exist)
    state = await schedule_state.read_state(redis, config.id)
    assert state.fired == 0
    fires = [fire for _, fire in await queued(redis, config.id)]
    assert fires == [T0 + 10 * MINUTE, T0 + 11 * MINUTE]  # the coalesced one, then one more
    assert "missed" in await event_names(redis, config.id)


async def test_the_window_closes_with_the_last_fire_inside_it(
    session: AsyncSession, redis: Redis
) -> None:
    config = await started(
        session, redis, end_at=(T0 + 2 * MINUTE + timedelta(seconds=30)).isoformat()
    )
    assert len(await queued(redis, config.id)) == 2
    await send_next(redis, config.id)
    await send_next(redis, config.id)
    state = await schedule_state.read_state(redis, config.id)
    assert (state.status, state.next_run_at) == ("completed", None)


async def test_start_past_the_window_is_refused_naming_end_at(
    session: AsyncSession, redis: Redis
) -> None:
    config = await create_config(
        session, scheduler_type="interval",
        schedule_config={"minutes": 1, "end_at": (T0 - MINUTE).isoformat()},
    )  # fmt: skip
    with pytest.raises(InvalidInput) as caught:
        await schedules.apply_action(redis, config, "start", now=T0)
    assert caught.value.fields[0]["loc"] == ["schedule_config", "end_at"]
