"""``query_optimization``: explain the slowest statements and index the columns they scan.

From :meth:`DatabaseCollector.statements` (grouped by normalised SQL, ranked by total
time) it takes the worst ``top`` SELECTs, runs ``EXPLAIN QUERY PLAN`` (SQLite) or
``EXPLAIN (FORMAT JSON)`` (PostgreSQL) with the statement's last parameters, finds
full table scans on filtered or joined columns and proposes ``CREATE INDEX``.
With ``apply=True`` it creates the index and reports the plan and the median
query time before and after.

Safety: a dry run only plans: ``EXPLAIN`` without ANALYZE executes nothing, so a
volatile function or a sequence in the statement is untouched, and no time is
measured. Otherwise the application's own SELECT is timed inside a read-only
transaction (PostgreSQL ``SET TRANSACTION READ ONLY`` and ``statement_timeout``,
SQLite ``PRAGMA query_only``), rolled back: a statement that would write (``nextval``)
fails there and is reported as not measured. Index DDL is built only from
names the database's catalogue returned, quoted by the dialect's identifier
preparer. Nothing from a request reaches SQL. Measurements use a raw DBAPI
connection so they do not count in the application's own statement metrics.
"""

from __future__ import annotations

import hashlib
import re
import statistics
import time
from typing import Any

import sqlalchemy as sa

from perfkit.actions._context import ActionContext
from perfkit.actions._plans import EQUALITY, Scan, pg_scans, plan_lines, sqlite_scans
from perfkit.actions._registry import Outcome
from perfkit.collectors import INTERNAL

__all__ = ["DESCRIPTION", "PARAMS", "WATCH", "query_optimization"]

DESCRIPTION = ("Explain the statements with the largest total time, find full scans on "
               "filtered or joined columns and propose CREATE INDEX; apply=True creates the "
               "index and reports the plan and timing before and after.")
PARAMS: dict[str, dict[str, Any]] = {
    "apply": {"type": "bool", "default": False, "description": "create the proposed indexes"},
    "top": {"type": "int", "default": 3, "min": 1, "max": 20,
            "description": "how many of the slowest statements to explain"},
    "repeat": {"type": "int", "default": 5, "min": 1, "max": 50,
               "description": "timed runs per statement (the median is reported)"},
    "engine": {"type": "str", "default": "",
               "description": "only engines whose key contains this text"},
    "timeout_s": {"type": "float", "default": 10.0, "min": 0.1, "max": 600.0,
                  "description": "PostgreSQL statement_timeout for the timed runs"},
}
WATCH = {"statement_ms": "higher", "database.query_time": "higher"}
_READ_ONLY = re.compile(r"^\s*(SELECT|WITH)\b", re.IGNORECASE)
# Catalogue reads (SQLAlchemy's inspector, our own findings) are not the application's.
_CATALOG = re.compile(r"\b(?:pg_catalog|information_schema|pg_class|pg_namespace|pg_attribute|"
                      r"pg_index|pg_stat\w*|pg_settings|sqlite_master|sqlite_schema|"
                      r"sqlite_stat\d|sqlite_temp_master)\b", re.IGNORECASE)
_WRITES = re.compile(r"\b(INSERT|UPDATE|DELETE|MERGE|CREATE|DROP|ALTER|TRUNCATE)\b", re.IGNORECASE)
_SLOW_FIRST_RUN_S = 1.0
_SAMPLE_ROWS, _MIN_DISTINCT = 10_000, 10


def _placeholders_fit(sql: str, params: Any, paramstyle: str) -> bool:
    # The collector folds literals into '?', so a statement is re-runnable only when
    # its placeholders still match the parameters the application sent.
    if isinstance(params, (list, tuple)) and params and isinstance(params[0], (list, tuple, dict)):
        return False  # executemany
    if paramstyle == "qmark":
        return isinstance(params, (list, tuple)) and sql.count("?") == len(params)
    if "?" in sql:
        return False
    if paramstyle == "format":
        return isinstance(params, (list, tuple)) and sql.count("%s") == len(params)
    if paramstyle == "pyformat":
        if isinstance(params, dict):
            return set(re.findall(r"%\((\w+)\)s", sql)) <= set(params)
        return isinstance(params, (list, tuple)) and sql.count("%s") == len(params)
    if paramstyle == "named":
        return isinstance(params, dict) and set(re.findall(r"(?<!:):(\w+)", sql)) <= set(params)
    return False


def _runnable(row: Any, dialect: sa.Dialect) -> tuple[str, Any] | str:
    sql = getattr(row, "last_sql", None) or row.sql
    params = row.last_params if row.last_params is not None else ()
    if not _READ_ONLY.match(sql) or _WRITES.search(sql):
        return "not a read-only SELECT"
    if not _placeholders_fit(sql, params, dialect.paramstyle):
        return "literals in the text were folded by normalisation; cannot re-run it exactly"
    return sql, params


def _explain(raw: Any, dialect: str, sql: str, params: Any) -> Any:
    cur = raw.cursor()
    try:
        if dialect == "sqlite":
            cur.execute("EXPLAIN QUERY PLAN " + sql, params)
            return [tuple(r) for r in cur.fetchall()]
        cur.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        return cur.fetchone()[0]
    finally:
        cur.close()


def _time_ms(raw: Any, sql: str, params: Any, repeat: int) -> float:
    cur = raw.cursor()
    try:
        cur.execute(sql, params)  # warm-up: page cache and statement cache
        cur.fetchall()
        runs = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            cur.execute(sql, params)
            cur.fetchall()
            runs.append(time.perf_counter() - t0)
            if runs[-1] > _SLOW_FIRST_RUN_S:
                break
        return statistics.median(runs) * 1e3
    finally:
        cur.close()


def _measure(engine: sa.Engine, sql: str, params: Any, repeat: int, timeout_s: float,
             execute: bool = True) -> tuple[Any, float | str | None]:
    """(the plan, the median time in ms) of ``sql``; the time is None when not
    ``execute``, and a reason (str) when the read-only transaction refused the statement."""
    raw = engine.raw_connection()
    sqlite = engine.dialect.name == "sqlite"
    try:
        cur = raw.cursor()
        if sqlite:
            cur.execute("PRAGMA query_only = ON")
        else:
            cur.execute("SET TRANSACTION READ ONLY")  # the first statement of the transaction
            cur.execute("SELECT set_config('statement_timeout', %s, true)",
                        (str(int(timeout_s * 1000)),))
        cur.close()
        plan = _explain(raw, engine.dialect.name, sql, params)
        if not execute:
            return plan, None
        try:
            return plan, _time_ms(raw, sql, params, repeat)
        except Exception as exc:  # the DBAPI's error for a write in read-only
            if not re.search(r"read.only|readonly|query_only", str(exc), re.IGNORECASE):
                raise
            return plan, (f"not measured: the statement writes ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:200]})")
    finally:
        raw.rollback()
        if sqlite:
            cur = raw.cursor()
            cur.execute("PRAGMA query_only = OFF")
            cur.close()
        raw.close()


def _index_name(table: str, columns: list[str], max_len: int) -> str:
    name = re.sub(r"\W+", "_", f"ix_{table}_{'_'.join(columns)}").lower()
    if len(name) > max_len:
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = f"{name[:max_len - 9]}_{digest}"
    return name


def _distinct_in_sample(engine: sa.Engine, table: str, column: str) -> int:
    prep = engine.dialect.identifier_preparer
    col, tab = prep.quote(column), prep.quote(table)
    raw = engine.raw_connection()  # raw: our probes stay out of the application's metrics
    try:
        cur = raw.cursor()
        cur.execute(f"SELECT COUNT(DISTINCT {col}) FROM "
                    f"(SELECT {col} FROM {tab} LIMIT {_SAMPLE_ROWS}) s")
        row = cur.fetchone()
        return int(row[0] or 0) if row else 0
    finally:
        raw.rollback()
        raw.close()


def _propose(scan: Scan, inspector: Any, engine: sa.Engine) -> dict[str, Any] | str:
    """The index for one scanned table: equality filters first (at most 3), else the
    join column, else the first range filter; only real, selective, not yet indexed
    columns. Selective: at least ``_MIN_DISTINCT`` distinct values in a sample of
    ``_SAMPLE_ROWS`` rows (fewer means one value matches a large share of the table,
    where a scan is as good as an index)."""
    if scan.table not in inspector.get_table_names():
        return f"{scan.table!r} is not a table of the default schema"
    real = {c["name"] for c in inspector.get_columns(scan.table)}
    eq = [c for c, k in scan.filter_columns.items() if k == EQUALITY and c in real]
    joins = [c for c in dict.fromkeys(scan.automatic_index + scan.join_columns) if c in real]
    rng = [c for c, k in scan.filter_columns.items() if k != EQUALITY and c in real]
    unselective = [c for c in dict.fromkeys(eq + joins + rng)
                   if _distinct_in_sample(engine, scan.table, c) < _MIN_DISTINCT]
    eq, joins, rng = ([c for c in cols if c not in unselective] for cols in (eq, joins, rng))
    columns = eq[:3] or joins[:1] or rng[:1]
    if not columns:
        why = f" ({', '.join(unselective)}: fewer than {_MIN_DISTINCT} distinct values in " \
              f"{_SAMPLE_ROWS} rows)" if unselective else ""
        return f"full scan of {scan.table!r}: no selective filter or join column of its own{why}"
    for ix in inspector.get_indexes(scan.table):
        if list(ix.get("column_names") or [])[:len(columns)] == columns:
            return (f"index {ix['name']!r} already covers {columns} but the planner scans "
                    "(low selectivity or stale statistics: try database_optimization)")
    kind = "filtered" if eq or rng else "joined"
    return {"table": scan.table, "columns": columns,
            "reason": f"full scan of {scan.table!r} {kind} on {', '.join(columns)}"}


def _create_index(engine: sa.Engine, proposal: dict[str, Any]) -> None:
    prep = engine.dialect.identifier_preparer
    cols = ", ".join(prep.quote(c) for c in proposal["columns"])
    table, name = prep.quote(proposal["table"]), prep.quote(proposal["index"])
    if engine.dialect.name == "postgresql":
        # CONCURRENTLY keeps the table writable while the index builds; it needs autocommit.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            try:
                conn.exec_driver_sql(
                    f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} ({cols})")
            except Exception:
                # A failed concurrent build leaves an INVALID index behind that IF NOT
                # EXISTS would then keep skipping: remove it so a retry can build it.
                conn.exec_driver_sql(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
                raise
            conn.exec_driver_sql(f"ANALYZE {table}")
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({cols})")


def _scans(dialect: str, plan: Any, sql: str) -> list[Scan]:
    return sqlite_scans(plan, sql) if dialect == "sqlite" else pg_scans(plan)


def query_optimization(monitor: ActionContext, *, dry_run: bool, apply: bool = False, top: int = 3,
                       repeat: int = 5, engine: str = "", timeout_s: float = 10.0) -> Outcome:
    """Explain the slowest statements, propose indexes, create them when ``apply``."""
    stmts = monitor.database.statements()
    # perfkit's own probes and DDL stay out of the application's query-time metrics
    engines = {k: e.execution_options(**INTERNAL)
               for k, e in monitor.database.engines().items() if engine in k}
    stmts = stmts[stmts["engine"].isin(list(engines))]
    read_only = stmts[stmts["sql"].str.match(_READ_ONLY) & ~stmts["sql"].str.contains(_CATALOG)]
    if read_only.empty:
        raise RuntimeError("no SELECT statements timed yet on the instrumented engines; call "
                           "monitor.instrument_engine(engine) and let the application run")
    examined, proposals = [], []
    before: dict[str, float] = {}
    after: dict[str, float] = {}
    row: Any  # a row of the statements frame
    for row in read_only.head(top).itertuples(index=False):
        eng = engines[row.engine]
        entry: dict[str, Any] = {"sql": row.sql, "count": int(row.count),
                                 "total_ms": float(row.total_ms), "mean_ms": float(row.mean_ms)}
        examined.append(entry)
        run = _runnable(row, eng.dialect)
        if isinstance(run, str):
            entry["skipped"] = run
            continue
        sql, params = run
        plan, ms = _measure(eng, sql, params, repeat, timeout_s, execute=not dry_run)
        entry["plan_before"] = plan_lines(plan)
        if isinstance(ms, str):
            entry["skipped"] = ms
            continue
        if ms is not None:
            entry["ms_before"] = ms
        inspector = sa.inspect(eng)
        found: list[dict[str, Any]] = []
        for scan in _scans(eng.dialect.name, plan, sql):
            p = _propose(scan, inspector, eng)
            if isinstance(p, str):
                entry.setdefault("notes", []).append(p)
                continue
            p["index"] = _index_name(p["table"], p["columns"], eng.dialect.max_identifier_length)
            if any(q["index"] == p["index"] for q in found):  # a self-join scans twice
                continue
            prep = eng.dialect.identifier_preparer
            p["sql"] = (f"CREATE INDEX {prep.quote(p['index'])} ON {prep.quote(p['table'])} "
                        f"({', '.join(prep.quote(c) for c in p['columns'])})")
            p["statement"] = row.sql
            found.append(p)
        entry["proposals"] = [p["sql"] for p in found]
        proposals += found
        if not (apply and found and not dry_run):
            continue
        for p in found:
            _create_index(eng, p)
            p["applied"] = True
        plan2, ms2 = _measure(eng, sql, params, repeat, timeout_s)
        assert isinstance(ms, float) and isinstance(ms2, float)  # measured before: not a write
        lines = plan_lines(plan2)
        entry.update(plan_after=lines, ms_after=ms2,
                     index_used=any(p["index"] in line for p in found for line in lines))
        before["statement_ms"] = before.get("statement_ms", 0.0) + ms
        after["statement_ms"] = after.get("statement_ms", 0.0) + ms2
    detail = {"statements": examined, "proposals": proposals, "applied": bool(after),
              "rule": "worst total time first; a full scan filtered by equality gets an index on "
                      "those columns (≤3), else on its join column, else on its first range column"}
    return Outcome(detail, before=before, after=after, changed=bool(after))
