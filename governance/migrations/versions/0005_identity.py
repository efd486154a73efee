"""identity: registry mode, local accounts, sign-in lockouts, sessions and single-use sign-in links

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

Who is acting is no longer a name typed after ``--as`` (issue 14, ADR 0009): ``registry_settings`` holds the
registry's mode (``demo`` registries alone accept ``--as``; bound to its audit entry), ``accounts`` how each
user signs in (argon2id hash, encrypted TOTP secret, OIDC issuer and subject, e-mail; bound to audit entries
like every row the gate reads), ``sign_in_failures`` the lockout counters, ``auth_sessions`` the portal's and
the CLI's sessions and ``sign_in_links`` the e-mailed links (both stored only as keyed digests of their tokens).
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _bound() -> list[sa.Column]:
    return [sa.Column("audit_seq", sa.Integer(), nullable=True),
            sa.Column("audit_digest", sa.String(length=64), nullable=True)]


def upgrade() -> None:
    op.create_table(
        "registry_settings",
        sa.Column("key", sa.String(length=64), primary_key=True),
        sa.Column("value", sa.String(length=300), nullable=False),
        *_bound(),
    )
    op.create_table(
        "accounts",
        sa.Column("user_id", sa.String(length=64), sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("totp_secret", sa.String(length=200), nullable=True),
        sa.Column("oidc_issuer", sa.String(length=300), nullable=True),
        sa.Column("oidc_subject", sa.String(length=255), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        *_bound(),
        sa.UniqueConstraint("oidc_issuer", "oidc_subject", name="uq_account_oidc"),
        sa.UniqueConstraint("email", name="uq_account_email"),
    )
    op.create_table(
        "sign_in_failures",
        sa.Column("user_id", sa.String(length=64), sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("totp_last_step", sa.Integer(), nullable=True),
    )
    op.create_table(
        "auth_sessions",
        sa.Column("digest", sa.String(length=64), primary_key=True),
        sa.Column("user_id", sa.String(length=64), sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=600), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("authenticated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "sign_in_links",
        sa.Column("digest", sa.String(length=64), primary_key=True),
        sa.Column("user_id", sa.String(length=64), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("session_digest", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    for table in ("sign_in_links", "auth_sessions", "sign_in_failures", "accounts", "registry_settings"):
        op.drop_table(table)
