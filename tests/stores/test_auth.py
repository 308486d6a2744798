"""The `auth` Redis store on its own: rotation, revocation and the per-user token set."""

import random

from redis.asyncio import Redis

from backend.services.redis import auth as auth_store

TTL = 600


def _user_id() -> int:
    return random.randrange(10**8, 10**9)


async def test_a_token_rotates_exactly_once(redis: Redis) -> None:
    user_id = _user_id()
    await auth_store.store_refresh(redis, jti="a1", user_id=user_id, family="fa", ttl_seconds=TTL)
    rotate = {"user_id": user_id, "family": "fa", "ttl_seconds": TTL}
    assert await auth_store.rotate_refresh(redis, old_jti="a1", new_jti="a2", **rotate)
    assert not await auth_store.rotate_refresh(redis, old_jti="a1", new_jti="a3", **rotate)
    assert not await auth_store.rotate_refresh(
        redis, old_jti="a2", new_jti="a4", user_id=user_id, family="other", ttl_seconds=TTL
    ), "a token only rotates within the family it was issued in"
    assert await auth_store.revoke_family(redis, user_id=user_id, family="fa") == 1
    assert not await auth_store.rotate_refresh(redis, old_jti="a2", new_jti="a5", **rotate)


async def test_revoke_user_revokes_every_family(redis: Redis) -> None:
    user_id = _user_id()
    for jti, family in (("b1", "fb1"), ("b2", "fb2")):
        await auth_store.store_refresh(
            redis, jti=jti, user_id=user_id, family=family, ttl_seconds=TTL
        )
    assert await auth_store.revoke_user(redis, user_id=user_id) == 2
    for jti, family in (("b1", "fb1"), ("b2", "fb2")):
        assert not await auth_store.rotate_refresh(
            redis, old_jti=jti, new_jti=jti + "x", user_id=user_id, family=family, ttl_seconds=TTL
        )
    assert await auth_store.revoke_user(redis, user_id=user_id) == 0


async def test_expired_ids_leave_the_user_set_on_the_next_login(redis: Redis) -> None:
    user_id = _user_id()
    user_tokens = auth_store._user_tokens_key(user_id)
    await auth_store.store_refresh(redis, jti="c1", user_id=user_id, family="fc1", ttl_seconds=TTL)
    await redis.zadd(user_tokens, {"c1": 1})  # as if c1 had expired long ago
    await auth_store.store_refresh(redis, jti="c2", user_id=user_id, family="fc2", ttl_seconds=TTL)
    assert await redis.zrange(user_tokens, 0, -1) == ["c2"]
    assert 0 < await redis.ttl(user_tokens) <= TTL
