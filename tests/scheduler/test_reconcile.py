"""Reconcile and after_fire against real Redis, at chosen moments (no scheduler, no waiting).

Each test runs on its own Redis key prefix: a reconcile pass looks at every schedule under
the prefix, and the other tests' schedules must not take part.
"""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from backend.config import get_settings
from backend.models import TaskConfig
from backend.scheduler.reconcile import reconcile
from backend.services import schedule_entries, schedules
from backend.services.redis import history
from backend.services.redis import scheduler as schedule_state
from tests.support.factories import create_config
from tests.support.schedule_state import set_schedule_state

T0 = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)  # a whole minute; the schedule starts here
MINUTE = timedelta(minutes=1)
GRACE = timedelta(seconds=60)


@pytest.fixture(autouse=True)
def own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "redis_prefix", f"taskhub-reconcile-{uuid.uuid4().hex}")


async def all_exist(config_ids: set[int]) -> set[int]:
    return config_ids


async def started(session: AsyncSession, redis: Redis, **fields: Any) -> TaskConfig:
    config = await create_config(session, **fields)
    await schedules.apply_action(redis, config, "start", now=T0)
    return config


async def every_minute(session: AsyncSession, redis: Redis) -> TaskConfig:
    return await started(
        session, redis, scheduler_type="cron", schedule_config={"cron_expression": "* * * * *"}
    )


async def fires(redis: Redis, config_id: int) -> list[datetime]:
    return [fire for _, fire in await schedule_state.queued_entries(redis, config_id)]


async def events(redis: Redis, config_id: int, kind: str) -> list[dict]:
    found, _ = await history.read(redis, config_id)
    return [e for e in found if e["event"] == kind]


async def test_the_newest_missed_fire_inside_the_grace_is_sent_and_every_other_counted(
    session: AsyncSession, redis: Redis
) -> None:
    """Down 4.5 minutes: the three queued fires are older than the grace, but 12:04 (30 s
    old) is not. It is queued to be sent now; 12:01-12:03 are missed."""
    config = await every_minute(session, redis)
    assert await fires(redis, config.id) == [T0 + MINUTE, T0 + 2 * MINUTE, T0 + 3 * MINUTE]
    now = T0 + timedelta(minutes=4, seconds=30)

    await reconcile(redis, now=now, grace=GRACE, existing=all_exist)

    coalesced = T0 + 4 * MINUTE
    assert await fires(redis, config.id) == [coalesced] + [T0 + n * MINUTE for n in (5, 6, 7)]
    assert (await schedule_state.read_state(redis, config.id)).next_run_at == coalesced
    [missed] = await events(redis, config.id, "missed")
    assert missed["count"] == 3
    assert (missed["first"], missed["last"]) == (
        (T0 + MINUTE).isoformat(),
        (T0 + 3 * MINUTE).isoformat(),
    )
    # A second pass finds nothing more to do.
    await reconcile(redis, now=now, grace=GRACE, existing=all_exist)
    assert len(await events(redis, config.id, "missed")) == 1
    assert len(await fires(redis, config.id)) == 4


async def test_missed_fires_all_older_than_the_grace_continue_at_the_next_occurrence(
    session: AsyncSession, redis: Redis
) -> None:
    config = await every_minute(session, redis)
    now = T0 + timedelta(minutes=10, seconds=30)

    await reconcile(redis, now=now, grace=timedelta(seconds=10), existing=all_exist)

    assert await fires(redis, config.id) == [T0 + n * MINUTE for n in (11, 12, 13)]
    assert (await schedule_state.read_state(redis, config.id)).next_run_at == T0 + 11 * MINUTE
    [missed] = await events(redis, config.id, "missed")
    assert missed["count"] == 10  # 12:01 .. 12:10, every skipped occurrence
    assert missed["last"] == (T0 + 10 * MINUTE).isoformat()


async def test_coalesced_interval_fire_keeps_the_grid(session: AsyncSession, redis: Redis) -> None:
    config = await started(
        session, redis, scheduler_type="interval", schedule_config={"seconds": 1}
    )
    now = T0 + timedelta(seconds=5, milliseconds=500)

    await reconcile(redis, now=now, grace=GRACE, existing=all_exist)

    queued = await fires(redis, config.id)
    assert queued == [T0 + timedelta(seconds=s) for s in (5, 6, 7, 8)]
    [missed] = await events(redis, config.id, "missed")
    assert missed["count"] == 4  # 1, 2, 3 queued and 4 never queued; 5 is sent


async def test_a_fire_sent_by_a_killed_winner_gets_its_fired_event(
    session: AsyncSession, redis: Redis
) -> None:
    """The winner of 12:01 got RabbitMQ's confirm (claim `sent`) and died before its
    bookkeeping: the entry is dropped, not resent, and its `fired` event written."""
    config = await every_minute(session, redis)
    await redis.set(
        schedule_state.claim_key(config.id, schedule_state.to_ms(T0 + MINUTE)),
        schedule_state.SENT + "a-replica",
    )
    now = T0 + timedelta(minutes=1, seconds=20)

    await reconcile(redis, now=now, grace=GRACE, existing=all_exist)

    assert await fires(redis, config.id) == [T0 + n * MINUTE for n in (2, 3, 4)]
    assert (await schedule_state.read_state(redis, config.id)).next_run_at == T0 + 2 * MINUTE
    [fired] = await events(redis, config.id, "fired")
    assert fired["fire_at"] == (T0 + MINUTE).isoformat()
    assert fired["task_id"] == schedule_entries.fire_task_id(config.id, T0 + MINUTE)
    assert await events(redis, config.id, "missed") == []


async def test_a_fire_claimed_but_unconfirmed_waits_out_the_grace_then_is_missed(
    session: AsyncSession, redis: Redis
) -> None:
    """The winner of 12:01 died before RabbitMQ confirmed: within the grace it may still be
    sending (or retrying), or a replica take its claim over once the lease ends, so the entry
    stays; past it, with nobody having sent it, the fire is missed, and says why."""
    config = await every_minute(session, redis)
    await redis.set(
        schedule_state.claim_key(config.id, schedule_state.to_ms(T0 + MINUTE)), "killed-replica"
    )

    await reconcile(
        redis, now=T0 + timedelta(minutes=1, seconds=20), grace=GRACE, existing=all_exist
    )
    assert await fires(redis, config.id) == [T0 + n * MINUTE for n in (1, 2, 3, 4)]
    assert (await schedule_state.read_state(redis, config.id)).next_run_at == T0 + 2 * MINUTE
    assert await events(redis, config.id, "missed") == []

    await reconcile(
        redis, now=T0 + timedelta(minutes=2, seconds=5), grace=GRACE, existing=all_exist
    )
    assert T0 + MINUTE not in await fires(redis, config.id)
    [missed] = await events(redis, config.id, "missed")
    assert missed["count"] == 1
    assert missed["first"] == missed["last"] == (T0 + MINUTE).isoformat()
    assert "no replica sent it again within the grace" in missed["reason"]


async def test_the_newest_fire_already_sent_is_not_resent(
    session: AsyncSession, redis: Redis
) -> None:
    """12:01 never went out, 12:02 did (claim `sent`): nothing to coalesce, 12:01 missed."""
    config = await every_minute(session, redis)
    await redis.set(
        schedule_state.claim_key(config.id, schedule_state.to_ms(T0 + 2 * MINUTE)),
        schedule_state.SENT + "a-replica",
    )
    now = T0 + timedelta(minutes=2, seconds=20)

    await reconcile(redis, now=now, grace=GRACE, existing=all_exist)

    assert await fires(redis, config.id) == [T0 + n * MINUTE for n in (3, 4, 5)]
    [missed] = await events(redis, config.id, "missed")
    assert (missed["count"], missed["first"]) == (1, (T0 + MINUTE).isoformat())


async def test_a_missed_date_completes(session: AsyncSession, redis: Redis) -> None:
    run_date = T0 + timedelta(hours=1)
    config = await started(
        session, redis, scheduler_type="date", schedule_config={"run_date": run_date.isoformat()}
    )
    await reconcile(redis, now=run_date + timedelta(hours=1), grace=GRACE, existing=all_exist)

    assert await fires(redis, config.id) == []
    state = await schedule_state.read_state(redis, config.id)
    assert (state.status, state.next_run_at) == ("completed", None)
    kinds = [e["event"] for e in (await history.read(redis, config.id))[0]]
    assert kinds[:2] == ["completed", "missed"]


async def test_periodic_pass_leaves_fires_due_this_instant_to_the_scheduler(
    session: AsyncSession, redis: Redis
) -> None:
    config = await every_minute(session, redis)
    now = T0 + MINUTE + timedelta(milliseconds=300)  # 12:01 is being sent right now

    await reconcile(redis, now=now, grace=GRACE, existing=all_exist)

    assert await fires(redis, config.id) == [T0 + n * MINUTE for n in (1, 2, 3)]
    assert await events(redis, config.id, "missed") == []


async def test_periodic_pass_sends_the_newest_unsent_fire_even_inside_the_settle_time(
    session: AsyncSession, redis: Redis
) -> None:
    """Fires 1..3 s were never sent; 4 and 5 were never queued; now is 5.5 s."""
    config = await started(
        session, redis, scheduler_type="interval", schedule_config={"seconds": 1}
    )
    now = T0 + timedelta(seconds=5, milliseconds=500)

    await reconcile(redis, now=now, grace=GRACE, existing=all_exist, settle=timedelta(seconds=2))

    assert await fires(redis, config.id) == [T0 + timedelta(seconds=s) for s in (5, 6, 7, 8)]
    [missed] = await events(redis, config.id, "missed")
    assert missed["count"] == 4


async def test_a_config_missing_from_the_database_is_forgotten_on_the_second_pass(
    redis: Redis,
) -> None:
    """One pass may see a config being created in Redis before its row is committed."""
    orphan, creating = 987650001, 987650002
    for config_id in (orphan, creating):
        await set_schedule_state(redis, config_id, schedule_state.ScheduleState("paused"))
    committed: set[int] = set()

    async def existing(config_ids: set[int]) -> set[int]:
        return config_ids & committed

    suspects = await reconcile(redis, now=T0, grace=GRACE, existing=existing)
    assert suspects == {orphan, creating}
    assert (await schedule_state.read_state(redis, orphan)).status == "paused"

    committed.add(creating)  # its commit lands between the passes
    suspects = await reconcile(redis, now=T0, grace=GRACE, existing=existing, suspects=suspects)
    assert suspects == frozenset()
    assert (await schedule_state.read_state(redis, orphan)).status == "inactive"
    assert (await schedule_state.read_state(redis, creating)).status == "paused"


async def test_after_fire_drops_a_claimed_past_entry_and_keeps_three_ahead(
    session: AsyncSession, redis: Redis
) -> None:
    """Replica A sent 12:01 (claim `sent`) and died before its bookkeeping; B sends 12:02."""
    config = await every_minute(session, redis)
    entries = await schedule_state.queued_entries(redis, config.id)
    await redis.set(
        schedule_state.claim_key(config.id, schedule_state.to_ms(entries[0][1])),
        schedule_state.SENT + "a-replica",
    )
    await redis.set(
        schedule_state.claim_key(config.id, schedule_state.to_ms(entries[1][1])), "b-replica"
    )

    now = T0 + 2 * MINUTE + timedelta(milliseconds=50)
    await schedule_entries.after_fire(redis, entries[1][0], task_id="t", now=now)

    assert await fires(redis, config.id) == [T0 + n * MINUTE for n in (3, 4, 5)]
    assert (await schedule_state.read_state(redis, config.id)).next_run_at == T0 + 3 * MINUTE
    fired = {e["fire_at"] for e in await events(redis, config.id, "fired")}
    assert fired == {(T0 + MINUTE).isoformat(), (T0 + 2 * MINUTE).isoformat()}


async def test_after_fire_keeps_an_unsent_past_entry_but_not_as_the_next_run(
    session: AsyncSession, redis: Redis
) -> None:
    """12:01's send failed and waits for its retry while 12:02 goes out."""
    config = await every_minute(session, redis)
    entries = await schedule_state.queued_entries(redis, config.id)
    await redis.set(
        schedule_state.claim_key(config.id, schedule_state.to_ms(entries[1][1])), "b-replica"
    )

    now = T0 + 2 * MINUTE + timedelta(milliseconds=50)
    await schedule_entries.after_fire(redis, entries[1][0], now=now)

    assert await fires(redis, config.id) == [T0 + n * MINUTE for n in (1, 3, 4, 5)]
    assert (await schedule_state.read_state(redis, config.id)).next_run_at == T0 + 3 * MINUTE
