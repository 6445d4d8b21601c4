"""PostgreSQL: the samples table partitioned by day on ``ts``, so retention drops days.

A store created by this version has ``perfkit_samples`` declared ``PARTITION BY RANGE
(ts)`` with one partition per UTC day, ``perfkit_samples_YYYYMMDD`` holding
``[midnight, next midnight)`` in int64 ns. Partitions are created ahead (today and
the next :data:`AHEAD_DAYS` days when the schema is checked) and on demand for the
days a batch touches, each in its own short transaction, before the batch is
written: a row with no partition would be refused by PostgreSQL (SQLSTATE 23514).

A store created before partitioning has a plain table; it keeps working (prune then
deletes rows, as before), :func:`is_partitioned` tells the two apart and :func:`migrate`
(``Store.partition_samples()``) moves it to day partitions.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import sqlalchemy as sa

from perfkit.store._schema import PARTITIONS_LOCK, ddl_lock

log = logging.getLogger("perfkit.store")

DAY_NS = 86_400 * 10**9
AHEAD_DAYS = 2
PARENT = "perfkit_samples"
# Dropping a partition takes an ACCESS EXCLUSIVE lock on the parent: while it waits for a
# running read, every new writer queues behind it. A short lock timeout (and a retry)
# bounds how long writers can be held up.
DROP_LOCK_TIMEOUT_MS = 500
DROP_TRIES = 5


def day_of(ts_ns: int) -> int:
    """The UTC day (days since the epoch) holding ``ts_ns``."""
    return ts_ns // DAY_NS


def name(day: int) -> str:
    """The partition of ``day`` (days since the epoch)."""
    return f"{PARENT}_{pd.Timestamp(day * DAY_NS, unit='ns'):%Y%m%d}"


def days(ts: np.ndarray) -> set[int]:
    """The distinct UTC days of an int64-ns array."""
    if not len(ts):
        return set()
    return {int(d) for d in np.unique(ts // DAY_NS)}


def is_partitioned(conn: sa.Connection) -> bool:
    """Whether the samples table in the connection's search path is partitioned."""
    return bool(conn.execute(sa.text(
        "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table p "
        "WHERE p.partrelid = to_regclass(:t))"), {"t": PARENT}).scalar())


def existing(conn: sa.Connection) -> dict[int, str]:
    """day → partition name for the partitions the samples table has now."""
    rows = conn.execute(sa.text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(:t)"), {"t": PARENT}).scalars()
    out = {}
    for rel in rows:
        stamp = rel.removeprefix(f"{PARENT}_")
        if len(stamp) == 8 and stamp.isdigit():
            out[int(pd.Timestamp(stamp).value // DAY_NS)] = rel
    return out


def create(engine: sa.Engine, want: set[int]) -> None:
    """Create the partitions of the days in ``want`` that are missing (own transaction)."""
    with engine.connect() as conn, conn.begin():
        ddl_lock(conn, PARTITIONS_LOCK)
        have = existing(conn)
        for day in sorted(want - set(have)):
            conn.execute(sa.text(
                f'CREATE TABLE IF NOT EXISTS "{name(day)}" PARTITION OF {PARENT} '
                f"FOR VALUES FROM ({day * DAY_NS}) TO ({(day + 1) * DAY_NS})"))


def ahead(now_ns: int | None = None) -> set[int]:
    """Today and the next :data:`AHEAD_DAYS` days."""
    today = day_of(pd.Timestamp.now(tz="UTC").value if now_ns is None else now_ns)
    return set(range(today, today + AHEAD_DAYS + 1))


def drop_before(engine: sa.Engine, cutoff: int) -> tuple[int, list[str]]:
    """Drop the partitions wholly older than ``cutoff``; (rows they held, names dropped).

    Each partition is counted (a plain read: writers go on), then dropped in its own
    transaction under a short lock timeout, retried a few times if a long read holds the
    table; a partition still locked after that is left for the next prune (logged).
    """
    with engine.connect() as conn:
        if not is_partitioned(conn):
            log.info("prune: perfkit_samples is not partitioned (created by perfkit before "
                     "day partitions), so old samples are deleted row by row; to drop whole "
                     "days instead, run Store.partition_samples() once (docs/scaling.md, "
                     "'Retention')")
            return 0, []
        old = {d: n for d, n in existing(conn).items() if (d + 1) * DAY_NS <= cutoff}
    rows, dropped = 0, []
    for _day, rel in sorted(old.items()):
        with engine.connect() as conn:
            n = int(conn.execute(sa.text(f'SELECT count(*) FROM "{rel}"')).scalar() or 0)
            conn.rollback()
            for attempt in range(DROP_TRIES):
                try:
                    with conn.begin():
                        conn.execute(sa.text(f"SET LOCAL lock_timeout = {DROP_LOCK_TIMEOUT_MS}"))
                        conn.execute(sa.text(f'DROP TABLE IF EXISTS "{rel}"'))
                    break
                except sa.exc.OperationalError as exc:
                    if "lock timeout" not in str(exc) or attempt == DROP_TRIES - 1:
                        log.warning("prune: partition %s not dropped (%s); the next prune "
                                    "tries again", rel, str(exc).splitlines()[0])
                        n = -1
                        break
        if n >= 0:
            rows += n
            dropped.append(rel)
    return rows, dropped


def migrate(engine: sa.Engine, table: sa.Table, timeout_s: float) -> int:
    """Move a plain samples table into day partitions, in one transaction; rows moved
    (0 when it already is partitioned).

    The table is locked for the copy: reads wait and writers buffer (their lock timeout
    is transient) until it commits; ``timeout_s`` bounds the statements.
    """
    old = f"{PARENT}_unpartitioned"
    with engine.connect() as conn, conn.begin():
        ddl_lock(conn, PARTITIONS_LOCK)
        if is_partitioned(conn):
            return 0
        ms = int(timeout_s * 1000)
        conn.execute(sa.text(f"SET LOCAL statement_timeout = {ms}"))
        conn.execute(sa.text(f"SET LOCAL lock_timeout = {ms}"))
        conn.execute(sa.text(f"ALTER TABLE {PARENT} RENAME TO {old}"))
        conn.execute(sa.text(f"ALTER TABLE {old} RENAME CONSTRAINT perfkit_samples_pk "
                             f"TO {old}_pk"))
        conn.execute(sa.schema.CreateTable(table))
        got = conn.execute(sa.text(
            f"SELECT DISTINCT (ts - (((ts % {DAY_NS}) + {DAY_NS}) % {DAY_NS})) / {DAY_NS} "
            f"FROM {old}")).scalars()
        for day in sorted({int(d) for d in got} | ahead()):
            conn.execute(sa.text(
                f'CREATE TABLE "{name(day)}" PARTITION OF {PARENT} '
                f"FOR VALUES FROM ({day * DAY_NS}) TO ({(day + 1) * DAY_NS})"))
        n = conn.execute(sa.text(f"INSERT INTO {PARENT} (series_id, ts, value) "
                                 f"SELECT series_id, ts, value FROM {old}")).rowcount
        conn.execute(sa.text(f"DROP TABLE {old}"))
    return int(n)
