"""The store's tables (SQLAlchemy Core) and their idempotent, race-safe creation.

Layout (the same on SQLite and PostgreSQL):

* ``perfkit_series``  one row per (host, metric, labels); a small integer id.
* ``perfkit_samples`` (series_id, ts, value), primary key (series_id, ts); on
  SQLite a ``WITHOUT ROWID`` table, so the key *is* the table (~22-27 B a row);
  on PostgreSQL range-partitioned by day on ``ts`` (``_partitions``: pruning a day
  drops its partition instead of deleting rows). ``ts`` is int64 nanoseconds since
  the epoch, UTC.
* ``perfkit_rollup_1m``, ``perfkit_rollup_1h``: per series and bucket (bucket start
  in ``ts``) the count, sum, min and max of the samples written, kept up to date by
  every write (``_rollups``) so long windows read buckets, not samples.
* ``perfkit_alert_events``, ``perfkit_actions``: alert history and the actions
  queue/audit log. JSON columns are TEXT holding JSON; times are int64 ns UTC.
* ``perfkit_meta``: key/value, holds ``schema_version``.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

log = logging.getLogger("perfkit.store")

SCHEMA_VERSION = "1"

metadata = sa.MetaData()

series = sa.Table(
    "perfkit_series", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("host", sa.Text, nullable=False),
    sa.Column("metric", sa.Text, nullable=False),
    sa.Column("labels", sa.Text, nullable=False, server_default=""),
    sa.UniqueConstraint("host", "metric", "labels", name="perfkit_series_key"),
)

samples = sa.Table(
    "perfkit_samples", metadata,
    sa.Column("series_id", sa.Integer, nullable=False),
    sa.Column("ts", sa.BigInteger, nullable=False),
    sa.Column("value", sa.Double, nullable=False),
    sa.PrimaryKeyConstraint("series_id", "ts", name="perfkit_samples_pk"),
    sqlite_with_rowid=False,
    postgresql_partition_by="RANGE (ts)",
)


def _rollup(name: str) -> sa.Table:
    return sa.Table(
        name, metadata,
        sa.Column("series_id", sa.Integer, nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False),  # bucket start
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.Column("total", sa.Double, nullable=False),
        sa.Column("lo", sa.Double, nullable=False),
        sa.Column("hi", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("series_id", "ts", name=f"{name}_pk"),
        sqlite_with_rowid=False,
    )


rollup_1m = _rollup("perfkit_rollup_1m")
rollup_1h = _rollup("perfkit_rollup_1h")

alert_events = sa.Table(
    "perfkit_alert_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.BigInteger, nullable=False),
    sa.Column("host", sa.Text, nullable=False),
    sa.Column("metric", sa.Text, nullable=False),
    sa.Column("labels", sa.Text, nullable=False, server_default=""),
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("value", sa.Double, nullable=True),
    sa.Column("threshold", sa.Double, nullable=True),
    sa.Column("message", sa.Text, nullable=False, server_default=""),
    sa.Index("perfkit_alert_events_ts", "ts"),
)

actions = sa.Table(
    "perfkit_actions", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("host", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("params", sa.Text, nullable=False, server_default="{}"),
    sa.Column("requested_by", sa.Text, nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("requested_at", sa.BigInteger, nullable=False),
    sa.Column("claimed_at", sa.BigInteger, nullable=True),
    sa.Column("claimed_by", sa.Text, nullable=True),
    sa.Column("finished_at", sa.BigInteger, nullable=True),
    sa.Column("before", sa.Text, nullable=True),
    sa.Column("after", sa.Text, nullable=True),
    sa.Column("verdict", sa.Text, nullable=True),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("duration_s", sa.Double, nullable=True),
    sa.Index("perfkit_actions_queue", "host", "status"),
    sa.Index("perfkit_actions_requested_at", "requested_at"),
)

meta = sa.Table(
    "perfkit_meta", metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# Arbitrary constants: the advisory locks that serialise schema creation and partition DDL
# on PostgreSQL (see ddl_lock).
TABLES_LOCK = 7_104_551_207
PARTITIONS_LOCK = 7_104_551_208


def ddl_lock(conn: sa.Connection, key: int = TABLES_LOCK) -> None:
    """Take the transaction-level advisory lock ``key`` of the connection's current schema.

    Advisory locks belong to the whole database; keyed by schema as well, stores in
    different schemas of one database create their tables without waiting for each other,
    while two processes of one schema still take turns.
    """
    conn.execute(sa.text("SELECT pg_advisory_xact_lock("
                         "hashtextextended(coalesce(current_schema(), ''), :k))"), {"k": key})


#: The pytest plugin's history: one row per test per run.
benchmarks = sa.Table(
    "perfkit_benchmarks", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("baseline", sa.String(200), nullable=False, default=""),  # --perf-save NAME or ''
    sa.Column("test", sa.String(1000), nullable=False),                  # pytest node id
    sa.Column("ts", sa.BigInteger, nullable=False),                      # int64 ns UTC
    sa.Column("commit", sa.String(64), nullable=False, default=""),
    sa.Column("machine", sa.Text, nullable=False, default="{}"),         # JSON
    sa.Column("rounds", sa.Integer, nullable=False),
    sa.Column("iterations", sa.Integer, nullable=False),
    sa.Column("median_s", sa.Float, nullable=False),
    sa.Column("p95_s", sa.Float, nullable=False),
    sa.Column("mean_s", sa.Float, nullable=False),
    sa.Column("stdev_s", sa.Float, nullable=False),
    sa.Column("min_s", sa.Float),
    sa.Column("samples", sa.Text, nullable=False),                       # JSON list, s per call
    sa.Column("ref_samples", sa.Text),            # JSON: interleaved reference rounds, s/call
    sa.Column("ref_median_s", sa.Float),
    sa.Column("ref_version", sa.Integer),         # perfkit.pytest_plugin._measure.REFERENCE_VERSION
    sa.Column("ratio", sa.Float),                 # vs compared_run_id (normalised if 'normalized')
    sa.Column("raw_ratio", sa.Float),             # absolute ratio of medians
    sa.Column("norm_ratio", sa.Float),            # ratio normalised by the reference workload
    sa.Column("normalized", sa.Boolean),
    sa.Column("ci_low", sa.Float),
    sa.Column("ci_high", sa.Float),
    sa.Column("confidence", sa.Float),
    sa.Column("max_regression", sa.Float),
    sa.Column("verdict", sa.String(32), nullable=False, default=""),
    sa.Column("compared_run_id", sa.String(64)),
    sa.Column("compared_baseline", sa.String(200)),
    sa.Column("budget", sa.Text),                 # JSON {stat: [limit, measured, ok]}
    sa.Column("discarded_rounds", sa.Integer),    # rounds dropped: the OS preempted the thread
    sa.Column("worker", sa.String(64), nullable=False, default=""),
    sa.Column("wall_s", sa.Float),
    sa.Index("ix_perfkit_benchmarks_test_ts", "test", "ts"),
    sa.Index("ix_perfkit_benchmarks_baseline", "baseline"),
)


def create_tables(engine: sa.Engine, tables: sa.MetaData) -> None:
    """Create the missing tables of ``tables``; safe when several processes do it at once."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn = conn.execution_options(perfkit_immediate=True)
        with conn.begin():
            _create(conn, tables)


def _create(conn: sa.Connection, tables: sa.MetaData) -> None:
    if conn.dialect.name == "postgresql":
        ddl_lock(conn)
    for table in tables.sorted_tables:
        conn.execute(sa.schema.CreateTable(table, if_not_exists=True))
        for index in table.indexes:
            conn.execute(sa.schema.CreateIndex(index, if_not_exists=True))


def create_schema(engine: sa.Engine) -> None:
    """Create the tables that are missing; safe when several processes do it at once."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn = conn.execution_options(perfkit_immediate=True)
        with conn.begin():
            older = (sa.inspect(conn).has_table(samples.name)
                     and not sa.inspect(conn).has_table(rollup_1m.name))
            _create(conn, metadata)
            if older and conn.execute(sa.select(samples.c.ts).limit(1)).first() is not None:
                log.warning("store: the rollup tables are new to this store, so they hold "
                            "only samples written from now on; Store.rebuild_rollups() fills "
                            "them from the samples already stored")
            have = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version"))
            if have.first() is None:
                conn.execute(meta.insert().values(key="schema_version", value=SCHEMA_VERSION))
