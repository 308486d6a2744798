"""Redis commands packed by hiredis's C packer.

redis-py's synchronous client packs commands with `hiredis.pack_command` when hiredis is
installed; its asyncio client always packs in Python, about 30 µs for the worker's in-flight
mark script (33 arguments) against 6 µs in C, on every run. The bytes are the same (tests/
stores/test_packing.py compares them); a command hiredis cannot pack (a memoryview) falls back
to the Python packer.
"""

import hiredis
from redis.asyncio.connection import Connection
from redis.asyncio.sentinel import SentinelManagedConnection
from redis.typing import EncodableT


class HiredisPacking:
    """Mixed into a redis-py asyncio connection class, before it."""

    def pack_command(self, *args: EncodableT) -> list[bytes]:
        command = args[0]
        # As redis-py does: a command name with spaces ("CONFIG GET") goes as several words.
        if isinstance(command, str):
            args = (*command.encode().split(), *args[1:])
        elif isinstance(command, bytes) and b" " in command:
            args = (*command.split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]  # type: ignore[arg-type]  # stub: a 1-tuple
        except TypeError:
            return super().pack_command(*args)  # type: ignore[misc, no-any-return]


class PackedConnection(HiredisPacking, Connection):
    pass


class PackedSentinelConnection(HiredisPacking, SentinelManagedConnection):
    pass
