"""Statement timing and pool state from SQLAlchemy engines."""

from __future__ import annotations

import re
import threading
import weakref
from bisect import bisect_right
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import event

from perfkit.collectors._application import latency_readings
from perfkit.collectors._base import Reading
from perfkit.recorder import BUCKET_BOUNDS, Histogram

__all__ = ["INTERNAL", "DatabaseCollector", "StatementStats", "normalize_sql"]

INTERNAL = {"perfkit_internal": True}
"""Execution options that keep a statement out of the metrics: perfkit's own probes
and DDL run through ``engine.execution_options(**INTERNAL)``."""

_LITERALS = re.compile(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b")
_SPACE = re.compile(r"\s+")
_PARAM = r"(?:\?|%\(\w+\)s|:\w+|\$\d+|%s)"
_IN_LIST = re.compile(rf"\(\s*{_PARAM}(?:\s*,\s*{_PARAM})+\s*\)")
_MAX_STATEMENTS = 500
_RECENT_WEIGHT = 0.2


def normalize_sql(sql: str) -> str:
    """Statement text with literals and IN-lists folded, so one query shape is one key."""
    s = _LITERALS.sub("?", sql)
    s = _IN_LIST.sub("(?)", s)
    return _SPACE.sub(" ", s).strip()


@dataclass(slots=True)
class StatementStats:
    """Lifetime timing of one normalised statement on one engine."""

    sql: str
    engine: str
    count: int = 0
    total: float = 0.0
    max: float = 0.0
    recent: float = 0.0
    last_sql: str = ""
    last_params: Any = None


class DatabaseCollector:
    """Times every statement of the instrumented engines and reads their pools.

    Per interval: ``database.query_time`` (mean ms) with p50/p95/p99,
    ``database.queries_per_second``, and ``pool_size`` / ``checked_out`` /
    ``overflow`` for pools that keep those numbers (QueuePool); other pools
    (SingletonThreadPool, NullPool, StaticPool) yield no pool sample.
    ``statements()`` keeps lifetime totals per normalised statement for the
    query optimiser.
    """

    name = "database"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._engines: dict[str, weakref.ref[sa.Engine]] = {}
        self._hist = Histogram()
        self._since = perf_counter()
        self._seen = False
        self._shapes: dict[str, str] = {}
        self._stmts: dict[tuple[str, str], StatementStats] = {}

    def instrument(self, engine: sa.Engine) -> None:
        """Listen to ``engine``'s statements (idempotent per engine)."""
        if not isinstance(engine, sa.Engine):
            raise TypeError("instrument_engine() needs a sqlalchemy Engine, "
                            f"got {type(engine).__name__}")
        key = f"{engine.url.render_as_string(hide_password=True)}#{id(engine):x}"
        if key in self._engines and self._engines[key]() is engine:
            return
        self._engines[key] = weakref.ref(engine)

        def before(conn: Any, cursor: Any, statement: str, params: Any, context: Any,
                   executemany: bool) -> None:
            if not conn.get_execution_options().get("perfkit_internal"):
                conn.info.setdefault("perfkit_t0", []).append(perf_counter())

        def after(conn: Any, cursor: Any, statement: str, params: Any, context: Any,
                  executemany: bool) -> None:
            if conn.get_execution_options().get("perfkit_internal"):
                return
            stack = conn.info.get("perfkit_t0")
            if stack:
                self._observe(key, statement, params, perf_counter() - stack.pop())

        def failed(ctx: Any) -> None:
            stack = ctx.connection.info.get("perfkit_t0") if ctx.connection is not None else None
            if stack:
                stack.pop()

        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)
        event.listen(engine, "handle_error", failed)

    def engines(self) -> dict[str, sa.Engine]:
        """The instrumented engines still alive, by the key ``statements()`` uses."""
        live = ((k, r()) for k, r in list(self._engines.items()))
        return {k: e for k, e in live if e is not None}

    def _observe(self, engine_key: str, statement: str, params: Any, seconds: float) -> None:
        shape = self._shapes.get(statement)
        if shape is None:
            shape = normalize_sql(statement)
            if len(self._shapes) < 10 * _MAX_STATEMENTS:
                self._shapes[statement] = shape
        i = bisect_right(BUCKET_BOUNDS, seconds)
        with self._lock:
            h = self._hist
            h.count += 1
            h.total += seconds
            h.buckets[i] += 1
            st = self._stmts.get((engine_key, shape))
            if st is None:
                if len(self._stmts) >= _MAX_STATEMENTS:
                    return
                st = self._stmts[(engine_key, shape)] = StatementStats(shape, engine_key)
            st.count += 1
            st.total += seconds
            # A moving mean (the last ~10 runs weigh most) shows a fix at once, where the
            # lifetime mean would keep an indexed query looking slow for hours.
            st.recent = (seconds if st.count == 1
                         else st.recent + _RECENT_WEIGHT * (seconds - st.recent))
            st.last_sql = statement
            st.last_params = params
            if seconds > st.max:
                st.max = seconds

    def collect(self) -> list[Reading]:
        """Drain the interval's timings and read every pool."""
        now = perf_counter()
        with self._lock:
            h, self._hist = self._hist, Histogram()
            since, self._since = self._since, now
        out: list[Reading] = []
        if h.count:
            self._seen = True
        if self._seen:
            out.append(Reading("database.queries_per_second", h.count / max(now - since, 1e-9)))
            out += latency_readings("database.query_time", h)
        size = checked = overflow = 0
        have_pool = False
        for engine in self.engines().values():
            pool: Any = engine.pool  # QueuePool and friends; checked by hasattr below
            if all(hasattr(pool, a) for a in ("size", "checkedout", "overflow")):
                have_pool = True
                size += pool.size()
                checked += pool.checkedout()
                # QueuePool counts overflow from -pool_size while the pool fills;
                # only connections beyond pool_size are overflow to a user.
                overflow += max(0, pool.overflow())
        if have_pool:
            out += [Reading("database.pool_size", float(size)),
                    Reading("database.checked_out", float(checked)),
                    Reading("database.overflow", float(overflow))]
        return out

    def statements(self) -> pd.DataFrame:
        """Lifetime totals per normalised statement, worst total time first.

        Columns: engine, sql (normalised), count, total_ms, mean_ms, max_ms,
        recent_ms (exponentially weighted mean, weight 0.2 on the newest run),
        last_sql (the raw text last run, literals included) and last_params.
        """
        with self._lock:
            rows = [(s.engine, s.sql, s.count, s.total * 1e3, s.total / s.count * 1e3,
                     s.max * 1e3, s.recent * 1e3, s.last_sql, s.last_params)
                    for s in self._stmts.values() if s.count]
        cols = ["engine", "sql", "count", "total_ms", "mean_ms", "max_ms", "recent_ms", "last_sql",
                "last_params"]
        frame = pd.DataFrame(rows, columns=cols)
        return frame.sort_values("total_ms", ascending=False, ignore_index=True)
