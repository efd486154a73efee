"""Registry tables (SQLAlchemy 2 declarative). Request state is derived from reviews on read, never
stored as a mutable status, so two reviewers deciding at the same moment cannot overwrite each other."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from governance.defaults import K_ANONYMITY, MIN_CELL


class Base(DeclarativeBase):
    pass


class Audited:
    """A row the gate reads, bound to the audit entry that last wrote it (``audit.append(..., rows=[row])``).

    ``audit_seq`` is that entry's sequence number; ``audit_digest`` is a keyed digest (HMAC with the audit key)
    of the row's own content as audited, which the entry's detail records too. The gate recomputes the digest
    and refuses a row whose entry is missing, is not the latest to write it, or records another digest
    (ADR 0007). Both columns are nullable only so that migration 0003 can add them to existing rows.
    """

    audit_seq: Mapped[int | None] = mapped_column(Integer, nullable=True, default=None)
    audit_digest: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)


class Role(enum.StrEnum):
    """Who a user is to the collaborative. Permissions follow from the role (see ``roles.PERMISSIONS``)."""

    ANALYST = "analyst"
    STEWARD = "steward"
    COMMUNITY_REVIEWER = "community_reviewer"
    EVALUATOR = "evaluator"
    ENGINEER = "engineer"
    ADMINISTRATOR = "administrator"


class OutputLevel(enum.StrEnum):
    """Narrowest first: a condition can only move a request towards aggregate."""

    AGGREGATE = "aggregate"
    COHORT = "cohort"  # de-identified record-level cohort
    LINKED_EXTRACT = "linked_extract"  # linked study extract


OUTPUT_RANK = {OutputLevel.AGGREGATE: 0, OutputLevel.COHORT: 1, OutputLevel.LINKED_EXTRACT: 2}


class Decision(enum.StrEnum):
    APPROVE = "approve"
    APPROVE_WITH_CONDITIONS = "approve_with_conditions"
    DENY = "deny"


class Partner(Audited, Base):
    __tablename__ = "partners"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    #: the partner's own disclosure rules (the most restrictive partner's rule wins)
    min_cell: Mapped[int] = mapped_column(Integer, default=MIN_CELL)
    k_anonymity: Mapped[int] = mapped_column(Integer, default=K_ANONYMITY)


class User(Audited, Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(300))
    organisation: Mapped[str] = mapped_column(String(300))
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=32))
    partner_id: Mapped[str | None] = mapped_column(ForeignKey("partners.id"), nullable=True)


class Dataset(Base):
    __tablename__ = "datasets"
    id: Mapped[str] = mapped_column(String(128), primary_key=True)  # e.g. "program_cohorts"
    description: Mapped[str] = mapped_column(Text, default="")
    columns: Mapped[list[DatasetColumn]] = relationship(back_populates="dataset", cascade="all, delete-orphan")


class DatasetColumn(Audited, Base):
    __tablename__ = "dataset_columns"
    __table_args__ = (UniqueConstraint("dataset_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"))
    name: Mapped[str] = mapped_column(String(128))
    #: partners whose data this column derives from (their stewards must approve its use)
    sources: Mapped[list[str]] = mapped_column(JSON)
    race_ethnicity: Mapped[bool] = mapped_column(Boolean, default=False)
    quasi_identifier: Mapped[bool] = mapped_column(Boolean, default=False)
    dataset: Mapped[Dataset] = relationship(back_populates="columns")


class Agreement(Audited, Base):
    """A data-sharing agreement with one partner."""

    __tablename__ = "agreements"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"))
    title: Mapped[str] = mapped_column(String(300))
    starts_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date] = mapped_column(Date)


class Request(Audited, Base):
    __tablename__ = "requests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study_id: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    requester_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    organisation: Mapped[str] = mapped_column(String(300))
    purpose: Mapped[str] = mapped_column(Text)
    research_questions: Mapped[str] = mapped_column(Text)
    #: [{"dataset": ..., "column": ...}]
    columns: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    output_level: Mapped[OutputLevel] = mapped_column(Enum(OutputLevel, native_enum=False, length=32))
    irb_protocol: Mapped[str] = mapped_column(String(128))
    irb_expires_on: Mapped[date] = mapped_column(Date)
    retention_end: Mapped[date] = mapped_column(Date)
    equity_communities: Mapped[str] = mapped_column(Text)
    equity_return_of_findings: Mapped[str] = mapped_column(Text)
    equity_mitigation: Mapped[str] = mapped_column(Text)
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    destroyed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: the linkage run (person-key version) the study's outputs were made from; set at its first output
    linkage_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    linkage_pinned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    reviews: Mapped[list[Review]] = relationship(back_populates="request", order_by="Review.id")


class Review(Audited, Base):
    """One reviewer's decision. Insert-only: a later review by the same reviewer supersedes theirs."""

    __tablename__ = "reviews"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"))
    reviewer_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    #: "partner:<id>" for a steward, "community" for a community reviewer
    capacity: Mapped[str] = mapped_column(String(80))
    decision: Mapped[Decision] = mapped_column(Enum(Decision, native_enum=False, length=32))
    #: {"remove_columns": [{"dataset":..,"column":..}], "aggregate_only": bool}
    conditions: Mapped[dict] = mapped_column(JSON, default=dict)
    comment: Mapped[str] = mapped_column(Text, default="")
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    request: Mapped[Request] = relationship(back_populates="reviews")


class AuditEntry(Base):
    """Hash-chained, append-only: ``hash = HMAC-SHA-256(audit key, prev_hash ‖ canonical entry)``."""

    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(128))
    detail: Mapped[dict] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's last entry; updating it serialises appends (a row lock on PostgreSQL) and reveals a cut tail."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class Release(Base):
    """The release ledger: every table or file a study released, with what it said (aggregate cells as
    published, suppressed ones as null), so that a later release is checked against everything before it.

    ``state``: ``releasing`` when the intent is recorded (before the file is written), ``released`` after;
    a ``releasing`` row left by a crash is finished or abandoned by the next release of the study.
    """

    __tablename__ = "releases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study_id: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))  # summary | cohort | study
    #: the population and shape: program, period, window, breakdowns, outcomes or columns
    spec: Mapped[dict] = mapped_column(JSON)
    file: Mapped[str] = mapped_column(String(255))
    #: aggregate releases: [{"group": {...}, "measure": str, "value": int | None}]; record releases: []
    cells: Mapped[list] = mapped_column(JSON, default=list)
    #: record releases: the released columns a reader can join on
    columns: Mapped[list] = mapped_column(JSON, default=list)
    persons: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# ------------------------------------------------------------------------------------- identity (0005)
class RegistrySetting(Audited, Base):
    """A registry-wide setting bound to its audit entry: ``mode`` is ``demo`` (``--as`` accepted, and said so)
    or ``production`` (every person signs in). A setting edited in the table is refused, so read as production."""

    __tablename__ = "registry_settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(300))


class Account(Audited, Base):
    """How a user signs in; bound to the audit entry that last changed it (a hash swapped in the table is refused).

    ``password_hash`` is argon2id (PHC string); ``totp_secret`` is encrypted with a key derived from the audit
    key (never plain in the database); ``oidc_issuer``/``oidc_subject`` name the user at the identity provider.
    """

    __tablename__ = "accounts"
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320), nullable=True, unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    totp_secret: Mapped[str | None] = mapped_column(String(200), nullable=True)
    oidc_issuer: Mapped[str | None] = mapped_column(String(300), nullable=True)
    oidc_subject: Mapped[str | None] = mapped_column(String(255), nullable=True)
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SignInFailures(Base):
    """Lockout counters (not audited rows: every failure and lockout is an audit entry of its own)."""

    __tablename__ = "sign_in_failures"
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: the last TOTP time step accepted: a code is never accepted twice
    totp_last_step: Mapped[int | None] = mapped_column(Integer, nullable=True)


class AuthSession(Base):
    """A signed-in session of the portal (``web``) or the CLI (``cli``). Only a keyed digest of the token is
    stored, so a row inserted by someone without the key opens nothing."""

    __tablename__ = "auth_sessions"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(600))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    authenticated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SignInLink(Base):
    """A single-use, time-limited sign-in link (``purpose`` ``email``) or CLI code (``cli``); digest only."""

    __tablename__ = "sign_in_links"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    purpose: Mapped[str] = mapped_column(String(16))
    #: a CLI code carries the portal session it was issued from (its sign-in method and time)
    session_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
