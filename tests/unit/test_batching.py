"""backend/batching.py: which submitted calls share a batch."""

import asyncio

import pytest

from backend.batching import Batcher

pytestmark = pytest.mark.asyncio


def recording(
    batches: list[list[int]], *, max_size: int = 100, quiet: float = 0.0, max_wait: float = 0.0
) -> Batcher[int, int]:
    async def run(items: list[int]) -> list[int]:
        batches.append(items)
        return [item * 10 for item in items]

    return Batcher(run, max_size=max_size, quiet=quiet, max_wait=max_wait)


async def test_calls_of_one_loop_turn_share_a_batch_and_get_their_own_results() -> None:
    batches: list[list[int]] = []
    batcher = recording(batches)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(5)))
    assert results == [0, 10, 20, 30, 40]
    assert batches == [[0, 1, 2, 3, 4]]


async def test_without_quiet_calls_a_little_apart_go_in_batches_of_their_own() -> None:
    batches: list[list[int]] = []
    batcher = recording(batches)

    async def later(item: int) -> int:
        await asyncio.sleep(0.01 * item)
        return await batcher.submit(item)

    await asyncio.gather(*(later(i) for i in range(3)))
    assert batches == [[0], [1], [2]]


async def spaced(batcher: Batcher[int, int], count: int, *, gap: float) -> None:
    async def later(item: int) -> int:
        await asyncio.sleep(gap * item)
        return await batcher.submit(item)

    await asyncio.wait_for(asyncio.gather(*(later(i) for i in range(count))), timeout=10)


async def test_quiet_gathers_calls_that_come_closer_together_than_it() -> None:
    batches: list[list[int]] = []
    await spaced(recording(batches, quiet=0.5, max_wait=5.0), 3, gap=0.01)
    assert batches == [[0, 1, 2]]


async def test_a_batch_waits_no_longer_once_max_size_calls_wait() -> None:
    """A quiet period and a wait far longer than the test's deadline: only the size ends it."""
    batches: list[list[int]] = []
    await spaced(recording(batches, max_size=2, quiet=60.0, max_wait=60.0), 4, gap=0.01)
    assert batches == [[0, 1], [2, 3]]


async def test_max_wait_ends_a_batch_that_calls_keep_joining() -> None:
    batches: list[list[int]] = []
    await spaced(recording(batches, quiet=0.2, max_wait=0.3), 12, gap=0.05)
    assert len(batches) > 1
    assert sorted(item for batch in batches for item in batch) == list(range(12))


async def test_an_error_reaches_every_call_of_its_batch() -> None:
    async def run(items: list[int]) -> list[int]:
        raise ValueError("refused")

    batcher: Batcher[int, int] = Batcher(run, max_size=100)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)
    assert [type(result) for result in results] == [ValueError] * 3
