"""every row the gate reads is bound to the audit entry that last wrote it

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

Adds ``audit_seq`` and ``audit_digest`` to partners, users, agreements, requests, reviews and dataset_columns
(ADR 0007). Existing rows stay unbound (NULL) until ``vpdc registry init`` keys the chain and binds them.
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLES = ("partners", "users", "agreements", "requests", "reviews", "dataset_columns")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("audit_seq", sa.Integer(), nullable=True))
            batch.add_column(sa.Column("audit_digest", sa.String(length=64), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("audit_digest")
            batch.drop_column("audit_seq")
