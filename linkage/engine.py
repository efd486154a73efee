"""Where a linkage run's pairwise work runs: DuckDB on the linkage zone's file, or Apache Spark.

The model (:mod:`linkage.model`) and the run (:mod:`linkage.run`) are written once, against this small
seam: Splink's database API plus the few SQL statements of our own (the held-out u of the salted
comparisons, the blocking choice, the nodes and edges of clustering). Those statements are written in
the SQL both engines read (``||``, ``case``, ``cast(... as string)``, ``exists``), and the one expression
that cannot be (Dice on Bloom filters) comes from :func:`linkage.model.dice_sql` per dialect.

Person keys, their history and the run record never leave DuckDB: an engine hands back the run's edges
and clusters (:meth:`Engine.to_duckdb`) and :mod:`linkage.persons` keys them, whichever engine scored them.
"""

from __future__ import annotations

from typing import Any, Protocol

import duckdb

__all__ = ["DuckDBEngine", "Engine"]


class Engine(Protocol):
    """The operations a linkage run needs from the engine that scores and clusters pairs."""

    #: the SQL dialect of Splink's settings and of :func:`linkage.model.dice_sql` ("duckdb" or "spark")
    dialect: str
    #: Splink's database API over the engine
    db_api: Any

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of a query (small results only: counts and sums)."""

    def table(self, name: str, sql: str, *, persist: bool = False) -> None:
        """Create or replace the table ``name`` from a query: a working table of this run, or with ``persist``
        one the run keeps (DuckDB writes it to the linkage zone's file; Spark hands it over in
        :meth:`to_duckdb`)."""

    def view(self, name: str, sql: str) -> None:
        """Create or replace the view ``name`` over a query."""

    def frame(self, name: str) -> Any:
        """The engine's own data frame of table ``name``, for Splink's ``register``."""

    def to_duckdb(self, con: duckdb.DuckDBPyConnection, name: str, *, persist: bool) -> None:
        """Make the engine's table ``name`` a table of the same name in the linkage zone's connection
        (persistent with ``persist``, else a temporary one): the keys are assigned there."""


class DuckDBEngine:
    """The default: everything in the linkage zone's own DuckDB connection."""

    dialect = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection, db_api: Any) -> None:
        self.con, self.db_api = con, db_api

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.con.execute(sql).fetchall()

    def table(self, name: str, sql: str, *, persist: bool = False) -> None:
        self.con.execute(f"create or replace {'' if persist else 'temp '}table {name} as {sql}")

    def view(self, name: str, sql: str) -> None:
        self.con.execute(f"create or replace view {name} as {sql}")

    def frame(self, name: str) -> Any:
        return self.con.table(name)

    def to_duckdb(self, con: duckdb.DuckDBPyConnection, name: str, *, persist: bool) -> None:
        del con, name, persist  # already there
