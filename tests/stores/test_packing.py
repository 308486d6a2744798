"""Commands packed by hiredis (backend/services/redis/packing.py): the same bytes as
redis-py's own packer, and the same refusals."""

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

from backend.services.redis.packing import PackedConnection

COMMANDS = [
    ("SET", "key", "value"),
    ("EVALSHA", "f" * 40, 2, "k:1", "k:2", 1.5, 1733100000.123456, -3, 0, 10**20, 1e-7),
    ("HSET", "h", "name", "é ✓ 名前", "raw", b"\x00\xff"),
    ("CONFIG GET", "maxmemory"),  # a command name of two words
    (b"CLIENT SETNAME", "taskhub"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: str(c[0]))
def test_the_bytes_are_redis_pys(command: tuple[object, ...]) -> None:
    ours = b"".join(PackedConnection().pack_command(*command))  # type: ignore[arg-type]
    theirs = b"".join(Connection().pack_command(*command))  # type: ignore[arg-type]
    assert ours == theirs


@pytest.mark.parametrize("value", [True, None])
def test_a_value_redis_py_refuses_is_still_refused(value: object) -> None:
    with pytest.raises(DataError):
        PackedConnection().pack_command("SET", "key", value)  # type: ignore[arg-type]


async def test_the_client_uses_it(redis: Redis) -> None:
    assert redis.connection_pool.connection_class is PackedConnection
    assert await redis.ping()
