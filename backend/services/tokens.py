"""API tokens: long-lived, revocable, role-scoped bearer tokens for scripts and pipelines.

A token is `thk_` + 40 random URL-safe characters; PostgreSQL keeps its SHA-256 only. A
request with a token costs no SQL while the cache is warm (the token by its hash, the user by
id); a revoke drops the cached token, and a user change drops the cached user, so both take
effect on the very next request.
"""

import hashlib
import logging
import secrets
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.errors import Forbidden, NotFound, Unauthorized
from backend.models import ApiToken, Role, role_rank
from backend.schemas.tokens import CachedToken, TokenCreate, TokenCreated, TokenRead
from backend.services import audit
from backend.services.audit import Actor
from backend.services.redis import cache

logger = logging.getLogger(__name__)

PREFIX = "thk_"
SHOWN_PREFIX = 12  # characters of the token kept in clear to tell tokens apart


def is_api_token(bearer: str) -> bool:
    return bearer.startswith(PREFIX)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create(
    session: AsyncSession, *, actor: Actor, actor_role: Role, data: TokenCreate
) -> TokenCreated:
    """Mint a token for the caller, with at most the caller's role (403 above it)."""
    role = data.role or actor_role
    if role_rank(role) > role_rank(actor_role):
        raise Forbidden(f"A token's role may not exceed yours ({actor_role}); asked for {role}")
    secret = PREFIX + secrets.token_urlsafe(30)  # 30 bytes: 40 URL-safe characters
    expires_at = None
    if data.expires_in_days is not None:
        expires_at = datetime.now(UTC) + timedelta(days=data.expires_in_days)
    token = ApiToken(
        user_id=actor.user_id,
        name=data.name,
        role=role,
        token_hash=hash_token(secret),
        prefix=secret[:SHOWN_PREFIX],
        expires_at=expires_at,
    )
    session.add(token)
    await session.flush()
    await session.refresh(token)  # created_at is set by the database
    read = TokenRead.model_validate(token)
    audit.record(
        session, actor=actor, action="token.create", target_type="token", target_id=token.id,
        target_name=token.name, changes=read.model_dump(mode="json"),
    )  # fmt: skip
    await session.commit()
    logger.info("user %s created API token %s (%s)", actor.user_id, token.id, role)
    return TokenCreated(**read.model_dump(), token=secret)


async def list_page(
    session: AsyncSession, *, user_id: int | None, limit: int, offset: int
) -> tuple[list[ApiToken], int]:
    """Tokens newest first: one user's, or everyone's with `user_id=None`."""
    conditions = [] if user_id is None else [ApiToken.user_id == user_id]
    total = await session.scalar(select(func.count(ApiToken.id)).where(*conditions))
    page = select(ApiToken).where(*conditions).order_by(ApiToken.id.desc())
    rows = await session.scalars(page.limit(limit).offset(offset))
    return list(rows), total or 0


async def revoke(
    session: AsyncSession, redis: Redis, *, actor: Actor, actor_role: Role, token_id: int
) -> None:
    """Revoke one's own token, or anyone's as an admin; refused on the very next request."""
    token = await session.get(ApiToken, token_id)
    if token is None or (token.user_id != actor.user_id and actor_role != "admin"):
        raise NotFound(f"API token {token_id} not found")
    if token.revoked_at is not None:
        return
    token.revoked_at = datetime.now(UTC)
    audit.record(
        session, actor=actor, action="token.revoke", target_type="token", target_id=token.id,
        target_name=token.name, changes={"revoked_at": [None, token.revoked_at.isoformat()]},
    )  # fmt: skip
    # As a user change: the cached token goes before and after the commit.
    await cache.drop_token(redis, token.token_hash)
    await session.commit()
    await cache.drop_token(redis, token.token_hash)
    logger.info("user %s revoked API token %s", actor.user_id, token.id)


async def resolve(session: AsyncSession, redis: Redis, *, secret: str) -> CachedToken:
    """The live token a bearer secret names; 401 for an unknown, revoked or expired one."""
    token_hash = hash_token(secret)
    cached = await cache.get_token(redis, token_hash)
    if cached is None:
        row = await session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash))
        if row is None:
            raise Unauthorized("Invalid API token")
        cached = CachedToken(
            id=row.id,
            user_id=row.user_id,
            role=row.role,  # type: ignore[arg-type]  # checked by the table's constraint
            expires_at=row.expires_at,
            revoked=row.revoked_at is not None,
        )
        await cache.fill_token(redis, token_hash, cached)
    if cached.revoked:
        raise Unauthorized("API token has been revoked")
    if cached.expires_at is not None and cached.expires_at <= datetime.now(UTC):
        raise Unauthorized("API token has expired")
    if await cache.due_for_last_used(redis, cached.id):
        await session.execute(
            update(ApiToken).where(ApiToken.id == cached.id).values(last_used_at=func.now())
        )
        await session.commit()
    return cached
