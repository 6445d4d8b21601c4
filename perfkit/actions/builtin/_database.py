"""``database_optimization``: refresh planner statistics and report table-level findings.

SQLite: ``ANALYZE`` on tables without statistics, then ``PRAGMA optimize``; findings
are tables lacking ``sqlite_stat1`` rows and a free-page share worth a ``VACUUM``.
PostgreSQL: ``ANALYZE`` on the tables of the current schemas; findings from
``pg_stat_user_tables``: never-analysed tables (missing statistics) and dead-tuple
bloat (``n_dead_tup`` > ``bloat_ratio`` × live rows and > 1000) worth a ``VACUUM``.
VACUUM is recommended, never run: it can lock or rewrite large tables.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from perfkit.actions._context import ActionContext
from perfkit.actions._registry import Outcome
from perfkit.collectors import INTERNAL

__all__ = ["DESCRIPTION", "PARAMS", "WATCH", "database_optimization"]

DESCRIPTION = ("ANALYZE / PRAGMA optimize (SQLite) or ANALYZE (PostgreSQL) and table-level "
               "findings: missing statistics, dead-tuple bloat, free pages.")
PARAMS: dict[str, dict[str, Any]] = {
    "engine": {"type": "str", "default": "",
               "description": "only engines whose key contains this text"},
    "analyze": {"type": "bool", "default": True, "description": "refresh planner statistics"},
    "bloat_ratio": {"type": "float", "default": 0.2, "min": 0.01, "max": 10.0,
                    "description": "dead/live tuple ratio from which a table counts as bloated"},
}
WATCH = {"database.query_time": "higher"}
_MIN_DEAD = 1000
_FREE_PAGE_SHARE = 0.25


def _sqlite(engine: sa.Engine, dry_run: bool, analyze: bool) -> dict[str, Any]:
    prep = engine.dialect.identifier_preparer
    with engine.connect() as conn:
        tables = [r[0] for r in conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        has_stat = conn.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").first() is not None
        with_stats = {r[0] for r in conn.exec_driver_sql("SELECT DISTINCT tbl FROM sqlite_stat1")} \
            if has_stat else set()
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar() or 0
        free = conn.exec_driver_sql("PRAGMA freelist_count").scalar() or 0
    missing = [t for t in tables if t not in with_stats]
    findings = [{"table": t, "finding": "missing statistics",
                 "recommendation": f"ANALYZE {prep.quote(t)}"} for t in missing]
    if pages and free / pages >= _FREE_PAGE_SHARE:
        findings.append({"table": None, "finding": f"{free} of {pages} pages are free",
                         "recommendation": "VACUUM (rewrites the file; run in a quiet moment)"})
    done: list[str] = []
    if analyze and not dry_run:
        with engine.begin() as conn:
            for t in missing:
                conn.exec_driver_sql(f"ANALYZE {prep.quote(t)}")
                done.append(f"ANALYZE {prep.quote(t)}")
            conn.exec_driver_sql("PRAGMA optimize")
            done.append("PRAGMA optimize")
    return {"tables": len(tables), "findings": findings, "executed": done}


def _pg(engine: sa.Engine, dry_run: bool, analyze: bool, bloat_ratio: float) -> dict[str, Any]:
    prep = engine.dialect.identifier_preparer
    q = sa.text("SELECT schemaname, relname, n_live_tup, n_dead_tup, last_analyze, "
                "last_autoanalyze FROM pg_stat_user_tables "
                "WHERE schemaname = ANY (current_schemas(false)) ORDER BY schemaname, relname")
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    findings, targets = [], []
    for schema, table, live, dead, last, auto in rows:
        name = f"{prep.quote(schema)}.{prep.quote(table)}"
        targets.append(name)
        if last is None and auto is None:
            findings.append({"table": table, "finding": "missing statistics (never analysed)",
                             "recommendation": f"ANALYZE {name}"})
        if dead > _MIN_DEAD and dead > bloat_ratio * max(live, 1):
            findings.append({"table": table,
                             "finding": f"bloat: {dead} dead vs {live} live tuples",
                             "recommendation": f"VACUUM (ANALYZE) {name}"})
    done: list[str] = []
    if analyze and not dry_run and targets:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for name in targets:
                conn.exec_driver_sql(f"ANALYZE {name}")
                done.append(f"ANALYZE {name}")
    return {"tables": len(rows), "findings": findings, "executed": done}


def database_optimization(monitor: ActionContext, *, dry_run: bool, engine: str = "",
                          analyze: bool = True, bloat_ratio: float = 0.2) -> Outcome:
    """Refresh statistics on every matching engine and list what else needs doing."""
    # perfkit's own probes and DDL stay out of the application's query-time metrics
    engines = {k: e.execution_options(**INTERNAL)
               for k, e in monitor.database.engines().items() if engine in k}
    if not engines:
        raise RuntimeError(f"no instrumented engine matches {engine!r}; call "
                           "monitor.instrument_engine(engine) first")
    detail: dict[str, Any] = {"engines": {}}
    for key, eng in engines.items():
        if eng.dialect.name == "sqlite":
            detail["engines"][key] = _sqlite(eng, dry_run, analyze)
        elif eng.dialect.name == "postgresql":
            detail["engines"][key] = _pg(eng, dry_run, analyze, bloat_ratio)
        else:
            detail["engines"][key] = {"skipped": f"dialect {eng.dialect.name!r} not supported"}
    changed = any(e.get("executed") for e in detail["engines"].values())
    return Outcome(detail, changed=changed)
