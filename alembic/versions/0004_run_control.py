"""run control: backfill trigger, scheduled_for, buffer_one and cancel_other policies

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 23:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "task_executions", sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=True)
    )
    op.drop_constraint(op.f("ck_task_executions_trigger"), "task_executions", type_="check")
    op.create_check_constraint(
        "trigger", "task_executions", "trigger IN ('scheduled', 'manual', 'backfill')"
    )
    op.alter_column(
        "task_configs",
        "overlap_policy",
        type_=sa.String(length=16),
        existing_type=sa.String(length=8),
        existing_server_default="skip",
    )
    op.drop_constraint(op.f("ck_task_configs_overlap_policy"), "task_configs", type_="check")
    op.create_check_constraint(
        "overlap_policy",
        "task_configs",
        "overlap_policy IN ('skip', 'allow', 'buffer_one', 'cancel_other')",
    )


def downgrade() -> None:
    op.execute("DELETE FROM task_executions WHERE trigger = 'backfill'")
    op.execute(
        "UPDATE task_configs SET overlap_policy = 'skip'"
        " WHERE overlap_policy IN ('buffer_one', 'cancel_other')"
    )
    op.drop_constraint(op.f("ck_task_configs_overlap_policy"), "task_configs", type_="check")
    op.create_check_constraint(
        "overlap_policy", "task_configs", "overlap_policy IN ('skip', 'allow')"
    )
    op.alter_column(
        "task_configs",
        "overlap_policy",
        type_=sa.String(length=8),
        existing_type=sa.String(length=16),
        existing_server_default="skip",
    )
    op.drop_constraint(op.f("ck_task_executions_trigger"), "task_executions", type_="check")
    op.create_check_constraint("trigger", "task_executions", "trigger IN ('scheduled', 'manual')")
    op.drop_column("task_executions", "scheduled_for")
