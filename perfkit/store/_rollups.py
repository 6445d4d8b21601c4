"""Downsampled rollups: per series and 1 min / 1 h bucket, count, sum, min and max.

Every write batch adds its samples to both rollup tables in the same transaction
(PostgreSQL: two ``INSERT … SELECT … GROUP BY`` from the batch's staging table;
SQLite: the batch grouped with numpy, one upsert per bucket), so the rollups are
exactly as current as the samples. A batch that overwrote stored samples (a
retried batch) is not added: the buckets it touched are recomputed from the raw
samples instead (``*_refresh``), so every sample counts once. :func:`rebuild`
recomputes any range, for samples written before the rollups existed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from perfkit.frames import empty_samples
from perfkit.store import _fastio as fastio
from perfkit.store import _schema as sc

MINUTE_NS, HOUR_NS = 60 * 10**9, 3600 * 10**9
#: every → (table, bucket width in ns)
LEVELS: dict[str, tuple[sa.Table, int]] = {"1min": (sc.rollup_1m, MINUTE_NS),
                                           "1h": (sc.rollup_1h, HOUR_NS)}
COLUMNS = ["ts", "host", "metric", "labels", "count", "min", "mean", "max"]


def level(every: str) -> tuple[sa.Table, int]:
    """The table and bucket width of ``every`` ("1min" or "1h"); ValueError otherwise."""
    if every not in LEVELS:
        raise ValueError(f"every={every!r}: rollups exist for {list(LEVELS)}; read raw samples "
                         "with Store.samples() for anything finer")
    return LEVELS[every]


# a bucket's columns n, total, lo, hi from the samples it holds
_AGG = "count(*), sum(value), min(value), max(value)"


def _bucket_sql(width: int) -> str:
    # floor to the bucket also for ts before 1970 (SQL's % keeps the dividend's sign)
    return f"(ts - (((ts % {width}) + {width}) % {width}))"


def _pg_add(table: str, width: int, source: str) -> str:
    return (f"INSERT INTO {table} AS r (series_id, ts, n, total, lo, hi) "
            f"SELECT series_id, {_bucket_sql(width)}, {_AGG} FROM {source} GROUP BY 1, 2 "
            "ON CONFLICT (series_id, ts) DO UPDATE SET n = r.n + EXCLUDED.n, "
            "total = r.total + EXCLUDED.total, lo = LEAST(r.lo, EXCLUDED.lo), "
            "hi = GREATEST(r.hi, EXCLUDED.hi)")


_PG_FROM_STAGE = [_pg_add(t.name, w, "perfkit_stage") for t, w in LEVELS.values()]


def pg_add(dbapi_conn: Any) -> None:
    """Add the staged batch (just upserted into the samples table) to both rollup tables."""
    with dbapi_conn.cursor() as cur:
        for sql in _PG_FROM_STAGE:
            cur.execute(sql)


def _pg_refresh(table: str, width: int) -> list[str]:
    touched = (f"(SELECT DISTINCT series_id, {_bucket_sql(width)} AS b FROM perfkit_stage) k")
    return [f"DELETE FROM {table} r USING {touched} WHERE r.series_id = k.series_id "
            "AND r.ts = k.b",
            f"INSERT INTO {table} (series_id, ts, n, total, lo, hi) SELECT s.series_id, k.b, "
            f"{_AGG} FROM {touched} JOIN perfkit_samples s ON s.series_id = k.series_id "
            f"AND s.ts >= k.b AND s.ts < k.b + {width} GROUP BY 1, 2"]


_PG_REFRESH = [q for t, w in LEVELS.values() for q in _pg_refresh(t.name, w)]


def pg_refresh(dbapi_conn: Any) -> None:
    """Recompute, from the raw samples, the buckets the staged batch touched (a batch
    that overwrote samples: adding it would count those twice)."""
    with dbapi_conn.cursor() as cur:
        for sql in _PG_REFRESH:
            cur.execute(sql)


_SQLITE_ADD = ("INSERT INTO {t} (series_id, ts, n, total, lo, hi) VALUES (?, ?, ?, ?, ?, ?) "
               "ON CONFLICT (series_id, ts) DO UPDATE SET n = n + excluded.n, "
               "total = total + excluded.total, lo = min(lo, excluded.lo), "
               "hi = max(hi, excluded.hi)")


def _group(keys: np.ndarray, bucket: np.ndarray, n: np.ndarray, total: np.ndarray,
           lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, ...]:
    """Merge runs of equal (key, bucket) in arrays already sorted by them."""
    cut = np.flatnonzero(np.r_[True, (keys[1:] != keys[:-1]) | (bucket[1:] != bucket[:-1])])
    return (keys[cut], bucket[cut], np.add.reduceat(n, cut), np.add.reduceat(total, cut),
            np.minimum.reduceat(lo, cut), np.maximum.reduceat(hi, cut))


def sqlite_add(dbapi_conn: Any, sid: np.ndarray, ts: np.ndarray, value: np.ndarray) -> None:
    """Add a batch (already written to the samples table) to both rollup tables."""
    if not len(sid):
        return
    # one sort; each coarser level merges the finer one's groups (the widths nest)
    order = np.lexsort((ts, sid))
    t = ts[order]
    v = value[order]
    groups: tuple[np.ndarray, ...] = (sid[order], t, np.ones(len(t), np.int64), v, v, v)
    cur = dbapi_conn.cursor()
    try:
        for table, width in sorted(LEVELS.values(), key=lambda level: level[1]):
            keys, b = groups[0], groups[1]
            groups = _group(keys, b - np.mod(b, width), *groups[2:])
            cur.executemany(_SQLITE_ADD.format(t=table.name),
                            zip(*(g.tolist() for g in groups)))
    finally:
        cur.close()


_SQLITE_DROP = "DELETE FROM {t} WHERE series_id = ? AND ts = ?"
_SQLITE_REDO = ("INSERT INTO {t} (series_id, ts, n, total, lo, hi) SELECT series_id, ?, "
                f"{_AGG} FROM perfkit_samples WHERE series_id = ? AND ts >= ? AND ts < ? "
                "GROUP BY series_id")


def sqlite_refresh(dbapi_conn: Any, sid: np.ndarray, ts: np.ndarray) -> None:
    """Recompute, from the raw samples, the buckets a batch touched (a batch that
    overwrote samples: adding it would count those twice)."""
    cur = dbapi_conn.cursor()
    try:
        for table, width in LEVELS.values():
            pairs = np.unique(np.stack([sid, ts - np.mod(ts, width)], axis=1), axis=0).tolist()
            cur.executemany(_SQLITE_DROP.format(t=table.name), pairs)
            cur.executemany(_SQLITE_REDO.format(t=table.name),
                            [(b, k, b, b + width) for k, b in pairs])
    finally:
        cur.close()


def rebuild(conn: sa.Connection, lo: int | None, hi: int | None) -> dict[str, int]:
    """Recompute the rollup buckets overlapping [lo, hi] from the raw samples; buckets
    written per table. Buckets with no raw samples left are deleted."""
    out = {}
    for every, (table, width) in LEVELS.items():
        b_lo = None if lo is None else lo - lo % width
        b_hi = None if hi is None else hi - hi % width + width  # exclusive
        where, params = [], {}
        if b_lo is not None:
            where.append("ts >= :lo")
            params["lo"] = b_lo
        if b_hi is not None:
            where.append("ts < :hi")
            params["hi"] = b_hi
        cond = f" WHERE {' AND '.join(where)}" if where else ""
        conn.execute(sa.text(f"DELETE FROM {table.name}{cond}"), params)
        n = conn.execute(sa.text(
            f"INSERT INTO {table.name} (series_id, ts, n, total, lo, hi) "
            f"SELECT series_id, {_bucket_sql(width)}, {_AGG} FROM perfkit_samples{cond} "
            "GROUP BY 1, 2"), params).rowcount
        out[every] = int(n)
    return out


def read(conn: sa.Connection, table: sa.Table, ids: list[int], rows: list[Any],
         lo: int | None, hi: int | None) -> pd.DataFrame:
    """The buckets of the series ``ids`` (``rows``: their id, host, metric, labels) whose
    start lies in [lo, hi], as a :data:`COLUMNS` frame sorted by ts."""
    r = table
    q = sa.select(r.c.series_id, r.c.ts, r.c.n, r.c.total, r.c.lo, r.c.hi).where(
        r.c.series_id.in_(ids))
    if lo is not None:
        q = q.where(r.c.ts >= lo)
    if hi is not None:
        q = q.where(r.c.ts <= hi)
    got = conn.execute(q).all()
    if not got:
        return empty()
    arr = np.array([g[1:] for g in got], dtype=np.float64)
    pos = {int(row[0]): i for i, row in enumerate(rows)}
    which = np.array([pos[int(g[0])] for g in got], dtype=np.int64)
    ts = np.array([g[1] for g in got], dtype=np.int64)
    order = np.lexsort((which, ts))
    frame = fastio.build_frame(which[order], ts[order], arr[order, 2] / arr[order, 1],
                               [x[1] for x in rows], [x[2] for x in rows],
                               [x[3] for x in rows], sort=False)
    frame = frame.rename(columns={"value": "mean"})
    frame["count"] = arr[order, 1].astype(np.int64)
    frame["min"], frame["max"] = arr[order, 3], arr[order, 4]
    return frame[COLUMNS]


def empty() -> pd.DataFrame:
    """The rollup frame with no rows (contract dtypes for the key columns)."""
    base = empty_samples().drop(columns="value")
    return base.assign(count=pd.Series(dtype=np.int64), min=pd.Series(dtype=np.float64),
                       mean=pd.Series(dtype=np.float64),
                       max=pd.Series(dtype=np.float64))[COLUMNS]


def from_samples(frame: pd.DataFrame, every: str) -> pd.DataFrame:
    """The same buckets computed from a samples frame (a source without rollup tables)."""
    _table, width = level(every)
    if not len(frame):
        return empty()
    ts = frame["ts"].astype("int64").to_numpy() if frame["ts"].dt.tz is None else \
        frame["ts"].dt.tz_convert("UTC").dt.tz_localize(None).astype("int64").to_numpy()
    b = pd.to_datetime(ts - np.mod(ts, width), unit="ns", utc=True)
    g = (frame.assign(ts=b).groupby(["ts", "host", "metric", "labels"], sort=True)["value"]
         .agg(count="size", min="min", mean="mean", max="max").reset_index())
    g["count"] = g["count"].astype(np.int64)
    return g[COLUMNS]
