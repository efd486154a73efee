"""Engine, sessions and migrations. SQLite by default; any SQLAlchemy URL (PostgreSQL) works unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def make_engine(url: str) -> Engine:
    """An engine; for SQLite, every transaction takes the write lock up front (BEGIN IMMEDIATE) so that
    concurrent reviewers serialise instead of failing, and waits up to 30 s for it."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _no_pysqlite_begin(dbapi_conn, _record):  # let SQLAlchemy emit BEGIN itself
            dbapi_conn.isolation_level = None
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


def registry_for(home_root: Path) -> "Registry":
    """The registry of a VPDC_HOME (:func:`registry_url`), migrated to the current schema."""
    Path(home_root).mkdir(parents=True, exist_ok=True)
    return Registry(registry_url(home_root))


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


class Registry:
    """Handle on a registry database: ``with registry.transaction() as s: ...`` commits or rolls back."""

    def __init__(self, url: str, *, migrate: bool = True):
        from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

        self.url = url
        try:
            if migrate:
                upgrade(url)
            self.engine = make_engine(url)
        except (OperationalError, DBAPIError, ArgumentError) as exc:
            first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            raise RegistryUnavailable(f"registry {safe_url(url)} cannot be reached or opened: "
                                      f"{first[0][:200] if first else type(exc).__name__}") from None
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def safe_url(self) -> str:
        return safe_url(self.url)

    @classmethod
    def at(cls, path: Path) -> "Registry":
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls(sqlite_url(path))

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._sessions() as session:
            yield session
