"""The `auth` store: refresh tokens (token id → user and family) and login-failure counters.

Each refresh token id has a key holding "<user id>:<family>" for the token's lifetime, and is
listed in its user's sorted set, scored by expiry (for logout), and in its family's set (one
login and its rotations, for reuse revocation). Scripts keep check-and-change steps atomic.
"""

import time

from redis.asyncio import Redis

from backend.services.redis.keys import key


def _token_key(jti: str) -> str:
    return key("auth", "refresh", jti)


def _token_prefix() -> str:
    return _token_key("")


def _user_tokens_key(user_id: int) -> str:
    return key("auth", "user", user_id, "refresh")


def _family_key(family: str) -> str:
    return key("auth", "family", family)


def _failures_key(subject: str) -> str:
    return key("auth", "login-failures", subject)


def _owner(user_id: int, family: str) -> str:
    return f"{user_id}:{family}"


# KEYS: old token, user zset, family set, new token. ARGV: old jti, new jti, owner, ttl, expiry.
# Replaces the old token only if it is still stored for this user and family.
_ROTATE = """
if redis.call('GET', KEYS[1]) ~= ARGV[3] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[4], ARGV[3], 'EX', ARGV[4])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[2])
redis.call('EXPIRE', KEYS[3], ARGV[4])
return 1
"""

# Token keys are built in these scripts from the members read, so a token added by a
# concurrent rotation cannot slip between reading the ids and deleting their tokens.
# KEYS: family set, user zset. ARGV: token key prefix.
_REVOKE_FAMILY = """
local ids = redis.call('SMEMBERS', KEYS[1])
for _, id in ipairs(ids) do
  redis.call('DEL', ARGV[1] .. id)
  redis.call('ZREM', KEYS[2], id)
end
redis.call('DEL', KEYS[1])
return #ids
"""

# KEYS: user zset. ARGV: token key prefix. Family sets are left to expire: their ids are dead.
_REVOKE_USER = """
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, id in ipairs(ids) do redis.call('DEL', ARGV[1] .. id) end
redis.call('DEL', KEYS[1])
return #ids
"""


async def store_refresh(
    redis: Redis, *, jti: str, user_id: int, family: str, ttl_seconds: int
) -> None:
    """Store the first token of a new family (a login)."""
    now = int(time.time())
    user_tokens = _user_tokens_key(user_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(_token_key(jti), _owner(user_id, family), ex=ttl_seconds)
        # Ids of tokens that expired unused go here, or the set would grow with every login.
        pipe.zremrangebyscore(user_tokens, "-inf", now)
        pipe.zadd(user_tokens, {jti: now + ttl_seconds})
        # Every token has the same lifetime, so the newest decides when the sets may go.
        pipe.expire(user_tokens, ttl_seconds)
        pipe.sadd(_family_key(family), jti)
        pipe.expire(_family_key(family), ttl_seconds)
        await pipe.execute()


async def rotate_refresh(
    redis: Redis, *, old_jti: str, new_jti: str, user_id: int, family: str, ttl_seconds: int
) -> bool:
    """Swap a stored token for its successor; False if it was not stored (used or revoked)."""
    script = redis.register_script(_ROTATE)
    keys = [
        _token_key(old_jti),
        _user_tokens_key(user_id),
        _family_key(family),
        _token_key(new_jti),
    ]
    expiry = int(time.time()) + ttl_seconds
    args: list[str | int] = [old_jti, new_jti, _owner(user_id, family), ttl_seconds, expiry]
    return bool(await script(keys=keys, args=args))


async def revoke_family(redis: Redis, *, user_id: int, family: str) -> int:
    """Revoke every token of one login; returns how many ids the family listed."""
    script = redis.register_script(_REVOKE_FAMILY)
    keys = [_family_key(family), _user_tokens_key(user_id)]
    return int(await script(keys=keys, args=[_token_prefix()]))


async def revoke_user(redis: Redis, *, user_id: int) -> int:
    """Revoke every token of a user; returns how many ids the user's set listed."""
    script = redis.register_script(_REVOKE_USER)
    return int(await script(keys=[_user_tokens_key(user_id)], args=[_token_prefix()]))


async def locked_for(redis: Redis, *, subject: str, max_failures: int) -> int:
    """Seconds until the subject may try again; 0 if it is not locked out."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.get(_failures_key(subject))
        pipe.ttl(_failures_key(subject))
        count, ttl = await pipe.execute()
    if count is None or int(count) < max_failures:
        return 0
    return max(int(ttl), 1)


async def record_failure(redis: Redis, *, subject: str, window_seconds: int) -> int:
    """Count a failed login; the window starts at the first failure. Returns the count."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(_failures_key(subject), 0, ex=window_seconds, nx=True)
        pipe.incr(_failures_key(subject))
        _, count = await pipe.execute()
    return int(count)


async def clear_failures(redis: Redis, *, subject: str) -> None:
    await redis.delete(_failures_key(subject))
