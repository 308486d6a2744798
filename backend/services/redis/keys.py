"""Key names and the client: every key starts with the configured prefix, so tests isolate."""

from redis.asyncio import Redis

from backend.config import get_settings


def key(*parts: str | int) -> str:
    return ":".join([get_settings().redis_prefix, *map(str, parts)])


def create_client(url: str) -> Redis:
    """A client with its own lazily-connecting pool; `await client.aclose()` closes both."""
    return Redis.from_url(url, decode_responses=True)
