"""Waiting out a Redis outage (a Sentinel failover takes seconds) where giving up loses a run.

A worker acks a message when it receives it, so a run whose in-flight mark fails is gone:
rather than fail at once, the mark is retried with backoff for REDIS_OUTAGE_WAIT_SECONDS.
The scheduler retries its fires' claims, sent marks and bookkeeping the same way. A call
retried here may have run on the server already (its reply lost with the connection): each
one passed must be safe to run twice.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

T = TypeVar("T")

FIRST_DELAY, MAX_DELAY = 0.05, 1.0


async def while_unreachable(
    call: Callable[..., Awaitable[T]], *args: Any, within: float, **kwargs: Any
) -> T:
    """`await call(*args, **kwargs)`, again while Redis is unreachable, for `within` seconds."""
    deadline = time.monotonic() + within
    delay = FIRST_DELAY
    while True:
        try:
            return await call(*args, **kwargs)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            if time.monotonic() + delay > deadline:
                raise
            logger.warning("Redis unreachable (%s); retrying in %.2f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_DELAY)
