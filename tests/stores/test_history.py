import pytest
from redis.asyncio import Redis

from backend.services.redis import history


async def test_append_and_read_newest_first(redis: Redis) -> None:
    for event in ("created", "started", "fired"):
        await history.append(redis, 900001, event, task_id="t1")
    events, total = await history.read(redis, 900001, limit=2)
    assert total == 3
    assert [e["event"] for e in events] == ["fired", "started"]
    assert events[0]["task_id"] == "t1"
    assert events[0]["at"].endswith("+00:00")


async def test_list_is_capped(redis: Redis) -> None:
    for _ in range(7):
        await history.append(redis, 900002, "fired", cap=5)
    _, total = await history.read(redis, 900002)
    assert total == 5


async def test_unknown_event_is_refused(redis: Redis) -> None:
    with pytest.raises(ValueError, match="unknown history event"):
        await history.append(redis, 900003, "exploded")
