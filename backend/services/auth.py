"""Login with lockout, refresh rotation with reuse detection, logout, and the bearer check
(a JWT access token or an API token) that tells who is calling and with which role."""

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.config import Settings
from backend.errors import TooManyRequests, Unauthorized
from backend.models import ROLES, Role, role_rank
from backend.schemas.auth import TokenPair
from backend.schemas.users import UserRead
from backend.security import decode_token, encode_token, new_token_id, subject_id, verify_password
from backend.services import audit, tokens, users
from backend.services.audit import Actor
from backend.services.redis import auth as auth_store
from backend.services.redis import cache

logger = logging.getLogger(__name__)

# One message for an unknown user, a wrong password and an inactive user: no enumeration.
BAD_CREDENTIALS = "Incorrect username or password"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user, the API token used (if any), and the role in effect (the
    lower of the token's and the user's)."""

    user: UserRead
    role: Role
    token_id: int | None = None

    @property
    def actor(self) -> Actor:
        return Actor(user_id=self.user.id, username=self.user.username, token_id=self.token_id)

    def may(self, role: Role) -> bool:
        return role_rank(self.role) >= role_rank(role)


async def login(
    session: AsyncSession, redis: Redis, *, settings: Settings, username: str, password: str
) -> TokenPair:
    """Check the credentials, counting failures per name typed and per account, so neither
    the other spelling of a login (username vs email) nor a lockout of the whole API helps."""
    login_name = users.normalize_login(username)
    await _refuse_locked(redis, settings=settings, subject=login_name)
    user = await users.get_by_login(session, login=login_name)
    subjects = [login_name] if user is None else [login_name, f"user:{user.id}"]
    if user is not None:
        await _refuse_locked(redis, settings=settings, subject=subjects[1])
    hashed = None if user is None else user.hashed_password
    valid = await asyncio.to_thread(verify_password, password, hashed)
    if user is None or not valid or not user.is_active:
        window = settings.login_window_minutes * 60
        for subject in subjects:
            failures = await auth_store.record_failure(
                redis, subject=subject, window_seconds=window
            )
        who = "an unknown user" if user is None else f"user {user.id}"
        logger.info("login failed for %s (failure %d)", who, failures)
        if failures == settings.login_max_failures:
            audit.record(
                session, actor=None, action="auth.lockout", target_type="user",
                target_id=user.id if user else None, target_name=login_name,
                changes={"failures": failures, "window_minutes": settings.login_window_minutes},
            )  # fmt: skip
            await session.commit()
        raise Unauthorized(BAD_CREDENTIALS)
    for subject in subjects:
        await auth_store.clear_failures(redis, subject=subject)
    family = new_token_id()
    pair, jti = _mint_pair(settings, user_id=user.id, family=family)
    await auth_store.store_refresh(
        redis, jti=jti, user_id=user.id, family=family, ttl_seconds=_refresh_seconds(settings)
    )
    logger.info("user %s logged in", user.id)
    return pair


async def _refuse_locked(redis: Redis, *, settings: Settings, subject: str) -> None:
    retry_after = await auth_store.locked_for(
        redis, subject=subject, max_failures=settings.login_max_failures
    )
    if retry_after:
        raise TooManyRequests("Too many failed logins, try again later", retry_after=retry_after)


async def refresh(
    session: AsyncSession, redis: Redis, *, settings: Settings, refresh_token: str
) -> TokenPair:
    """Swap a refresh token for a new pair. A token that is no longer stored was used or
    revoked already: a replay, so every token of its login is revoked."""
    claims = decode_token(
        refresh_token, secret=settings.jwt_secret.get_secret_value(), expected_type="refresh"
    )
    user_id, family = subject_id(claims), claims.get("family")
    if not isinstance(family, str):
        raise Unauthorized("Invalid token")
    await _active_user(session, redis, user_id=user_id)
    pair, new_jti = _mint_pair(settings, user_id=user_id, family=family)
    rotated = await auth_store.rotate_refresh(
        redis,
        old_jti=claims["jti"],
        new_jti=new_jti,
        user_id=user_id,
        family=family,
        ttl_seconds=_refresh_seconds(settings),
    )
    if not rotated:
        revoked = await auth_store.revoke_family(redis, user_id=user_id, family=family)
        logger.warning("refresh token reuse for user %s: revoked %d tokens", user_id, revoked)
        raise Unauthorized("Refresh token is no longer valid")
    return pair


async def logout(redis: Redis, *, user_id: int) -> None:
    revoked = await auth_store.revoke_user(redis, user_id=user_id)
    logger.info("user %s logged out (%d refresh tokens revoked)", user_id, revoked)


async def authenticate(
    sessions: async_sessionmaker[AsyncSession], redis: Redis, *, settings: Settings, token: str
) -> Principal:
    """Who a bearer token names: an API token (`thk_...`) or a JWT access token. The user
    comes from the user cache, so a warm cache costs no SQL either way, and a JWT with a warm
    cache not even a session (one is opened only for what the caches miss)."""
    if tokens.is_api_token(token):
        async with sessions() as session:
            api_token = await tokens.resolve(session, redis, secret=token)
            user = await _active_user(session, redis, user_id=api_token.user_id)
        role = min(api_token.role, user.role, key=ROLES.index)
        return Principal(user=user, role=role, token_id=api_token.id)
    claims = decode_token(
        token, secret=settings.jwt_secret.get_secret_value(), expected_type="access"
    )
    user_id = subject_id(claims)
    found = await cache.get_user(redis, user_id)
    if found is None:  # only now a session: a warm cache needs none
        async with sessions() as session:
            found = await users.load_into_cache(session, redis, user_id=user_id)
    user = _active(found)
    return Principal(user=user, role=user.role)


async def _active_user(session: AsyncSession, redis: Redis, *, user_id: int) -> UserRead:
    return _active(await users.get_cached(session, redis, user_id=user_id))


def _active(user: UserRead | None) -> UserRead:
    if user is None or not user.is_active:
        raise Unauthorized("User is inactive or unknown")
    return user


def _mint_pair(settings: Settings, *, user_id: int, family: str) -> tuple[TokenPair, str]:
    """A signed access and refresh token; returns the pair and the refresh token's id."""
    secret = settings.jwt_secret.get_secret_value()
    access, access_claims = encode_token(
        subject=str(user_id),
        token_type="access",  # noqa: S106 - a token kind, not a password
        secret=secret,
        lifetime=timedelta(minutes=settings.access_token_minutes),
    )
    refresh_token, refresh_claims = encode_token(
        subject=str(user_id),
        token_type="refresh",  # noqa: S106 - a token kind, not a password
        secret=secret,
        lifetime=timedelta(seconds=_refresh_seconds(settings)),
        extra={"family": family},
    )
    # `exp` in the JWT has whole seconds; report exactly that instant.
    expires_at = access_claims["exp"].replace(microsecond=0)
    pair = TokenPair(access_token=access, refresh_token=refresh_token, expires_at=expires_at)
    return pair, refresh_claims["jti"]


def _refresh_seconds(settings: Settings) -> int:
    return settings.refresh_token_days * 86400
