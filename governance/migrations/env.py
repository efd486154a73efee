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
    handling off and BEGIN IMMEDIATE emitted here, the schema appears whole or not at all, and two processes that
    start on a new file migrate one after the other."""
    @event.listens_for(engine, "connect")
    def _no_pysqlite_begin(dbapi_conn, _record):
        dbapi_conn.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def run_migrations_online() -> None:
    engine = engine_from_config(config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.",
                                poolclass=pool.NullPool)
    if engine.dialect.name == "sqlite":
        _sqlite_transactional(engine)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
