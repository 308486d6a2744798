"""The scheduler store's live state: a hash per config plus a set per status, kept together."""

from datetime import UTC, datetime

from redis.asyncio import Redis

from backend.services import schedules
from backend.services.redis import scheduler as schedule_state
from backend.services.redis.keys import key
from tests.support.schedule_state import set_schedule_state

ScheduleState = schedule_state.ScheduleState


async def test_unknown_configs_are_inactive(redis: Redis) -> None:
    states = await schedule_state.read_states(redis, [910001, 910002])
    assert states == {910001: ScheduleState(), 910002: ScheduleState()}
    assert states[910001].status == "inactive"
    assert await schedule_state.read_states(redis, []) == {}


async def test_state_round_trips_and_moves_between_status_sets(redis: Redis) -> None:
    when = datetime(2031, 3, 30, 1, 0, tzinfo=UTC)
    await set_schedule_state(redis, 910003, ScheduleState("active", when))
    assert await schedule_state.read_state(redis, 910003) == ScheduleState("active", when)
    assert 910003 in await schedule_state.ids_with_status(redis, "active")
    assert 910003 in await schedule_state.ids_with_status(redis, "inactive")  # i.e. excluded

    await set_schedule_state(redis, 910003, ScheduleState("completed"))
    assert await schedule_state.read_state(redis, 910003) == ScheduleState("completed")
    assert 910003 not in await schedule_state.ids_with_status(redis, "active")
    assert 910003 in await schedule_state.ids_with_status(redis, "completed")


async def test_forget_clears_the_hash_and_every_set(redis: Redis) -> None:
    await set_schedule_state(redis, 910004, ScheduleState("paused"))
    await schedules.forget(redis, 910004)
    assert await schedule_state.read_state(redis, 910004) == ScheduleState()
    assert not await redis.exists(key("schedule_state", 910004))
    for status in schedule_state.INDEXED_STATUSES:
        assert not await redis.sismember(key("schedule_status", status), 910004)
