"""Alembic environment for the governance registry (URL comes from the Config set in ``db.upgrade``)."""

from alembic import context
from sqlalchemy import engine_from_config, event, pool

from governance.registry.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def _sqlite_transactional(engine) -> None:
    """Run the migrations in one real SQLite transaction. pysqlite commits before every CREATE or ALTER on its own,
    so a process killed between two statements of the first migration left some tables and no version stamp, and
    every later start failed with "table ... already exists" (found by a kill test). With pysqlite's own transaction
    handling off, BEGIN IMMEDIATE emitted here and Alembic told that SQLite's DDL is transactional (it assumes not,
    and would commit after each migration), the schema appears whole or not at all, and two processes that start on
    a new file migrate one after the other."""
    @event.listens_for(engine, "connect")
    def _no_pysqlite_begin(dbapi_conn, _record):
        dbapi_conn.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _at_head(engine) -> bool:
    """The database is already at the newest migration (read without taking the write lock: every start of the
    registry runs the migrations, and an up-to-date registry must not queue behind a writer)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    return current == set(ScriptDirectory.from_config(config).get_heads())


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    sqlite = url.startswith("sqlite")
    engine = engine_from_config(config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.",
                                poolclass=pool.NullPool, **({"connect_args": {"timeout": 30}} if sqlite else {}))
    if sqlite:
        if _at_head(engine):
            return
        _sqlite_transactional(engine)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                          transactional_ddl=True if sqlite else None)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
