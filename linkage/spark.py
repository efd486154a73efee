"""Linkage on Apache Spark, for collaboratives that outgrow one machine (issue 17; docs/spark.md).

A Spark run is a full run of :func:`linkage.run.run_linkage` with ``engine="spark"``: the same settings,
training, blocking choice and clustering, through Splink's Spark backend. Around it:

1. The run's inputs (``link_input``, prepared in the linkage zone as for DuckDB) are exported to Parquet in
   the zone's Spark folder (:func:`spark_dir`, next to ``linkage.duckdb``; files 0600, folders 0700), with
   each Bloom filter as an array of 64-bit words: Spark's ``bit_count`` counts integers, not DuckDB's
   ``BIT`` (:func:`linkage.model.dice_sql`).
2. Spark reads them, trains, scores and clusters (:class:`SparkEngine`).
3. The run's edges and clusters come back as Parquet and are read into the linkage zone, where
   :mod:`linkage.persons` assigns keys and records their history, exactly as after a DuckDB run.
4. Every working file is removed when the run ends, however it ends: the zone keeps what a DuckDB run keeps.

``local[N]`` runs Spark inside this process (tests, this machine); ``spark://host:7077`` (or ``yarn``,
``k8s://...``) uses a cluster, whose executors must see the Spark folder at the same path (a shared file
system); see docs/spark.md. Needs the ``spark`` extra (pyspark) and Java 17.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from linkage.model import BLOOMS, COLUMNS, filter_words
from workspace.files import private_dir

__all__ = ["JAVA_HINT", "PYSPARK_HINT", "SparkEngine", "SparkEngineError", "SparkOptions", "SparkUnavailable",
           "export_inputs", "open_spark_engine", "require_spark", "spark_dir", "spark_session"]

PYSPARK_HINT = "install the spark extra: pip install 'vpdc-ids[spark]' (a checkout: make setup)"
JAVA_HINT = ("install Java 17 (Debian/Ubuntu: apt-get install openjdk-17-jre-headless) and put it on PATH "
             "or set JAVA_HOME")
#: the columns a run reads (the model's tokens, the DOB token again as ``dob_k``, each filter and its bit count)
INPUT_COLUMNS = ("source_dataset", "unique_id", *COLUMNS.values(), "dob_k",
                 *(c for b in BLOOMS.values() for c in (b, f"{b}_n")))


class SparkEngineError(Exception):
    """The Spark engine cannot do what was asked; the message says what to do instead."""


class SparkUnavailable(SparkEngineError):
    """pyspark or Java is missing: the message names what to install."""


@dataclass(frozen=True)
class SparkOptions:
    """Where and how a Spark run runs.

    Args:
        master: ``local[N]`` (Spark inside this process, N cores) or a cluster's master URL.
        shuffle_partitions: partitions of Spark's shuffles; None: 4 per local core, else Spark's own default.
        driver_memory: the driver's heap (``spark.driver.memory``) when this process starts the JVM.
        work_dir: the Spark folder (None: :func:`spark_dir` of the linkage zone); on a cluster, a path every
            executor sees.
        codegen: Spark compiles each query's plan to Java (whole-stage code generation, Janino for expressions),
            its default. False interprets the plans instead: the same results, faster only on tiny runs, where
            compiling costs more than the code saves (the 400-person test population, about 1,000 records: 53 s
            instead of 70 s) and much slower on real ones (20,000 persons, 28,565 records: 270 s against
            155 s compiled, two runs with different driver heaps, 16 GB and the default).
    """

    master: str = "local[2]"
    shuffle_partitions: int | None = None
    driver_memory: str | None = None
    work_dir: Path | None = None
    codegen: bool = True


def spark_dir(linkage_db: Path) -> Path:
    """The linkage zone's Spark folder: next to the zone's file (``linkage.duckdb`` → ``linkage.spark/``)."""
    return linkage_db.with_name(linkage_db.stem + ".spark")


def require_spark() -> None:
    """Check that a Spark run can start: pyspark importable and a Java runtime that runs.

    Raises:
        SparkUnavailable: naming what to install.
    """
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise SparkUnavailable(f"the Spark engine needs pyspark: {PYSPARK_HINT}; and Java 17") from None
    java = (Path(os.environ["JAVA_HOME"]) / "bin" / "java") if os.environ.get("JAVA_HOME") else None
    java = str(java) if java and java.exists() else shutil.which("java")
    if java is None:
        raise SparkUnavailable(f"the Spark engine needs a Java runtime, and none was found: {JAVA_HINT}")
    try:
        out = subprocess.run([java, "-version"], check=False, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SparkUnavailable(f"{java} does not run ({e.__class__.__name__}): {JAVA_HINT}") from None
    version = _java_major(out.stderr + out.stdout)
    if out.returncode != 0 or version is None or version < 17:
        raise SparkUnavailable(f"{java} is not Java 17 or newer (found {version or 'an unknown version'}): "
                               f"{JAVA_HINT}")


def _java_major(text: str) -> int | None:
    import re

    m = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major  # "1.8.0" is Java 8


def spark_session(options: SparkOptions, work: Path) -> Any:
    """The Spark session of a run: this process's active one if there is one (tests share one), else a new one.

    Spark's scratch space (``spark.local.dir``: shuffle and spill files, which hold encodings) is in the
    zone's Spark folder, never /tmp; the web UI is off; logs only errors.
    """
    require_spark()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyspark warns about pandas 3 on import; linkage passes no pandas frames
        from pyspark.sql import SparkSession

        active = SparkSession.getActiveSession()
        if active is not None:
            spark = active
        else:
            local = options.master.startswith("local")
            cores = _local_cores(options.master) if local else None
            # in local mode the driver's JVM is the executor and lives for one run: measured on the test population,
            # most of its CPU went to HotSpot's C2 compiler (62 s of 175 s; the query thread 32 s). C1 only
            # compiles in a fraction of that and is as fast on runs this short; a cluster's JVMs keep C2. With C1
            # only the JVM reserves 48 MB for compiled code, which Spark's generated classes filled within a minute
            # ("CodeCache is full. Compiler has been disabled": the rest of the run interpreted): 256 MB
            jvm = os.environ.get("VPDC_SPARK_JVM_OPTS",
                                 "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=256m" if local else "")
            builder = (SparkSession.builder.master(options.master).appName("vpdc-linkage")
                       .config("spark.ui.enabled", "false")
                       .config("spark.ui.showConsoleProgress", "false")
                       .config("spark.local.dir", str(private_dir(work / "scratch")))
                       # Hadoop's file system sets its own modes (umask 022, not the process's): files it writes
                       # in the zone (Parquet, checkpoints, .crc) must be 0600 and folders 0700 like every zone file
                       .config("spark.hadoop.fs.permissions.umask-mode", "077")
                       .config("spark.sql.adaptive.enabled", "true")
                       .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={_LOG4J} {jvm}"))
            if options.driver_memory:
                builder = builder.config("spark.driver.memory", options.driver_memory)
            if cores:
                builder = builder.config("spark.sql.shuffle.partitions", str(options.shuffle_partitions or 4 * cores))
            spark = builder.getOrCreate()
    if options.shuffle_partitions:
        spark.conf.set("spark.sql.shuffle.partitions", str(options.shuffle_partitions))
    spark.sparkContext.setLogLevel("ERROR")
    return spark


_LOG4J = Path(__file__).with_name("spark-log4j2.properties")


def _local_cores(master: str) -> int:
    inner = master[master.find("[") + 1:master.find("]")] if "[" in master else "1"
    if inner.strip() == "*":
        return os.cpu_count() or 1
    return max(1, int(inner.split(",")[0]))


class SparkEngine:
    """:class:`linkage.engine.Engine` on a Spark session: working tables are cached temporary views."""

    dialect = "spark"

    def __init__(self, spark: Any, work: Path, master: str, codegen: bool = True) -> None:
        from splink.backends.spark import SparkAPI

        self.spark, self.work, self.master = spark, work, master
        # set per run (SparkOptions.codegen): a shared session may serve runs of both kinds
        spark.conf.set("spark.sql.codegen.wholeStage", "true" if codegen else "false")
        spark.conf.set("spark.sql.codegen.factoryMode", "FALLBACK" if codegen else "NO_CODEGEN")
        # "parquet": each of Splink's intermediate tables is written out and read back, which cuts its lineage.
        # With "persist" (the first version) every later query carried the whole plan of every table before it
        # (Splink's SQL is hundreds of chained CTEs and views): Catalyst re-analysed and re-optimised those plans
        # on every query, minutes per EM session on 400 persons. No similarity UDF is used, so no jar.
        spark.sparkContext.setCheckpointDir(str(private_dir(work / "checkpoints")))
        self.db_api = SparkAPI(spark_session=spark, break_lineage_method=os.environ.get(
                                   "VPDC_SPARK_LINEAGE", "parquet"),
                               num_partitions_on_repartition=max(1, int(spark.conf.get(
                                   "spark.sql.shuffle.partitions", "8"))),
                               register_udfs_automatically=False)
        self._views: list[str] = []

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.spark.sql(sql).collect()]

    def table(self, name: str, sql: str, *, persist: bool = False) -> None:
        del persist  # every working table comes back through to_duckdb
        self._drop(name)
        # computed now and cut from its lineage (as Splink's own tables): a view over a cached plan made every
        # later query re-plan the SQL behind it
        df = self.spark.sql(sql).localCheckpoint(eager=True)
        df.createOrReplaceTempView(name)
        self._views.append(name)

    def view(self, name: str, sql: str) -> None:
        self._drop(name)
        self.spark.sql(f"create or replace temp view {name} as {sql}")
        self._views.append(name)

    def frame(self, name: str) -> Any:
        return self.spark.table(name)

    def to_duckdb(self, con: duckdb.DuckDBPyConnection, name: str, *, persist: bool) -> None:
        out = self.work / "out" / name
        self.spark.table(name).write.mode("overwrite").parquet(str(out))
        private_tree(out)
        con.execute(f"create or replace {'' if persist else 'temp '}table {name} as "
                    f"select * from read_parquet('{_sql_path(out)}/*.parquet')")
        shutil.rmtree(out, ignore_errors=True)

    def _drop(self, name: str) -> None:
        if self.spark.catalog.tableExists(name):
            self.spark.catalog.dropTempView(name)

    def close(self) -> None:
        """Forget this run's views and cached tables (a shared session outlives a run)."""
        for name in reversed(self._views):
            self.spark.catalog.dropTempView(name)
        for t in self.spark.catalog.listTables():
            if t.isTemporary and t.name.startswith("__splink__"):
                self.spark.catalog.dropTempView(t.name)
        self.spark.catalog.clearCache()


def _sql_path(p: Path) -> str:
    return str(p).replace("'", "''")


def private_tree(root: Path) -> None:
    """Files 0600, folders 0700 under ``root``: Spark writes with its own umask (and checksum side files)."""
    for d, dirs, files in os.walk(root):
        os.chmod(d, 0o700)
        for f in files:
            os.chmod(os.path.join(d, f), 0o600)


def export_inputs(con: duckdb.DuckDBPyConnection, path: Path, *, table: str = "link_input",
                  batch_rows: int = 200_000) -> int:
    """Write the run's inputs to one Parquet file for Spark; returns the rows written.

    Only the columns the model reads (:data:`INPUT_COLUMNS`). Each Bloom filter (64-bit word columns in DuckDB)
    becomes one array of those words: the same bits, so the same popcounts (:func:`linkage.model.dice_sql`). Streamed in
    batches, so memory stays flat at any size. The file is the owner's alone (0600).
    """
    blooms = set(BLOOMS.values())
    # DuckDB's words of a filter (linkage.model.filter_words) as one array: the same bits, so the same popcounts
    cols = ", ".join(f"{filter_array_sql(c)} as {c}" if c in blooms else c for c in INPUT_COLUMNS)
    reader = con.sql(f"select {cols} from {table}").to_arrow_reader(batch_rows)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    n = 0
    writer = None
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as sink:
            for batch in reader:
                out = batch
                if writer is None:
                    writer = pq.ParquetWriter(sink, out.schema, compression="zstd")
                writer.write_batch(out)
                n += out.num_rows
            if writer is None:  # no rows: an empty file with the schema
                writer = pq.ParquetWriter(sink, _empty_schema(con, cols, table), compression="zstd")
            writer.close()
    finally:
        os.chmod(path, 0o600)
    return n


def filter_array_sql(col: str) -> str:
    """SQL (DuckDB) for filter ``col``'s words as one array, Spark's form of a filter; null where the filter is."""
    return f"case when {col}_n is null then null else [{', '.join(filter_words(col))}] end"


def _empty_schema(con: duckdb.DuckDBPyConnection, cols: str, table: str) -> pa.Schema:
    batch = con.execute(f"select {cols} from {table} limit 0").to_arrow_table()
    schema = batch.schema
    for b in BLOOMS.values():
        schema = schema.set(schema.get_field_index(b), pa.field(b, pa.list_(pa.int64())))
    return schema


@contextmanager
def open_spark_engine(con: duckdb.DuckDBPyConnection, linkage_db: Path, options: SparkOptions,
                      timings: dict[str, float]) -> Iterator[SparkEngine]:
    """A Spark engine with the run's inputs as ``link_input``; its working files are gone when it closes."""
    work = private_dir(options.work_dir or spark_dir(linkage_db))
    run_dir = private_dir(work / f"run-{os.getpid()}-{time.time_ns()}")
    engine = None
    try:
        t = time.perf_counter()
        path = run_dir / "link_input.parquet"
        export_inputs(con, path)
        timings["export_inputs"] = time.perf_counter() - t
        t = time.perf_counter()
        spark = spark_session(options, work)
        timings["spark_session"] = time.perf_counter() - t
        engine = SparkEngine(spark, run_dir, options.master, options.codegen)
        # the inputs are read many times (training, blocking analysis, scoring): cached once
        engine._drop("link_input")
        spark.read.parquet(str(path)).persist().createOrReplaceTempView("link_input")
        engine._views.append("link_input")
        yield engine
    finally:
        if engine is not None:
            try:
                engine.close()
            except Exception:  # noqa: BLE001 - a failing cleanup must not hide the run's own error
                logging.getLogger(__name__).warning("could not release the Spark run's cached tables")
        shutil.rmtree(run_dir, ignore_errors=True)
