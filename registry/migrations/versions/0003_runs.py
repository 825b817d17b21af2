"""Rows keyed by registration (run), inbox tasks, documents, the suspected list.

The projection tables are dropped and made anew: the registry is a projection of the
engine, so the rebuild (`landflow registry rebuild`, also started by the worker when it
finds the registry behind) fills them from Temporal. `registry_status` says a rebuild is
due, and `/readyz` answers 503 until it is done. Reports are kept.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _string(name: str, length: int, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(length=length), nullable=nullable)


def upgrade() -> None:
    had_rows = op.get_bind().execute(sa.text("SELECT COUNT(*) FROM parcels")).scalar()
    for table in ("notices", "decisions", "list_entries", "parcels"):
        op.drop_table(table)
    op.create_table(
        "parcels",
        _string("run_id", 64),
        _string("parcel_id", 64),
        _string("workflow_id", 100),
        _string("procedure", 40),
        _string("name", 500),
        _string("district", 50),
        _string("planned_use", 20),
        sa.Column("area_m2", sa.Float(), nullable=False),
        _string("stage", 30),
        _string("status", 20),
        sa.Column("listed", sa.Boolean(), nullable=False),
        sa.Column("overdue", sa.Boolean(), nullable=False),
        sa.Column("deadline", timestamp(), nullable=True),
        _string("waiting_on", 200),
        sa.Column("started_at", timestamp(), nullable=False),
        sa.Column("updated_at", timestamp(), nullable=False),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("location", sa.JSON(), nullable=True),
        sa.Column("parties", sa.JSON(), nullable=True),
        sa.Column("disclosure", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("run_id"),
    )
    for column in ("parcel_id", "district", "stage", "status", "overdue", "deadline", "current"):
        op.create_index(f"ix_parcels_{column}", "parcels", [column])
    op.create_index("ix_parcels_current_id", "parcels", ["current", "parcel_id"])
    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        _string("run_id", 64),
        _string("parcel_id", 64),
        sa.Column("visit", sa.Integer(), nullable=False),
        _string("step", 40),
        _string("stage", 30),
        _string("role", 40),
        _string("district", 50, nullable=True),
        _string("party", 40, nullable=True),
        sa.Column("deadline", timestamp(), nullable=False),
        sa.Column("overdue", sa.Boolean(), nullable=False),
        sa.Column("blocking", sa.Boolean(), nullable=False),
        sa.Column("reminded", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("run_id", "role", "district", "party", "deadline"):
        op.create_index(f"ix_tasks_{column}", "tasks", [column])
    op.create_table(
        "list_entries",
        _string("list_name", 20),
        _string("run_id", 64),
        _string("parcel_id", 64),
        _string("name", 500),
        _string("district", 50),
        sa.Column("entered_at", timestamp(), nullable=False),
        sa.Column("left_at", timestamp(), nullable=True),
        _string("reason", 2000),
        _string("citation", 200),
        _string("left_reason", 2000, nullable=True),
        sa.PrimaryKeyConstraint("list_name", "run_id"),
    )
    op.create_index("ix_list_entries_parcel_id", "list_entries", ["parcel_id"])
    op.create_table(
        "decisions",
        _string("decision_id", 200),
        _string("run_id", 64),
        _string("parcel_id", 64),
        _string("rule", 10),
        sa.Column("version", sa.Integer(), nullable=False),
        _string("row", 20),
        _string("outcome", 40),
        _string("citation", 200),
        _string("explanation", 2000),
        _string("law_over_plan", 1000, nullable=True),
        sa.Column("inputs", sa.JSON(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("evaluated_at", timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("decision_id"),
    )
    op.create_index("ix_decisions_run_id", "decisions", ["run_id"])
    op.create_index("ix_decisions_parcel_id", "decisions", ["parcel_id"])
    op.create_table(
        "notices",
        _string("key", 200),
        _string("run_id", 64),
        _string("parcel_id", 64),
        _string("kind", 30),
        _string("step", 40, nullable=True),
        _string("role", 40, nullable=True),
        _string("district", 50),
        sa.Column("deadline", timestamp(), nullable=True),
        _string("escalate_to", 40, nullable=True),
        sa.Column("at", timestamp(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_notices_run_id", "notices", ["run_id"])
    op.create_index("ix_notices_parcel_id", "notices", ["parcel_id"])
    op.create_table(
        "documents",
        _string("document_id", 40),
        _string("parcel_id", 64),
        _string("sha256", 64),
        _string("kind", 40),
        _string("filename", 200),
        _string("media_type", 100),
        sa.Column("size", sa.Integer(), nullable=False),
        _string("title", 500, nullable=True),
        _string("uploaded_by", 200),
        _string("uploaded_role", 40),
        _string("uploaded_party", 40, nullable=True),
        sa.Column("uploaded_at", timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("document_id"),
    )
    op.create_index("ix_documents_parcel_id", "documents", ["parcel_id"])
    op.create_index("ix_documents_sha256", "documents", ["sha256"])
    status = op.create_table(
        "registry_status",
        _string("key", 40),
        _string("value", 40),
        _string("detail", 2000),
        sa.Column("updated_at", timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    if not had_rows:
        return  # a new registry: nothing to rebuild
    op.bulk_insert(
        status,
        [
            {
                "key": "rebuild",
                "value": "due",
                "detail": "projection tables re-created by migration 0003",
                "updated_at": datetime.now(UTC),
            }
        ],
    )


def downgrade() -> None:
    raise RuntimeError("0003 re-keys the projection by run; rebuild it instead of downgrading")
