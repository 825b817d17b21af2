"""Inbox indexes: a role's open tasks by district or party, in deadline order.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_tasks_inbox_district", "tasks", ["role", "district", "deadline", "id"])
    op.create_index("ix_tasks_inbox_party", "tasks", ["role", "party", "deadline", "id"])


def downgrade() -> None:
    op.drop_index("ix_tasks_inbox_party", table_name="tasks")
    op.drop_index("ix_tasks_inbox_district", table_name="tasks")
