"""Covering indexes for the reads a registry of 100,000 parcels answers slowly: an inbox's
total and counts per stage, a city bureau's inbox in deadline order, a public list's
total and pages (bench/pages_bench.py at 100,000 parcels: 150-290 ms before).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_parcels_open": ("parcels", ["run_id", "status", "current", "district"]),
    "ix_tasks_inbox_role": ("tasks", ["role", "deadline", "id"]),
    "ix_tasks_count_district": ("tasks", ["role", "district", "stage", "overdue", "run_id"]),
    "ix_tasks_count_party": ("tasks", ["role", "party", "stage", "overdue", "run_id"]),
    "ix_list_entries_order": (
        "list_entries",
        ["list_name", "entered_at", "parcel_id", "left_at", "district"],
    ),
    "ix_list_entries_latest": ("list_entries", ["list_name", "parcel_id", "entered_at"]),
}


def upgrade() -> None:
    for name, (table, columns) in INDEXES.items():
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, (table, _) in reversed(INDEXES.items()):
        op.drop_index(name, table_name=table)
