"""The `cache` store: user records for authenticated requests, kept for five minutes."""

from redis.asyncio import Redis

from backend.schemas.users import UserRead
from backend.services.redis.keys import key

TTL_SECONDS = 300


def _user_key(user_id: int) -> str:
    return key("cache", "user", user_id)


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
