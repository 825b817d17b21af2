"""The registry as first released: parcels, the two public lists, decisions, notices.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "parcels",
        sa.Column("parcel_id", sa.String(length=64), nullable=False),
        sa.Column("workflow_id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("district", sa.String(length=50), nullable=False),
        sa.Column("planned_use", sa.String(length=20), nullable=False),
        sa.Column("stage", sa.String(length=30), nullable=False),
        sa.Column("waiting_on", sa.String(length=40), nullable=True),
        sa.Column("deadline", timestamp(), nullable=True),
        sa.Column("overdue", sa.Boolean(), nullable=False),
        sa.Column("listed", sa.Boolean(), nullable=False),
        sa.Column("created_at", timestamp(), nullable=False),
        sa.Column("updated_at", timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("parcel_id"),
    )
    for column in ("deadline", "district", "overdue", "stage", "waiting_on"):
        op.create_index(f"ix_parcels_{column}", "parcels", [column])
    op.create_table(
        "list_entries",
        sa.Column("list_name", sa.String(length=20), nullable=False),
        sa.Column("parcel_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("district", sa.String(length=50), nullable=False),
        sa.Column("entered_at", timestamp(), nullable=False),
        sa.Column("left_at", timestamp(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.PrimaryKeyConstraint("list_name", "parcel_id"),
    )
    op.create_table(
        "decisions",
        sa.Column("decision_id", sa.String(length=120), nullable=False),
        sa.Column("parcel_id", sa.String(length=64), nullable=False),
        sa.Column("rule", sa.String(length=10), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("row", sa.String(length=20), nullable=False),
        sa.Column("outcome", sa.String(length=40), nullable=False),
        sa.Column("citation", sa.String(length=200), nullable=False),
        sa.Column("explanation", sa.String(length=2000), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("evaluated_at", timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("decision_id"),
    )
    op.create_index("ix_decisions_parcel_id", "decisions", ["parcel_id"])
    op.create_table(
        "notices",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("parcel_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("step", sa.String(length=30), nullable=False),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("district", sa.String(length=50), nullable=False),
        sa.Column("deadline", timestamp(), nullable=False),
        sa.Column("escalate_to", sa.String(length=40), nullable=True),
        sa.Column("at", timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_notices_parcel_id", "notices", ["parcel_id"])


def downgrade() -> None:
    for table in ("notices", "decisions", "list_entries", "parcels"):
        op.drop_table(table)
