"""Notification channels (webhook, Slack, e-mail), the deliveries queued for them, and the
sending of due deliveries (by the notifier in each worker process).

The deliveries table is the durable queue: a delivery row is written in the same transaction
as the decision to notify, unique per (event, channel), and sent by whichever notifier locks
it first (FOR UPDATE SKIP LOCKED), retried with backoff on a timeout, connection error or 5xx.
"""

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend import metrics
from backend.config import Settings
from backend.errors import Conflict, InvalidInput, NotFound
from backend.models import NotificationChannel, NotificationDelivery, TaskConfig
from backend.schemas.notifications import (
    CONFIG_MODELS,
    MASK,
    SECRET_KEYS,
    ChannelCreate,
    ChannelRead,
    ChannelUpdate,
    TestDelivery,
)
from backend.services import audit, delivery
from backend.services.audit import Actor

logger = logging.getLogger(__name__)

SEND_BATCH = 10


def _checked_config(kind: str, config: dict[str, Any], *, settings: Settings) -> dict[str, Any]:
    try:
        model = CONFIG_MODELS[kind].model_validate(config)
    except ValidationError as exc:
        fields = [
            {"loc": ["config", *e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False)
        ]
        raise InvalidInput("Invalid channel config", fields=fields) from exc
    if kind == "email" and settings.smtp_host is None:
        raise InvalidInput(
            "E-mail channels need an SMTP server: SMTP_HOST is not set",
            fields=[{"loc": ["kind"], "msg": "SMTP_HOST is not set", "type": "value_error"}],
        )
    return model.model_dump(mode="json")


def present(channel: NotificationChannel) -> ChannelRead:
    masked = {
        key: MASK if key in SECRET_KEYS[channel.kind] and value else value
        for key, value in channel.config.items()
    }
    return ChannelRead(
        id=channel.id, name=channel.name, kind=channel.kind,  # type: ignore[arg-type]
        config=masked, created_at=channel.created_at, updated_at=channel.updated_at,
    )  # fmt: skip


async def _flush(session: AsyncSession, name: str) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"A channel named {name!r} already exists") from exc


async def create_channel(
    session: AsyncSession, *, data: ChannelCreate, settings: Settings, actor: Actor
) -> ChannelRead:
    config = _checked_config(data.kind, data.config, settings=settings)
    channel = NotificationChannel(name=data.name, kind=data.kind, config=config)
    session.add(channel)
    await _flush(session, data.name)
    await session.refresh(channel)
    read = present(channel)
    _audit(
        session, channel, actor=actor, action="channel.create", changes=read.model_dump(mode="json")
    )
    await session.commit()
    return read


async def get_channel(session: AsyncSession, *, channel_id: int) -> NotificationChannel:
    channel = await session.get(NotificationChannel, channel_id)
    if channel is None:
        raise NotFound(f"Channel {channel_id} not found")
    return channel


async def update_channel(
    session: AsyncSession,
    *,
    channel: NotificationChannel,
    data: ChannelUpdate,
    settings: Settings,
    actor: Actor,
) -> ChannelRead:
    before = present(channel).model_dump(mode="json")
    if data.name is not None:
        channel.name = data.name
    if data.config is not None:
        # A secret sent back as *** (read, edited, sent whole) keeps its stored value.
        sent = {k: channel.config.get(k) if v == MASK else v for k, v in data.config.items()}
        channel.config = _checked_config(channel.kind, sent, settings=settings)
    await _flush(session, channel.name)
    await session.refresh(channel)
    read = present(channel)
    if changes := audit.diff(before, read.model_dump(mode="json")):
        _audit(session, channel, actor=actor, action="channel.update", changes=changes)
    await session.commit()
    return read


async def delete_channel(
    session: AsyncSession, *, channel: NotificationChannel, actor: Actor
) -> None:
    users = await session.scalars(
        select(TaskConfig.name).where(
            TaskConfig.alerts["channel_ids"].contains([channel.id])  # type: ignore[index]
        )
    )
    names = list(users)
    if names:
        raise Conflict(f"Channel {channel.id} is used by configs: {', '.join(sorted(names))}")
    _audit(
        session, channel, actor=actor, action="channel.delete",
        changes=present(channel).model_dump(mode="json"),
    )  # fmt: skip
    await session.delete(channel)
    await session.commit()


def _audit(
    session: AsyncSession,
    channel: NotificationChannel,
    *,
    actor: Actor,
    action: str,
    changes: dict[str, Any],
) -> None:
    audit.record(
        session, actor=actor, action=action, target_type="channel", target_id=channel.id,
        target_name=channel.name, changes=changes,
    )  # fmt: skip


async def list_channels(session: AsyncSession) -> list[ChannelRead]:
    rows = await session.scalars(select(NotificationChannel).order_by(NotificationChannel.id))
    return [present(channel) for channel in rows]


async def missing_channels(session: AsyncSession, channel_ids: list[int]) -> list[int]:
    """The ids of those that name no channel (for a config's alert rules)."""
    query = select(NotificationChannel.id).where(NotificationChannel.id.in_(channel_ids))
    found = set(await session.scalars(query))
    return [channel_id for channel_id in channel_ids if channel_id not in found]


async def send_test(channel: NotificationChannel, *, settings: Settings) -> TestDelivery:
    """Send a test event now, not through the queue, and say how it went."""
    now = datetime.now(UTC).isoformat()
    payload = {
        "event_id": f"test:{uuid.uuid4().hex}", "event": "test", "at": now,
        "config": None, "run": None, "consecutive_failures": 0, "fire_time": None,
        "console_url": f"{settings.public_url.rstrip('/')}/console/",
    }  # fmt: skip
    sent = await delivery.send(channel.kind, channel.config, payload, settings=settings)
    return TestDelivery(delivered=sent.delivered, status=sent.status, error=sent.error)


def queue(
    session: AsyncSession,
    *,
    event_id: str,
    event: str,
    config_id: int | None,
    channel_ids: list[int],
    payload: dict[str, Any],
) -> Any:
    """The statement queueing the event for each channel; a repeat of the event adds none."""
    rows = [
        {
            "event_id": event_id,
            "event": event,
            "channel_id": channel_id,
            "config_id": config_id,
            "payload": payload,
        }
        for channel_id in channel_ids
    ]
    return (
        insert(NotificationDelivery)
        .values(rows)
        .on_conflict_do_nothing(constraint="uq_notification_deliveries_event")
    )


async def send_due(sessionmaker: async_sessionmaker[AsyncSession], *, settings: Settings) -> int:
    """Send the deliveries that are due, a few at a time; returns how many were tried."""
    async with sessionmaker() as session:
        due = (
            select(NotificationDelivery)
            .where(
                NotificationDelivery.status == "pending",
                NotificationDelivery.next_attempt_at <= func.now(),
            )
            .order_by(NotificationDelivery.id)
            .limit(SEND_BATCH)
            .with_for_update(skip_locked=True)
        )
        rows = list(await session.scalars(due))
        channels = {
            c.id: c
            for c in await session.scalars(
                select(NotificationChannel).where(
                    NotificationChannel.id.in_({r.channel_id for r in rows if r.channel_id})
                )
            )
        }
        # At once: one slow receiver (up to its timeout) must not hold up the others.
        await asyncio.gather(
            *(_attempt(row, channels.get(row.channel_id or 0), settings=settings) for row in rows)
        )
        await session.commit()
    return len(rows)


async def _attempt(
    row: NotificationDelivery, channel: NotificationChannel | None, *, settings: Settings
) -> None:
    row.attempts += 1
    if channel is None:  # deleted since the event was queued
        sent = delivery.Sent(delivered=False, error="the channel was deleted", final=True)
    else:
        sent = await delivery.send(channel.kind, channel.config, row.payload, settings=settings)
    row.last_status, row.last_error = sent.status, sent.error
    kind = channel.kind if channel else "deleted"
    if sent.delivered:
        row.status, row.delivered_at = "delivered", datetime.now(UTC)
        metrics.notification_sent(kind, outcome="delivered")
        return
    if sent.final or row.attempts >= settings.notification_attempts:
        row.status = "failed"
        metrics.notification_sent(kind, outcome="failed")
        logger.warning(
            "notification %s to channel %s failed: %s", row.event_id, row.channel_id, sent.error
        )
        return
    # Backoff: 15 s, then 45 s: three attempts span about a minute.
    delay = settings.notification_retry_seconds * 3 ** (row.attempts - 1)
    row.next_attempt_at = datetime.now(UTC) + timedelta(seconds=delay)
    metrics.notification_sent(kind, outcome="retrying")


def _delivery_conditions(
    *, channel_id: int | None, config_id: int | None, status: str | None
) -> list[ColumnElement[bool]]:
    d = NotificationDelivery
    conditions: list[ColumnElement[bool]] = []
    if channel_id is not None:
        conditions.append(d.channel_id == channel_id)
    if config_id is not None:
        conditions.append(d.config_id == config_id)
    if status is not None:
        conditions.append(d.status == status)
    return conditions


async def deliveries_page(
    session: AsyncSession,
    *,
    channel_id: int | None,
    config_id: int | None,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[list[NotificationDelivery], int]:
    conditions = _delivery_conditions(channel_id=channel_id, config_id=config_id, status=status)
    total = await session.scalar(select(func.count(NotificationDelivery.id)).where(*conditions))
    query = select(NotificationDelivery).where(*conditions).order_by(NotificationDelivery.id.desc())
    rows = await session.scalars(query.limit(limit).offset(offset))
    return list(rows), total or 0
