"""The closed value sets of the data both stores hold: roles, channel kinds, alert events,
delivery statuses, overlap policies, run triggers, schedule statuses.

Apart from the tables (backend/models.py, which imports them from here) so that a process
holding no ORM (the scheduler) can name them without importing SQLAlchemy.
"""

from typing import Literal, get_args

from backend.triggers.specs import SchedulerType

ChannelKind = Literal["webhook", "slack", "email"]
AlertEvent = Literal["failure", "recovery", "missed", "late", "paused"]
DeliveryStatus = Literal["pending", "delivered", "failed"]
# Ordered: each role may do what the ones before it may.
Role = Literal["viewer", "operator", "admin"]
OverlapPolicy = Literal["skip", "allow", "buffer_one", "cancel_other"]
Trigger = Literal["scheduled", "manual", "backfill"]
# Lives in Redis (the scheduler store), not in a column: `inactive` is the absence of a state.
ScheduleStatus = Literal["inactive", "active", "paused", "completed"]

ROLES: tuple[Role, ...] = get_args(Role)
CHANNEL_KINDS: tuple[str, ...] = get_args(ChannelKind)
DELIVERY_STATUSES: tuple[str, ...] = get_args(DeliveryStatus)
SCHEDULER_TYPES: tuple[str, ...] = get_args(SchedulerType)
OVERLAP_POLICIES: tuple[str, ...] = get_args(OverlapPolicy)
TRIGGERS: tuple[str, ...] = get_args(Trigger)
SCHEDULE_STATUSES: tuple[ScheduleStatus, ...] = get_args(ScheduleStatus)


def role_rank(role: Role) -> int:
    return ROLES.index(role)
