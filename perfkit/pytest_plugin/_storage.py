"""The ``perfkit_benchmarks`` table: one row per test per run.

The table is part of the store's schema (:mod:`perfkit.store._schema`), created on first use
through the store's engine and schema lock (:mod:`perfkit.store._engine`), with the store's time
convention (``ts`` in int64 nanoseconds UTC), so pytest-xdist workers can write concurrently on
SQLite and PostgreSQL. ``perfkit.Store.benchmarks()``
reads through :func:`read_benchmarks`.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from perfkit.store._schema import benchmarks

TABLE_NAME = "perfkit_benchmarks"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

benchmarks_table = benchmarks

COLUMNS = [c.name for c in benchmarks_table.columns if c.name != "id"]

_engines: dict[str, Engine] = {}
_ready: set[int] = set()
_lock = threading.Lock()


def engine_for(url: str) -> Engine:
    """The store's engine for ``url`` (cached per process): the same URL rules, SQLite WAL,
    busy timeout and up-front write lock as :class:`perfkit.Store`, so pytest-xdist workers
    wait for each other instead of failing on "database is locked"."""
    from perfkit.store._engine import make_engine, normalise_url

    with _lock:
        eng = _engines.get(url)
        if eng is None:
            eng = _engines[url] = make_engine(normalise_url(url))
        return eng


def ensure_table(engine: Engine) -> None:
    """Create the table once per engine, inside the store's schema lock (SQLite's write
    lock, PostgreSQL's advisory lock), so concurrent workers never race on CREATE."""
    if id(engine) in _ready:
        return
    from perfkit.store._schema import create_schema

    _set_aside_legacy(engine)
    create_schema(engine)
    _ready.add(id(engine))


def _set_aside_legacy(engine: Engine) -> None:
    """Keep a history table from before ``ts`` was int nanoseconds, renamed, not mixed in."""
    insp = sa.inspect(engine)
    if not insp.has_table(TABLE_NAME):
        return
    ts = next((c for c in insp.get_columns(TABLE_NAME) if c["name"] == "ts"), None)
    if ts is None or isinstance(ts["type"], sa.Integer):
        return
    legacy = f"{TABLE_NAME}_legacy"
    with engine.begin() as conn:
        conn.execute(sa.text(f"ALTER TABLE {TABLE_NAME} RENAME TO {legacy}"))
        for index in benchmarks.indexes:
            conn.execute(sa.text(f"DROP INDEX IF EXISTS {index.name}"))


def _ns(ts: Any) -> int:
    """int64 nanoseconds UTC for a datetime, an ISO string, an int (ns) or None (now)."""
    if ts is None:
        return time.time_ns()
    if isinstance(ts, int):
        return ts
    if isinstance(ts, str):
        ts = datetime.fromisoformat(ts)
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    delta = ts - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def _datetime(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // 1_000)


def _to_text(value: Any, default: str) -> str:
    if value is None:
        return default
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def write_benchmark(engine: Engine, row: dict) -> None:
    """Insert one result row (see the table for columns; unknown keys are an error).

    ``machine``, ``samples`` and ``budget`` may be given as Python objects
    (serialised to JSON) or as JSON text; ``ts`` defaults to now (UTC).
    """
    unknown = set(row) - set(COLUMNS)
    if unknown:
        raise ValueError(f"write_benchmark: unknown columns {sorted(unknown)}")
    values = dict(row)
    values["ts"] = _ns(values.get("ts"))
    values["machine"] = _to_text(values.get("machine"), "{}")
    for key in ("samples", "ref_samples"):
        value = values.get(key)
        if value is not None and not isinstance(value, str):
            values[key] = json.dumps(list(value))
    values.setdefault("samples", "[]")
    if "budget" in values and values["budget"] is not None:
        values["budget"] = _to_text(values["budget"], "")
    for key in ("baseline", "commit", "verdict", "worker"):
        values[key] = values.get(key) or ""
    ensure_table(engine)

    from perfkit.store._engine import connect

    with connect(engine, write=True) as conn, conn.begin():
        conn.execute(benchmarks_table.insert().values(**values))


def latest_baseline(engine: Engine, test: str, name: str | None = None,
                    exclude_run_id: str | None = None) -> dict | None:
    """The most recent saved row of ``test`` (with baseline ``name`` if given), or None.

    ``samples`` and ``machine`` come back parsed. No pandas.
    """
    ensure_table(engine)
    t = benchmarks_table
    q = sa.select(t).where(t.c.test == test)
    q = q.where(t.c.baseline == name) if name else q.where(t.c.baseline != "")
    if exclude_run_id:
        q = q.where(t.c.run_id != exclude_run_id)
    q = q.order_by(t.c.ts.desc(), t.c.id.desc()).limit(1)

    with engine.connect() as conn:
        row = conn.execute(q).mappings().first()
    if row is None:
        return None
    out = dict(row)
    out["samples"] = json.loads(out["samples"])
    out["ref_samples"] = json.loads(out["ref_samples"]) if out.get("ref_samples") else None
    out["machine"] = json.loads(out["machine"] or "{}")
    out["ts"] = _datetime(int(out["ts"]))
    return out


def read_benchmarks(engine: Engine, test: str | None = None,
                    baseline: str | None = None) -> Any:
    """All stored results as a DataFrame (oldest first), optionally for one test / baseline.

    Columns: ``id`` and every table column; ``ts`` is datetime64[ns, UTC],
    ``samples`` (and ``ref_samples``) a list of floats (seconds per call, one
    per round), ``machine`` and ``budget`` JSON text.
    """
    import pandas as pd

    ensure_table(engine)
    t = benchmarks_table
    q = sa.select(t)
    if test is not None:
        q = q.where(t.c.test == test)
    if baseline is not None:
        q = q.where(t.c.baseline == baseline)
    q = q.order_by(t.c.ts, t.c.id)
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(q).mappings()]
    cols = ["id", *COLUMNS]
    frame = pd.DataFrame(rows, columns=cols)
    frame["ts"] = pd.to_datetime(frame["ts"].astype("int64"), unit="ns", utc=True)
    for col in ("samples", "ref_samples"):
        frame[col] = [json.loads(v) if isinstance(v, str) else v for v in frame[col]]
    for col in ("median_s", "p95_s", "mean_s", "stdev_s", "min_s", "ratio", "ci_low", "ci_high",
                "confidence", "max_regression", "wall_s", "ref_median_s", "raw_ratio",
                "norm_ratio"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    return frame
