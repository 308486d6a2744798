"""The `cache` store: user records and API tokens for authenticated requests, kept for five
minutes, so a request with a warm cache costs no SQL."""

from redis.asyncio import Redis

from backend.schemas.tokens import CachedToken
from backend.schemas.users import UserRead
from backend.services.redis.keys import key

TTL_SECONDS = 300
LAST_USED_EVERY_SECONDS = 60


def _user_key(user_id: int) -> str:
    # v2: records carry `role` since the team-access release; older entries are not read.
    return key("cache", "user-v2", user_id)


def _token_key(token_hash: str) -> str:
    return key("cache", "token", token_hash)


def _token_used_key(token_id: int) -> str:
    return key("cache", "token-used", token_id)


async def get_user(redis: Redis, user_id: int) -> UserRead | None:
    """The cached record, or None on a miss."""
    raw = await redis.get(_user_key(user_id))
    return None if raw is None else UserRead.model_validate_json(raw)


async def fill_user(redis: Redis, user: UserRead) -> None:
    """Cache a record read after a miss. A change drops the entry before and after its
    commit, so a record read before the change cannot outlive it."""
    await redis.set(_user_key(user.id), user.model_dump_json(), ex=TTL_SECONDS, nx=True)


async def drop_user(redis: Redis, user_id: int) -> None:
    await redis.delete(_user_key(user_id))


async def get_token(redis: Redis, token_hash: str) -> CachedToken | None:
    raw = await redis.get(_token_key(token_hash))
    return None if raw is None else CachedToken.model_validate_json(raw)


async def fill_token(redis: Redis, token_hash: str, token: CachedToken) -> None:
    """As fill_user: a revoke drops the entry before and after its commit."""
    await redis.set(_token_key(token_hash), token.model_dump_json(), ex=TTL_SECONDS, nx=True)


async def drop_token(redis: Redis, token_hash: str) -> None:
    await redis.delete(_token_key(token_hash))


async def due_for_last_used(redis: Redis, token_id: int) -> bool:
    """True at most once a minute per token: when its `last_used_at` should be written."""
    return bool(await redis.set(_token_used_key(token_id), 1, ex=LAST_USED_EVERY_SECONDS, nx=True))
