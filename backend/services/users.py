"""User rules: lookups, the cached record for authenticated requests, create and update."""

import asyncio
import logging

from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.errors import Conflict
from backend.models import User, role_rank
from backend.schemas.users import UserCreate, UserRead, UserUpdate
from backend.security import hash_password
from backend.services import audit
from backend.services.audit import Actor
from backend.services.redis import auth as auth_store
from backend.services.redis import cache

logger = logging.getLogger(__name__)


async def get(session: AsyncSession, *, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def get_by_email(session: AsyncSession, *, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == email))


def normalize_login(login: str) -> str:
    """Emails are stored lower-case and usernames never contain "@"."""
    return login.lower() if "@" in login else login


async def get_by_login(session: AsyncSession, *, login: str) -> User | None:
    """By email if `login` has an "@", else by username."""
    login = normalize_login(login)
    if "@" in login:
        return await get_by_email(session, email=login)
    return await session.scalar(select(User).where(User.username == login))


async def get_cached(session: AsyncSession, redis: Redis, *, user_id: int) -> UserRead | None:
    """The record from the user cache; on a miss from the database, then cached."""
    cached = await cache.get_user(redis, user_id)
    if cached is not None:
        return cached
    return await load_into_cache(session, redis, user_id=user_id)


async def load_into_cache(session: AsyncSession, redis: Redis, *, user_id: int) -> UserRead | None:
    """The record from the database, put in the user cache (after a cache miss)."""
    user = await get(session, user_id=user_id)
    if user is None:
        return None
    record = UserRead.model_validate(user)
    await cache.fill_user(redis, record)
    return record


async def list_page(session: AsyncSession, *, limit: int, offset: int) -> tuple[list[User], int]:
    total = await session.scalar(select(func.count()).select_from(User))
    rows = await session.scalars(select(User).order_by(User.id).limit(limit).offset(offset))
    return list(rows), total or 0


async def create(session: AsyncSession, *, data: UserCreate, actor: Actor) -> User:
    await _refuse_taken(session, email=data.email, username=data.username)
    hashed = await asyncio.to_thread(hash_password, data.password)
    values = data.model_dump(exclude={"password", "is_superuser"})
    user = User(**values | {"role": data.role or "viewer"}, hashed_password=hashed)
    session.add(user)
    await _flush(session)
    await session.refresh(user)  # created_at and updated_at are set by the database
    audit.record(
        session, actor=actor, action="user.create", target_type="user", target_id=user.id,
        target_name=user.username, changes=UserRead.model_validate(user).model_dump(mode="json"),
    )  # fmt: skip
    await _commit(session)
    logger.info("created user %s", user.id)
    return user


async def _refuse_losing_the_last_admin(
    session: AsyncSession, *, user: User, changes: dict[str, object], actor: Actor
) -> None:
    """409 for a change that would leave no active admin, or an admin locking out themselves.

    The active admins' rows are locked (FOR UPDATE) until the commit, so two demotions of the
    last two admins at once cannot both pass."""
    stays_admin = changes.get("role", user.role) == "admin"
    stays_active = changes.get("is_active", user.is_active) is True
    losing = user.role == "admin" and user.is_active and not (stays_admin and stays_active)
    demoted = role_rank(changes.get("role", user.role)) < role_rank(user.role)  # type: ignore[arg-type]
    if user.id == actor.user_id and (demoted or not stays_active):
        raise Conflict("You cannot deactivate or demote yourself")
    if not losing:
        return
    admins = select(User.id).where(User.role == "admin", User.is_active.is_(True))
    if len((await session.scalars(admins.with_for_update())).all()) <= 1:
        raise Conflict("The last active admin cannot be demoted or deactivated")


async def update(
    session: AsyncSession, redis: Redis, *, user: User, data: UserUpdate, actor: Actor
) -> User:
    """Apply the fields sent. The cached record is replaced at once; a password change or a
    deactivation also revokes the user's refresh tokens."""
    changes = data.model_dump(exclude_unset=True, exclude={"is_superuser"})
    await _refuse_losing_the_last_admin(session, user=user, changes=changes, actor=actor)
    before = UserRead.model_validate(user).model_dump(mode="json")
    await _refuse_taken(
        session, email=changes.get("email"), username=changes.get("username"), user_id=user.id
    )
    password = changes.pop("password", None)
    if password is not None:
        user.hashed_password = await asyncio.to_thread(hash_password, password)
    for field, value in changes.items():
        setattr(user, field, value)
    # Redis first: if it is down the change fails as a whole (503) instead of committing
    # while a stale cached record or live refresh tokens keep the old state in force.
    await cache.drop_user(redis, user_id=user.id)
    if password is not None or changes.get("is_active") is False:
        await auth_store.revoke_user(redis, user_id=user.id)
    after = {**changes, **({"password": audit.CHANGED} if password is not None else {})}
    if changed := audit.diff(before, after):
        audit.record(
            session, actor=actor, action="user.update", target_type="user", target_id=user.id,
            target_name=user.username, changes=changed,
        )  # fmt: skip
    await _commit(session)
    await session.refresh(user)  # updated_at is set by the database
    # Again after the commit: a request between the two may have cached the old record.
    await cache.drop_user(redis, user_id=user.id)
    logger.info("updated user %s (%s)", user.id, ", ".join(sorted(data.model_fields_set)))
    return user


async def _refuse_taken(
    session: AsyncSession, *, email: str | None, username: str | None, user_id: int | None = None
) -> None:
    """A clear 409 naming the field; the unique constraints still catch concurrent writes."""
    for field, value in (("email", email), ("username", username)):
        if value is None:
            continue
        query = select(User.id).where(getattr(User, field) == value)
        if user_id is not None:
            query = query.where(User.id != user_id)
        if await session.scalar(query) is not None:
            raise Conflict(f"A user with this {field} already exists")


async def _commit(session: AsyncSession) -> None:
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise Conflict("A user with this email or username already exists") from exc


async def _flush(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        await session.rollback()
        raise Conflict("A user with this email or username already exists") from exc


async def ensure_first_superuser(session: AsyncSession, *, email: str, password: str) -> None:
    """Create the first superuser unless that email exists; safe with several API replicas."""
    email = email.lower()
    if await get_by_email(session, email=email) is not None:
        return
    username = email.split("@", 1)[0]
    if await session.scalar(select(User.id).where(User.username == username)) is not None:
        username = email  # the local part is someone else's username
    statement = (
        insert(User)
        .values(
            email=email,
            username=username,
            hashed_password=hash_password(password),
            is_active=True,
            role="admin",
        )
        .on_conflict_do_nothing(index_elements=["email"])
    )
    created = await session.execute(statement)
    await session.commit()
    if created.rowcount:  # type: ignore[attr-defined]
        logger.info("created first superuser %s", email)
