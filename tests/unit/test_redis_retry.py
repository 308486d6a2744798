"""while_unreachable: a call retried while Redis is unreachable, for a bounded time only."""

import time

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from backend.redis_retry import while_unreachable


class Failing:
    """Raises each of `errors` in turn, one per call, then returns `value`."""

    def __init__(self, *errors: Exception, value: str = "done") -> None:
        self.errors = list(errors)
        self.value = value
        self.calls: list[tuple[tuple[object, ...], dict[str, object]]] = []

    async def __call__(self, *args: object, **kwargs: object) -> str:
        self.calls.append((args, kwargs))
        if self.errors:
            raise self.errors.pop(0)
        return self.value


async def test_retries_while_unreachable_then_returns_the_result() -> None:
    call = Failing(RedisConnectionError("refused"), RedisTimeoutError("timed out"))
    assert await while_unreachable(call, "a", within=5, key="b") == "done"
    assert call.calls == [(("a",), {"key": "b"})] * 3  # the same arguments each time


async def test_gives_up_after_within_and_raises_the_last_error() -> None:
    call = Failing(*[RedisConnectionError(f"refused {i}") for i in range(1000)])
    started = time.monotonic()
    with pytest.raises(RedisConnectionError, match="refused"):
        await while_unreachable(call, within=0.3)
    took = time.monotonic() - started
    assert took <= 0.3 + 0.1  # never sleeps past the deadline
    assert 2 <= len(call.calls) < 10  # retried with backoff (50 ms doubling), not in a spin


async def test_within_zero_tries_once() -> None:
    call = Failing(RedisConnectionError("refused"))
    with pytest.raises(RedisConnectionError):
        await while_unreachable(call, within=0)
    assert len(call.calls) == 1


@pytest.mark.parametrize("error", [ResponseError("WRONGTYPE"), ValueError("bad"), OSError("x")])
async def test_does_not_retry_other_errors(error: Exception) -> None:
    call = Failing(error)
    with pytest.raises(type(error)):
        await while_unreachable(call, within=5)
    assert len(call.calls) == 1
