"""a study pins the linkage run its outputs were made from

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("linkage_run_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("linkage_pinned_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("linkage_pinned_at")
        batch.drop_column("linkage_run_id")
