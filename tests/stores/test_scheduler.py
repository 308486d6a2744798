"""The scheduler store: the live state (a hash per config plus a set per status, kept
together) and the fire claims."""

from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from backend.services import schedule_entries
from backend.services.redis import scheduler as schedule_state
from backend.services.redis.keys import key
from tests.support.processes import eventually
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
    await schedule_entries.forget(redis, 910004)
    assert await schedule_state.read_state(redis, 910004) == ScheduleState()
    assert not await redis.exists(key("schedule_state", 910004))
    for status in schedule_state.INDEXED_STATUSES:
        assert not await redis.sismember(key("schedule_status", status), 910004)


# Claims: one replica sends each fire; a claim left unsent past its lease is taken over.

FIRE = datetime(2031, 1, 1, 12, 0, tzinfo=UTC)


async def active_entry(redis: Redis, config_id: int) -> str:
    await set_schedule_state(redis, config_id, ScheduleState("active", FIRE, generation=3))
    return schedule_state.schedule_id(config_id, 3, FIRE)


async def claim(redis: Redis, entry_id: str, owner: str, lease: float = 30) -> schedule_state.Claim:
    [found] = await schedule_state.claim_fires(redis, [entry_id], owner=owner, lease_seconds=lease)
    return found


async def test_a_claim_is_held_for_its_lease_then_sent(redis: Redis) -> None:
    entry = await active_entry(redis, 910010)
    assert await claim(redis, entry, "a:1") == ("ok", 0)
    held = await claim(redis, entry, "b:2")
    assert held.outcome == "held"
    assert 29 < held.lease_left <= 30
    assert await schedule_state.mark_sent(redis, [entry], owner="b:2") == [False]  # not b's
    assert not await schedule_state.release_claim(redis, entry, owner="b:2")
    assert await schedule_state.mark_sent(redis, [entry], owner="a:1") == [True]
    assert await claim(redis, entry, "b:2") == ("sent", 0)
    assert not await schedule_state.release_claim(redis, entry, owner="a:1")  # sent stays


async def test_a_batch_of_claims_answers_each_fire_in_order(redis: Redis) -> None:
    held, fresh, paused = [await active_entry(redis, i) for i in (910015, 910016, 910017)]
    await set_schedule_state(redis, 910017, ScheduleState("paused", FIRE, generation=3))
    stale = schedule_state.schedule_id(910016, 2, FIRE)  # an earlier generation's entry
    assert (await claim(redis, held, "a:1")).outcome == "ok"
    found = await schedule_state.claim_fires(
        redis, [held, fresh, paused, stale], owner="b:2", lease_seconds=30
    )
    assert [c.outcome for c in found] == ["held", "ok", "inactive", "stale"]
    assert 29 < found[0].lease_left <= 30
    assert await schedule_state.mark_sent(redis, [held, fresh], owner="b:2") == [False, True]
    assert await schedule_state.claim_fires(redis, [], owner="b:2", lease_seconds=30) == []
    assert await schedule_state.mark_sent(redis, [], owner="b:2") == []


async def test_an_unsent_claim_past_its_lease_is_taken_over(redis: Redis) -> None:
    entry = await active_entry(redis, 910011)
    assert (await claim(redis, entry, "dead:1", lease=0.001)).outcome == "ok"
    # The lease ends a millisecond later on Redis's clock; poll, never sleep for luck.
    taken = await eventually(lambda: claim(redis, entry, "alive:2"), lambda c: c.outcome != "held")
    assert taken == ("taken_over", 0)
    assert (await claim(redis, entry, "third:3")).outcome == "held"  # now alive:2's, leased
    assert await schedule_state.mark_sent(redis, [entry], owner="dead:1") == [False]
    assert not await schedule_state.release_claim(redis, entry, owner="dead:1")
    assert await schedule_state.mark_sent(redis, [entry], owner="alive:2") == [True]
    [value] = await schedule_state.claim_values(redis, 910011, [FIRE])
    assert value == schedule_state.SENT + "alive:2"
    assert await redis.ttl(schedule_state.claim_key(910011, schedule_state.to_ms(FIRE))) > 0


async def test_a_replica_never_takes_over_its_own_claim(redis: Redis) -> None:
    """Its own send is still under way (a slow burst): a later tick must not send it again."""
    entry = await active_entry(redis, 910014)
    assert (await claim(redis, entry, "slow:1", lease=0.001)).outcome == "ok"
    taken = await eventually(
        lambda: claim(redis, entry, "other:2", lease=0.001), lambda c: c.outcome != "held"
    )
    assert taken.outcome == "taken_over"  # by another replica, past the lease: allowed
    again = await claim(redis, entry, "other:2", lease=0.001)
    assert again.outcome == "held"  # but never by the replica holding it
    assert again.lease_left > 0


async def test_a_claim_batch_run_again_after_a_lost_reply_wins_its_own_claims(
    redis: Redis,
) -> None:
    """The batch's script ran but its reply was lost (a failover): the same batch (attempt)
    run again wins the claims it took, with a fresh lease; another batch of the same replica
    still finds them held (its own send under way), and a fire twice in a batch wins once."""
    entry = await active_entry(redis, 910018)
    twice = await active_entry(redis, 910019)

    async def claims(attempt: str, *entries: str) -> list[schedule_state.Claim]:
        return await schedule_state.claim_fires(
            redis, list(entries), owner="a:1", lease_seconds=30, attempt=attempt
        )

    assert await claims("7", entry, twice, twice) == [("ok", 0), ("ok", 0), ("held", 30)]
    assert [c.outcome for c in await claims("8", entry)] == ["held"]  # another batch
    assert await claims("7", entry, twice, twice) == [("ok", 0), ("ok", 0), ("held", 30)]
    assert (await claim(redis, entry, "b:2")).outcome == "held"  # another replica
    assert await schedule_state.mark_sent(redis, [entry], owner="a:1") == [True]
    assert [c.outcome for c in await claims("7", entry)] == ["sent"]


async def test_a_mark_run_again_after_a_lost_reply_is_still_marked(redis: Redis) -> None:
    entry = await active_entry(redis, 910020)
    assert (await claim(redis, entry, "a:1")).outcome == "ok"
    assert await schedule_state.mark_sent(redis, [entry], owner="a:1") == [True]
    assert await schedule_state.mark_sent(redis, [entry], owner="a:1") == [True]
    assert await schedule_state.mark_sent(redis, [entry], owner="b:2") == [False]
    [value] = await schedule_state.claim_values(redis, 910020, [FIRE])
    assert value == schedule_state.SENT + "a:1"
    async with redis.pipeline(transaction=True) as pipe:  # a catch-up wrote its `fired`
        schedule_state.queue_recorded(pipe, 910020, FIRE, value)
        await pipe.execute()
    assert await schedule_state.mark_sent(redis, [entry], owner="a:1") == [True]
    [value] = await schedule_state.claim_values(redis, 910020, [FIRE])
    assert value == schedule_state.RECORDED + "a:1"  # left recorded


async def test_a_released_claim_can_be_claimed_again(redis: Redis) -> None:
    entry = await active_entry(redis, 910012)
    assert (await claim(redis, entry, "a:1")).outcome == "ok"
    assert await schedule_state.release_claim(redis, entry, owner="a:1")
    assert (await claim(redis, entry, "b:2")).outcome == "ok"


async def test_a_claim_without_a_lease_is_never_taken_over(redis: Redis) -> None:
    """A claim written before leases existed (a replica of the previous version)."""
    entry = await active_entry(redis, 910013)
    await redis.set(schedule_state.claim_key(910013, schedule_state.to_ms(FIRE)), "old:1")
    assert (await claim(redis, entry, "b:2", lease=5)).outcome == "held"


async def test_no_claim_on_a_stale_or_inactive_entry(redis: Redis) -> None:
    entry = await active_entry(redis, 910014)
    stale = schedule_state.schedule_id(910014, 2, FIRE)
    assert (await claim(redis, stale, "a:1")).outcome == "stale"
    await set_schedule_state(redis, 910014, ScheduleState("paused", FIRE, generation=3))
    assert (await claim(redis, entry, "a:1")).outcome == "inactive"


async def test_views_are_the_listed_part_of_each_state_in_one_call(redis: Redis) -> None:
    when = datetime(2031, 3, 30, 1, 0, tzinfo=UTC)
    await set_schedule_state(redis, 910021, ScheduleState("active", when))
    await set_schedule_state(redis, 910022, ScheduleState("paused", note="holiday"))
    views = await schedule_state.read_views(redis, [910021, 910022, 910023])
    assert views == {
        910021: schedule_state.ScheduleView("active", when, None),
        910022: schedule_state.ScheduleView("paused", None, "holiday"),
        910023: schedule_state.ScheduleView("inactive", None, None),  # no state at all
    }
    assert await schedule_state.read_views(redis, []) == {}


async def test_a_view_of_an_unknown_status_is_an_error_not_a_guess(redis: Redis) -> None:
    await redis.hset(schedule_state.state_key(910024), "status", "exploded")
    with pytest.raises(ValueError, match="exploded"):
        await schedule_state.read_views(redis, [910024])


async def test_a_claim_waits_for_replicas_and_is_sent_without_them(
    redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """WAIT ends the claim's round trip; this Redis has no replica, so it times out: the
    claim holds all the same, and the shortfall is logged."""
    entry_id = await active_entry(redis, 910090)
    [found] = await schedule_state.claim_fires(
        redis, [entry_id], owner="a", lease_seconds=30, replicas=1, wait_ms=50
    )
    assert found.outcome == "ok"
    assert "reached 0 of 1 replicas within 50 ms" in caplog.text
