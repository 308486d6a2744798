"""The timeout store's run control: cancel (against a start, atomically), and the overlap
policies buffer_one (one run waits, let go when the last run in flight is recorded) and
cancel_other."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from backend.services.redis import timeout as live_runs
from tests.stores.test_timeout import start

TTL = 120


@pytest.fixture(autouse=True)
async def leave_nothing_due(redis: Redis) -> AsyncIterator[None]:
    """Runs these tests leave in flight must not come due for a reaper in a later test."""
    before = set(await redis.zrange(live_runs._deadlines_key(), 0, -1))
    yield
    left = set(await redis.zrange(live_runs._deadlines_key(), 0, -1)) - before
    if left:
        async with redis.pipeline(transaction=True) as pipe:
            live_runs.queue_finish_many(pipe, [(task_id, None) for task_id in left])
            await pipe.execute()


def new_id() -> str:
    return uuid.uuid4().hex


def config() -> int:
    return 800000 + uuid.uuid4().int % 100000


async def cancel(redis: Redis, task_id: str, config_id: int | None, **kw: object) -> str:
    return await live_runs.cancel(
        redis,
        task_id=task_id,
        config_id=config_id,
        message="Cancelled by ann",
        ttl=TTL,
        **kw,  # type: ignore[arg-type]
    )


async def finish(redis: Redis, task_id: str, config_id: int) -> list[str | None]:
    """What the record path does after a run's record: leave, and let a waiting run go."""
    async with redis.pipeline(transaction=True) as pipe:
        live_runs.queue_finish_many(pipe, [(task_id, config_id)])
        live_runs.queue_promote(pipe, [config_id], lease_seconds=60, ttl=TTL)
        results = await pipe.execute()
    return results[-1:]


async def due(redis: Redis) -> list[str]:
    return [run.task_id for run in await live_runs.claim_due(redis, lease_seconds=60)]


async def test_a_queued_run_cancelled_never_starts_and_is_due_for_its_record(redis: Redis) -> None:
    task_id, config_id = new_id(), config()
    await live_runs.mark_queued(
        redis, task_id=task_id, config_id=config_id, trigger="manual", ttl=TTL
    )
    assert await cancel(redis, task_id, config_id) == "queued"
    assert await start(redis, task_id, config_id, trigger="manual") == "cancelled"
    live = await live_runs.get(redis, task_id)
    assert live is not None
    assert (live.state, live.cancel, live.attempt) == ("cancelled", "Cancelled by ann", 0)
    assert task_id in await due(redis)  # a reaper writes its record now
    assert await cancel(redis, task_id, config_id) == "already"


async def test_a_running_run_is_asked_to_stop_once(redis: Redis) -> None:
    task_id, other, config_id = new_id(), new_id(), config()
    assert await start(redis, task_id, config_id) == "started"
    assert await start(redis, other, config_id) == "started"
    assert await live_runs.cancel_requests(redis, [task_id, other]) == {}
    assert await cancel(redis, task_id, config_id) == "running"
    assert await live_runs.cancel_requests(redis, [task_id, other]) == {task_id: "Cancelled by ann"}
    assert await cancel(redis, task_id, config_id) == "already"
    live = await live_runs.get(redis, task_id)
    assert live is not None
    assert live.state == "running"


async def test_a_sent_fire_without_live_state_is_cancelled_by_its_claim(redis: Redis) -> None:
    config_id = config()
    task_id = f"s{config_id}-{int(time.time() * 1000)}"
    assert await cancel(redis, task_id, config_id) == "gone"  # not known to be sent: nothing
    assert await cancel(redis, task_id, config_id, sent_fire=True) == "queued"
    assert await start(redis, task_id, config_id) == "cancelled"
    live = await live_runs.get(redis, task_id)
    assert live is not None
    assert (live.state, live.trigger, live.config_id) == ("cancelled", "scheduled", config_id)


async def test_a_fire_that_started_first_is_cancelled_running(redis: Redis) -> None:
    config_id = config()
    task_id = f"s{config_id}-{int(time.time() * 1000)}"
    assert await start(redis, task_id, config_id) == "started"
    assert await cancel(redis, task_id, config_id, sent_fire=True) == "running"


async def test_a_finished_or_unknown_run_is_gone(redis: Redis) -> None:
    task_id, config_id = new_id(), config()
    assert await cancel(redis, task_id, config_id) == "gone"
    assert await start(redis, task_id, config_id) == "started"
    await finish(redis, task_id, config_id)
    assert await cancel(redis, task_id, config_id) == "gone"


async def test_a_retry_in_its_backoff_is_cancelled(redis: Redis) -> None:
    task_id, config_id = new_id(), config()
    assert await start(redis, task_id, config_id) == "started"
    requeued = await live_runs.requeue(
        redis, task_id=task_id, config_id=config_id, attempt=1, deadline=time.time() + 99, ttl=TTL
    )
    assert requeued == "requeued"
    assert await cancel(redis, task_id, config_id) == "queued"
    assert await start(redis, task_id, config_id, attempt=2) == "cancelled"
    assert task_id in await due(redis)


async def test_a_cancel_during_an_attempt_that_fails_stops_the_retry(redis: Redis) -> None:
    task_id, config_id = new_id(), config()
    assert await start(redis, task_id, config_id) == "started"
    assert await cancel(redis, task_id, config_id) == "running"
    requeued = await live_runs.requeue(
        redis, task_id=task_id, config_id=config_id, attempt=1, deadline=time.time() + 99, ttl=TTL
    )
    assert requeued == "cancelled"
    assert await start(redis, task_id, config_id, attempt=2) == "cancelled"
    live = await live_runs.get(redis, task_id)
    assert live is not None
    assert (live.state, live.attempt) == ("cancelled", 1)


async def test_buffer_one_keeps_one_waiting_run_and_lets_it_go_after_the_last(
    redis: Redis,
) -> None:
    config_id = config()
    first, manual, waiting, third = new_id(), new_id(), new_id(), new_id()
    assert await start(redis, first, config_id) == "started"
    assert await start(redis, manual, config_id, trigger="manual") == "started"
    buffered = await start(redis, waiting, config_id, overlap="buffer_one", message="<msg>")
    assert buffered == "buffered"
    live = await live_runs.get(redis, waiting)
    assert live is not None
    assert live.state == "waiting"
    assert await start(redis, third, config_id, overlap="buffer_one", message="x") == "overlap"
    # The same delivery again (a redelivery) still waits: one run, one slot.
    assert await start(redis, waiting, config_id, overlap="buffer_one", message="<msg>") == (
        "buffered"
    )

    assert await finish(redis, first, config_id) == [None]  # the manual run is in flight
    assert await finish(redis, manual, config_id) == ["<msg>"]  # let go: its message
    live = await live_runs.get(redis, waiting)
    assert live is not None
    assert (live.state, live.resend) == ("queued", "<msg>")
    # It holds the lock from now on: a fire coming before it starts is refused.
    assert await start(redis, new_id(), config_id, overlap="skip") == "overlap"
    assert await start(redis, waiting, config_id, overlap="buffer_one", message="<msg>") == (
        "started"
    )
    live = await live_runs.get(redis, waiting)
    assert live is not None
    assert (live.state, live.resend) == ("running", None)
    assert await start(redis, waiting, config_id, overlap="buffer_one") == "duplicate"
    assert await finish(redis, waiting, config_id) == [None]


async def test_a_waiting_run_cancelled_never_starts(redis: Redis) -> None:
    config_id = config()
    first, waiting = new_id(), new_id()
    assert await start(redis, first, config_id) == "started"
    assert await start(redis, waiting, config_id, overlap="buffer_one", message="m") == "buffered"
    assert await cancel(redis, waiting, config_id) == "waiting"
    assert await finish(redis, first, config_id) == [None]  # nothing waits any more
    assert await start(redis, waiting, config_id, overlap="buffer_one", message="m") == (
        "cancelled"
    )
    # The slot is free again for the next fire.
    assert await start(redis, new_id(), config_id, overlap="buffer_one") == "started"


async def test_a_let_go_run_not_started_is_due_for_sending_again(redis: Redis) -> None:
    config_id = config()
    first, waiting = new_id(), new_id()
    assert await start(redis, first, config_id) == "started"
    assert await start(redis, waiting, config_id, overlap="buffer_one", message="m") == "buffered"
    async with redis.pipeline(transaction=True) as pipe:
        live_runs.queue_finish_many(pipe, [(first, config_id)])
        live_runs.queue_promote(pipe, [config_id], lease_seconds=-1, ttl=TTL)  # lease over
        await pipe.execute()
    [run] = [r for r in await live_runs.claim_due(redis, lease_seconds=60) if r.task_id == waiting]
    assert (run.state, run.resend) == ("queued", "m")


async def test_cancel_other_cancels_the_runs_in_flight_and_starts(redis: Redis) -> None:
    config_id = config()
    running, retrying, newer = new_id(), new_id(), new_id()
    assert await start(redis, running, config_id) == "started"
    assert await start(redis, retrying, config_id) == "started"
    await live_runs.requeue(
        redis, task_id=retrying, config_id=config_id, attempt=1, deadline=time.time() + 99, ttl=TTL
    )
    started = await start(
        redis, newer, config_id, overlap="cancel_other", cancel_message="Cancelled by policy"
    )
    assert started == "started"
    asked = await live_runs.cancel_requests(redis, [running, retrying, newer])
    assert asked == {running: "Cancelled by policy", retrying: "Cancelled by policy"}
    assert await start(redis, retrying, config_id, attempt=2) == "cancelled"
    live = await live_runs.get(redis, retrying)
    assert live is not None
    assert live.state == "cancelled"
    assert retrying in await due(redis)


async def test_a_cancel_racing_the_start_has_one_clear_outcome(redis: Redis) -> None:
    """Sent at the same moment, many times: either the start wins (the run runs, asked to
    stop) or the cancel does (the run never starts); never both, never neither."""
    outcomes = set()
    for _ in range(40):
        task_id, config_id = new_id(), config()
        await live_runs.mark_queued(
            redis, task_id=task_id, config_id=config_id, trigger="manual", ttl=TTL
        )
        admission, found = await asyncio.gather(
            start(redis, task_id, config_id), cancel(redis, task_id, config_id)
        )
        assert (admission, found) in {("started", "running"), ("cancelled", "queued")}
        outcomes.add((admission, found))
        live = await live_runs.get(redis, task_id)
        assert live is not None
        assert live.cancel == "Cancelled by ann"
        await finish(redis, task_id, config_id)
    assert outcomes  # which wins is up to Redis's order of arrival


async def test_a_waiting_run_that_starts_by_another_copy_leaves_its_place(redis: Redis) -> None:
    """A redelivered copy of a waiting run arriving once the way is free starts it: nothing
    is let go again after it (a second send would only be a duplicate, every lease)."""
    config_id = config()
    first, waiting = new_id(), new_id()
    assert await start(redis, first, config_id) == "started"
    assert await start(redis, waiting, config_id, overlap="buffer_one", message="m") == "buffered"
    async with redis.pipeline(transaction=True) as pipe:  # ended, recorded by a path
        live_runs.queue_finish_many(pipe, [(first, config_id)])  # without the promote
        await pipe.execute()
    assert await start(redis, waiting, config_id, overlap="buffer_one", message="m") == "started"
    assert await finish(redis, waiting, config_id) == [None]  # nothing waits any more
    assert await live_runs.get(redis, waiting) is None
