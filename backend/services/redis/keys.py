"""Key names and the client: every key starts with the configured prefix, so tests isolate."""

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import parse_url
from redis.asyncio.sentinel import Sentinel

from backend.config import Settings, get_settings
from backend.services.redis.packing import PackedConnection, PackedSentinelConnection

SENTINEL_TIMEOUT_SECONDS = 2.0  # a sentinel slower than this is skipped for the next one


def key(*parts: str | int) -> str:
    return ":".join([get_settings().redis_prefix, *map(str, parts)])


def create_client(url: str) -> Redis:
    """A client with its own lazily-connecting pool; `await client.aclose()` closes both.
    A unix:// or rediss:// URL keeps its own connection class (packed in Python)."""
    return Redis.from_url(url, decode_responses=True, connection_class=PackedConnection)


def client_for(settings: Settings) -> Redis:
    """The client every process uses: on REDIS_URL, or on the master the sentinels name.

    With Sentinel each new connection asks the sentinels for the master, so after a failover
    the client reconnects to the new one by itself; meanwhile commands fail with connection
    errors (MasterNotFoundError is one), which the API answers with 503."""
    if not settings.redis_sentinels:
        return create_client(settings.redis_url)
    password = settings.redis_sentinel_password
    sentinel = Sentinel(
        [_address(entry) for entry in settings.redis_sentinels],
        sentinel_kwargs={
            "password": password.get_secret_value() if password else None,
            "socket_timeout": SENTINEL_TIMEOUT_SECONDS,
            "socket_connect_timeout": SENTINEL_TIMEOUT_SECONDS,
        },
    )
    # REDIS_URL still says which database, and the master's own credentials.
    master: dict[str, Any] = {
        k: v for k, v in parse_url(settings.redis_url).items() if k in _MASTER_OPTIONS
    }
    assert settings.redis_sentinel_master is not None  # Settings check they go together
    return sentinel.master_for(
        settings.redis_sentinel_master,
        decode_responses=True,
        connection_class=PackedSentinelConnection,
        **master,
    )


_MASTER_OPTIONS = ("db", "username", "password")


def _address(entry: str) -> tuple[str, int]:
    host, _, port = entry.rpartition(":")
    return host.strip("[]"), int(port)
