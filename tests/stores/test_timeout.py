"""The timeout store: in-flight marks, the overlap lock, requeue between retries, claims, and
the attempt claim that drops a second delivery."""

import time
import uuid

import pytest
from redis.asyncio import Redis

from backend.services.redis import timeout as live_runs


def new_id() -> str:
    return uuid.uuid4().hex


async def start(redis: Redis, task_id: str, config_id: int, **kw: object) -> str:
    now = time.time()
    values: dict[str, object] = {
        "trigger": "scheduled",
        "attempt": 1,
        "started_at": now,
        "deadline": now + 30,
        "overlap": "allow",
        "ttl": 60,
        **kw,
    }
    attempt = live_runs.Start(task_id=task_id, config_id=config_id, **values)  # type: ignore[arg-type]
    return await live_runs.start(redis, attempt)


async def started(redis: Redis, task_id: str, config_id: int, **kw: object) -> bool:
    return await start(redis, task_id, config_id, **kw) == "started"


async def test_exclusive_start_is_refused_while_another_run_is_in_flight(redis: Redis) -> None:
    first, second = new_id(), new_id()
    await live_runs.mark_queued(
        redis, task_id=second, config_id=700001, trigger="scheduled", ttl=60
    )
    assert await started(redis, first, 700001)
    assert not await started(redis, second, 700001, overlap="skip")
    assert await live_runs.get(redis, second) is None  # the refused run's marker is gone
    # A retry of the running run: its own entry does not block it.
    assert await started(redis, first, 700001, overlap="skip", attempt=2)
    assert not await started(redis, new_id(), 700001, overlap="skip")  # first still holds it
    assert await started(redis, new_id(), 700002, overlap="skip")  # another config's is free


async def test_a_lapsed_lock_does_not_block(redis: Redis) -> None:
    now = time.time()
    assert await started(redis, new_id(), 700003, started_at=now - 10, deadline=now - 1)
    assert await started(redis, new_id(), 700003, overlap="skip")


async def test_finish_releases_the_lock(redis: Redis) -> None:
    task_id = new_id()
    assert await started(redis, task_id, 700004)
    async with redis.pipeline(transaction=True) as pipe:
        live_runs.queue_finish_many(pipe, [(task_id, 700004)])
        await pipe.execute()
    assert await live_runs.get(redis, task_id) is None
    assert await started(redis, new_id(), 700004, overlap="skip")


async def test_requeue_only_touches_the_attempt_that_failed(redis: Redis) -> None:
    task_id = new_id()
    assert await started(redis, task_id, 700005, attempt=2)
    stale = await live_runs.requeue(
        redis, task_id=task_id, config_id=700005, attempt=1, deadline=time.time() + 5, ttl=60
    )
    assert stale == "stale"
    requeued = await live_runs.requeue(
        redis, task_id=task_id, config_id=700005, attempt=2, deadline=time.time() + 5, ttl=60
    )
    assert requeued == "requeued"
    live = await live_runs.get(redis, task_id)
    assert live is not None
    assert (live.state, live.attempt) == ("queued", 2)


async def test_claims_are_exclusive_for_the_lease(redis: Redis) -> None:
    task_id = new_id()
    now = time.time()
    assert await started(redis, task_id, 700006, started_at=now - 5, deadline=now - 1)
    claimed = await live_runs.claim_due(redis, lease_seconds=60)
    assert task_id in [run.task_id for run in claimed]
    again = await live_runs.claim_due(redis, lease_seconds=60)
    assert task_id not in [run.task_id for run in again]


async def test_a_second_delivery_of_an_attempt_is_a_duplicate(redis: Redis) -> None:
    task_id = new_id()
    assert await start(redis, task_id, 700007, deadline=time.time() + 30) == "started"
    before = await live_runs.get(redis, task_id)
    again = await start(
        redis, task_id, 700007, started_at=time.time() + 1, deadline=time.time() + 99
    )
    assert again == "duplicate"
    assert await live_runs.get(redis, task_id) == before  # the first delivery's state, untouched
    assert await start(redis, task_id, 700007, attempt=2) == "started"  # a retry runs
    assert await start(redis, task_id, 700007, attempt=2) == "duplicate"


async def test_a_copy_arriving_after_the_run_ended_is_a_duplicate(redis: Redis) -> None:
    task_id = new_id()
    assert await start(redis, task_id, 700008, ttl=120) == "started"
    async with redis.pipeline(transaction=True) as pipe:
        live_runs.queue_finish_many(pipe, [(task_id, 700008)])
        await pipe.execute()
    assert await start(redis, task_id, 700008) == "duplicate"
    assert await live_runs.get(redis, task_id) is None  # nothing live again
    claim = live_runs._attempt_key(task_id, 1)
    assert 60 < await redis.ttl(claim) <= 120  # kept for the ttl given, then dropped


async def test_a_copy_of_a_refused_run_is_a_duplicate_not_a_second_skip(redis: Redis) -> None:
    running, refused = new_id(), new_id()
    assert await start(redis, running, 700009) == "started"
    assert await start(redis, refused, 700009, overlap="skip") == "overlap"
    assert await start(redis, refused, 700009, overlap="skip") == "duplicate"
    # A duplicate of the running run, exclusive or not, is a duplicate, never an overlap.
    assert await start(redis, running, 700009, overlap="skip") == "duplicate"


async def test_attempts_marked_together_are_admitted_in_order(redis: Redis) -> None:
    """One pipeline for a worker's deliveries: each script on its own, in order, so a copy
    of an attempt in the same batch is its duplicate, and a skip-policy run behind a started
    run of its config is refused."""
    first, other, copy = new_id(), new_id(), new_id()
    now = time.time()

    def attempt(task_id: str, config_id: int, overlap: live_runs.Overlap) -> live_runs.Start:
        return live_runs.Start(
            task_id=task_id, config_id=config_id, trigger="scheduled", attempt=1,
            started_at=now, deadline=now + 30, ttl=60, overlap=overlap,
        )  # fmt: skip

    admissions = await live_runs.start_many(
        redis,
        [
            attempt(first, 700101, "skip"),
            attempt(other, 700101, "skip"),
            attempt(first, 700101, "skip"),
            attempt(copy, 700102, "allow"),
        ],
    )
    assert admissions == ["started", "overlap", "duplicate", "started"]


async def test_a_script_redis_lacks_is_run_with_eval(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a restart or failover Redis has no scripts: EVALSHA fails with NOSCRIPT, and the
    attempt is marked with EVAL instead (not twice, not skipped). A SHA Redis never saw
    stands for the lost script: flushing the scripts would touch other tests' Redis."""
    monkeypatch.setitem(live_runs.scripts.SHA1, live_runs.scripts.START, "0" * 40)
    task_id = new_id()
    assert await started(redis, task_id, 700103)
    assert await start(redis, task_id, 700103) == "duplicate"
