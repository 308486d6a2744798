"""ORM tables (what is static or final lives in PostgreSQL). The closed value sets of the
data both stores hold (roles, overlap policies, run triggers, schedule statuses) live in
backend/value_sets.py, which the scheduler imports without SQLAlchemy; they are named here
too."""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backend.db import Base
from backend.value_sets import (  # noqa: F401 (the value sets, named beside the tables too)
    CHANNEL_KINDS,
    DELIVERY_STATUSES,
    OVERLAP_POLICIES,
    ROLES,
    SCHEDULE_STATUSES,
    SCHEDULER_TYPES,
    TRIGGERS,
    AlertEvent,
    ChannelKind,
    DeliveryStatus,
    OverlapPolicy,
    Role,
    ScheduleStatus,
    Trigger,
    role_rank,
)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class User(Timestamped, Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str | None] = mapped_column(String(255))
    hashed_password: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    role: Mapped[str] = mapped_column(String(16), default="viewer", server_default="viewer")


class TaskConfig(Timestamped, Base):
    __tablename__ = "task_configs"
    __table_args__ = (
        CheckConstraint(_in("scheduler_type", SCHEDULER_TYPES), name="scheduler_type"),
        CheckConstraint(_in("overlap_policy", OVERLAP_POLICIES), name="overlap_policy"),
        CheckConstraint("max_retries BETWEEN 0 AND 10", name="max_retries"),
        CheckConstraint("timeout_seconds BETWEEN 1 AND 86400", name="timeout_seconds"),
        CheckConstraint("priority BETWEEN 0 AND 9", name="priority"),
        CheckConstraint("pause_after_failures BETWEEN 1 AND 100", name="pause_after_failures"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    task_type: Mapped[str] = mapped_column(String(200))
    scheduler_type: Mapped[str] = mapped_column(String(16))
    schedule_config: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    max_retries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    timeout_seconds: Mapped[int] = mapped_column(Integer, default=300, server_default="300")
    priority: Mapped[int] = mapped_column(Integer, default=5, server_default="5")
    overlap_policy: Mapped[str] = mapped_column(String(16), default="skip", server_default="skip")
    # {"channel_ids", "on", "after_consecutive_failures", "late_after_seconds"} or None.
    alerts: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    pause_after_failures: Mapped[int | None] = mapped_column(Integer)


class TaskConfigCount(Base):
    """The number of task configs, one row kept by triggers on task_configs (migration 0005):
    the unfiltered list page reads its total here rather than counting every row."""

    __tablename__ = "task_config_count"
    __table_args__ = (CheckConstraint("one_row", name="one_row"),)

    one_row: Mapped[bool] = mapped_column(primary_key=True, server_default=true())
    total: Mapped[int] = mapped_column(BigInteger)


class TaskExecution(Base):
    __tablename__ = "task_executions"
    __table_args__ = (
        CheckConstraint(_in("trigger", TRIGGERS), name="trigger"),
        Index("ix_task_executions_config_started", "config_id", "started_at"),
        Index("ix_task_executions_started_at", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # SET NULL: a run of a deleted config keeps its record.
    config_id: Mapped[int | None] = mapped_column(
        ForeignKey("task_configs.id", ondelete="SET NULL")
    )
    task_id: Mapped[str] = mapped_column(String(64), unique=True)
    is_success: Mapped[bool] = mapped_column(Boolean)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    duration_seconds: Mapped[float] = mapped_column(Float)
    result: Mapped[Any | None] = mapped_column(JSONB)
    error_message: Mapped[str | None] = mapped_column(Text)
    trigger: Mapped[str] = mapped_column(String(16))
    # The nominal fire time (before jitter) of a scheduled or backfill run; None for manual.
    scheduled_for: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class ApiToken(Base):
    """A long-lived bearer token for scripts: only its SHA-256 is stored (the secret has full
    entropy, so a fast hash is enough and lets every request look it up by hash)."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        CheckConstraint(_in("role", ROLES), name="role"),
        Index("ix_api_tokens_user_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEvent(Base):
    """One change: who (user, token, username at the time), what, to which target, when."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_at", "at"),
        Index("ix_audit_events_target", "target_type", "target_id", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # No foreign keys: the trail outlives the users, tokens and configs it names.
    actor_user_id: Mapped[int | None] = mapped_column(Integer)
    actor_token_id: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str | None] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[int | None] = mapped_column(Integer)
    target_name: Mapped[str | None] = mapped_column(String(320))
    changes: Mapped[Any] = mapped_column(JSONB, default=dict)
    request_id: Mapped[str | None] = mapped_column(String(128))


class NotificationChannel(Timestamped, Base):
    __tablename__ = "notification_channels"
    __table_args__ = (CheckConstraint(_in("kind", CHANNEL_KINDS), name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class AlertInbox(Base):
    """Happenings that may call for a notification (a run of an alerting config ended, fires
    were missed, a fire is late), waiting for the notifier to turn them into deliveries.

    Written in the same statement or transaction as what they report, so none is lost."""

    __tablename__ = "alert_inbox"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # run | missed | late
    config_id: Mapped[int] = mapped_column(Integer)
    task_id: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AlertState(Base):
    """Per config: the current failure streak and what was last notified of it."""

    __tablename__ = "alert_state"

    config_id: Mapped[int] = mapped_column(
        ForeignKey("task_configs.id", ondelete="CASCADE"), primary_key=True
    )
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    scheduled_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    notified_failure: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")


class NotificationDelivery(Base):
    """One event to one channel: the durable queue the notifier sends from, and its record.

    Unique per (event, channel): however many processes see the event, it is sent once."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        CheckConstraint(_in("status", DELIVERY_STATUSES), name="status"),
        UniqueConstraint("event_id", "channel_id", name="uq_notification_deliveries_event"),
        Index("ix_notification_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(200))
    event: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[int | None] = mapped_column(
        ForeignKey("notification_channels.id", ondelete="SET NULL")
    )
    config_id: Mapped[int | None] = mapped_column(Integer)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    last_status: Mapped[int | None] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
