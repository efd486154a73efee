"""Engine, sessions and migrations. SQLite by default; any SQLAlchemy URL (PostgreSQL) works unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def make_engine(url: str, *, reads: bool = False) -> Engine:
    """An engine; for SQLite, every transaction takes the write lock up front (BEGIN IMMEDIATE) so that
    concurrent reviewers serialise instead of failing, and waits up to 30 s for it. ``reads``: an engine for
    sessions that only read (``Registry.read``): plain BEGIN, so readers share the database instead of queueing
    behind one another for the write lock."""
    if url.startswith("sqlite") and reads:
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _reader(dbapi_conn, _record):
            dbapi_conn.isolation_level = None
            dbapi_conn.execute("pragma journal_mode = wal")
            dbapi_conn.execute("pragma foreign_keys = on")
            dbapi_conn.execute("pragma query_only = on")  # a read session never writes

        @event.listens_for(engine, "begin")
        def _begin_deferred(conn):
            conn.exec_driver_sql("BEGIN")

        return engine
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _no_pysqlite_begin(dbapi_conn, _record):  # let SQLAlchemy emit BEGIN itself
            dbapi_conn.isolation_level = None
            # write-ahead log: readers and the one writer do not block each other (a commit is as durable)
            dbapi_conn.execute("pragma journal_mode = wal")
            dbapi_conn.execute("pragma foreign_keys = on")

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def registry_url(home_root: Path) -> str:
    """The registry of a VPDC_HOME: ``VPDC_REGISTRY_URL`` (e.g. PostgreSQL) if set, else ``registry.db`` there.

    Read when called (at run time), never at import time.
    """
    import os

    return os.environ.get("VPDC_REGISTRY_URL") or sqlite_url(Path(home_root) / "registry.db")


def registry_for(home_root: Path, url: str | None = None) -> "Registry":
    """The registry of a VPDC_HOME (``url``, else :func:`registry_url`), migrated to the current schema, with the
    home's audit key (``keys/audit.key``) and the stewards' checkpoints (``checkpoints/``)."""
    from workspace import Home

    Path(home_root).mkdir(parents=True, exist_ok=True)
    home = Home(Path(home_root))
    return Registry(url or registry_url(home_root), keys_dir=home.keys, checkpoints=home.checkpoints)


def upgrade(url: str) -> None:
    """Apply Alembic migrations up to head (idempotent)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, "head")


class RegistryUnavailable(Exception):
    """The registry database cannot be reached or opened; the message names it (without a password)."""


def safe_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable registry URL>"


def _sqlite_file(url: str) -> Path | None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        u = make_url(url)
    except ArgumentError:
        return None
    return Path(u.database) if u.get_backend_name() == "sqlite" and u.database not in (None, "", ":memory:") else None


class Registry:
    """Handle on a registry database: ``with registry.transaction() as s: ...`` commits or rolls back.

    ``keys_dir`` is the warehouse keys folder holding the audit key (``audit.key``), ``checkpoints`` the
    stewards' checkpoint folder that :func:`governance.registry.audit.verify` compares the chain with. For a
    SQLite file they default to ``keys/`` and ``checkpoints/`` beside it (the VPDC_HOME layout); for any
    other URL they must be given (:func:`registry_for` does). Neither is ever stored in the database.

    A permission refusal raised inside :meth:`transaction` (:func:`governance.registry.permissions.require`)
    is audited whatever the caller does next: the refused transaction rolls back, then the refusal is
    appended in a transaction of its own.
    """

    def __init__(self, url: str, *, migrate: bool = True, keys_dir: Path | None = None,
                 checkpoints: Path | None = None):
        from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

        from governance.registry.audit import AuditContext

        self.url = url
        beside = _sqlite_file(url)
        if beside is not None:
            keys_dir = keys_dir if keys_dir is not None else beside.parent / "keys"
            checkpoints = checkpoints if checkpoints is not None else beside.parent / "checkpoints"
        self.audit = AuditContext(Path(keys_dir) if keys_dir is not None else None,
                                  Path(checkpoints) if checkpoints is not None else None)
        try:
            if migrate:
                upgrade(url)
            self.engine = make_engine(url)
            # PostgreSQL: a read session sees one snapshot (REPEATABLE READ), so the audit chain it walks and the
            # chain's head agree even while others commit (READ COMMITTED would show a newer entry than the head
            # read a moment before, and the chain would look cut)
            self._read_engine = make_engine(url, reads=True) if url.startswith("sqlite") else \
                self.engine.execution_options(isolation_level="REPEATABLE READ")
            self._lock_head = not url.startswith("sqlite")
        except (OperationalError, DBAPIError, ArgumentError) as exc:
            first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            raise RegistryUnavailable(f"registry {safe_url(url)} cannot be reached or opened: "
                                      f"{first[0][:200] if first else type(exc).__name__}") from None
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(self._read_engine, expire_on_commit=False)
        self.identity = None

    def signed_in(self, identity: Any) -> "Registry":
        """This registry, acting for ``identity`` (:class:`governance.identity.Identity`): every action's actor must
        be that person, and every audit entry records how they signed in. Shares the engine."""
        import copy

        bound = copy.copy(self)
        bound.identity = identity
        return bound

    @property
    def safe_url(self) -> str:
        return safe_url(self.url)

    @classmethod
    def at(cls, path: Path) -> "Registry":
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls(sqlite_url(path))

    def _session(self, *, reads: bool = False) -> Session:
        from governance.registry.audit import CONTEXT, IDENTITY

        session = (self._read_sessions if reads else self._sessions)()
        session.info[CONTEXT] = self.audit
        if self.identity is not None:
            session.info[IDENTITY] = self.identity
        return session

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        from governance.registry.permissions import REFUSALS, record_pending

        pending: list[dict] = []
        try:
            with self._session() as session, session.begin():
                if self._lock_head:  # PostgreSQL: writers queue here, as on SQLite (BEGIN IMMEDIATE)
                    self._serialise(session)
                session.info[REFUSALS] = pending
                yield session
                record_pending(session, pending)  # refusals the caller caught: audited with the transaction
        except BaseException:
            if pending:
                with self._session() as session, session.begin():
                    if self._lock_head:
                        self._serialise(session)
                    record_pending(session, pending)
            raise

    @staticmethod
    def _serialise(session: Session) -> None:
        """Take the audit chain head's row lock before the transaction reads anything: everything it then reads
        (the chain it verifies, the rows it decides on) stays as it is until it commits."""
        from sqlalchemy import select

        from governance.registry.models import AuditHead

        session.execute(select(AuditHead.seq).where(AuditHead.id == 1).with_for_update())

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._session(reads=True) as session:
            yield session
