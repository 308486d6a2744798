"""task_config_count: the number of task configs, kept by triggers for the list page's total

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 17:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Statement-level triggers with transition tables: one UPDATE of the counter per statement,
# whatever the number of rows it inserted or deleted (a bulk import of 100,000 is one).
_COUNT_CHANGED = """
CREATE FUNCTION task_config_count_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE change bigint;
BEGIN
  IF TG_OP = 'INSERT' THEN
    change := (SELECT count(*) FROM added);
  ELSIF TG_OP = 'DELETE' THEN
    change := -(SELECT count(*) FROM removed);
  ELSE  -- TRUNCATE
    UPDATE task_config_count SET total = 0;
    RETURN NULL;
  END IF;
  -- A statement that changed no row leaves the counter's row unlocked.
  IF change <> 0 THEN
    UPDATE task_config_count SET total = total + change;
  END IF;
  RETURN NULL;
END $$
"""
_TRIGGERS = {
    "added": "AFTER INSERT ON task_configs REFERENCING NEW TABLE AS added",
    "removed": "AFTER DELETE ON task_configs REFERENCING OLD TABLE AS removed",
    "emptied": "AFTER TRUNCATE ON task_configs",
}


def upgrade() -> None:
    op.create_table(
        "task_config_count",
        sa.Column("one_row", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("one_row", name=op.f("ck_task_config_count_one_row")),
        sa.PrimaryKeyConstraint("one_row", name=op.f("pk_task_config_count")),
    )
    # No config is added or removed between the count and the triggers (SHARE mode lets
    # readers on and holds writers until this migration commits): the count starts exact.
    op.execute("LOCK TABLE task_configs IN SHARE MODE")
    op.execute("INSERT INTO task_config_count (total) SELECT count(*) FROM task_configs")
    op.execute(_COUNT_CHANGED)
    for name, when in _TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER task_config_count_{name} {when}"
            " FOR EACH STATEMENT EXECUTE FUNCTION task_config_count_changed()"
        )


def downgrade() -> None:
    for name in _TRIGGERS:
        op.execute(f"DROP TRIGGER task_config_count_{name} ON task_configs")
    op.execute("DROP FUNCTION task_config_count_changed()")
    op.drop_table("task_config_count")
