"""``connection_optimization``: recycle the pools and size them from their observed peaks.

Sizing rule (:func:`pool_recommendation`): ``pool_size`` = ceil(p95 of checked-out
connections × headroom), ``max_overflow`` = ceil(peak × headroom) − pool_size, from the
``database.checked_out`` / ``database.overflow`` samples the Monitor stored. The numbers
are sums over the instrumented engines (that is what the collector measures).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from perfkit.actions._context import ActionContext
from perfkit.actions._registry import Outcome

__all__ = ["DESCRIPTION", "PARAMS", "WATCH", "connection_optimization", "pool_recommendation"]

DESCRIPTION = ("Recycle connection pools (engine.dispose()) and recommend pool_size / "
               "max_overflow from the observed peaks of checked-out and overflow connections.")
PARAMS: dict[str, dict[str, Any]] = {
    "engine": {"type": "str", "default": "",
               "description": "only engines whose key contains this text (default: all)"},
    "recycle": {"type": "bool", "default": True,
                "description": "dispose the pools so every connection is opened afresh"},
    "window": {"type": "str", "default": "1h",
               "description": "how far back to look for pool samples, e.g. '30min'"},
    "headroom": {"type": "float", "default": 1.25, "min": 1.0, "max": 4.0,
                 "description": "factor over the observed p95 / peak"},
}
WATCH = {"database.query_time": "higher"}
_POOL_METRICS = ["database.pool_size", "database.checked_out", "database.overflow"]


def pool_recommendation(frame: pd.DataFrame, headroom: float = 1.25) -> dict[str, Any] | None:
    """Recommended pool size and max overflow from a samples frame, with the evidence;
    None when the frame has no ``database.checked_out`` samples."""
    def values(metric: str) -> pd.Series:
        return frame.loc[frame["metric"] == metric].sort_values("ts")["value"]

    checked = values("database.checked_out")
    if checked.empty:
        return None
    overflow, size = values("database.overflow"), values("database.pool_size")
    peak, p95 = float(checked.max()), float(checked.quantile(0.95))
    rec_size = max(1, math.ceil(p95 * headroom))
    rec_overflow = max(0, math.ceil(peak * headroom) - rec_size)
    exhausted = int((overflow > 0).sum())
    evidence = {"samples": int(checked.size), "checked_out_peak": peak, "checked_out_p95": p95,
                "checked_out_mean": float(checked.mean()),
                "overflow_peak": float(overflow.max()) if not overflow.empty else None,
                "samples_in_overflow": exhausted,
                "pool_size_now": float(size.iloc[-1]) if not size.empty else None}
    return {"pool_size": rec_size, "max_overflow": rec_overflow, "evidence": evidence,
            "reason": f"p95 of checked-out connections {p95:g} × headroom {headroom:g} → "
                      f"pool_size {rec_size}; peak {peak:g} × {headroom:g} → max_overflow "
                      f"{rec_overflow}; the pool overflowed in {exhausted} of "
                      f"{checked.size} samples"}


def _status(engine: Any) -> dict[str, Any]:
    pool = engine.pool
    out: dict[str, Any] = {"pool": type(pool).__name__, "status": pool.status()}
    for name in ("size", "checkedin", "checkedout", "overflow"):
        fn = getattr(pool, name, None)
        if callable(fn):
            out[name] = fn()
    return out


def connection_optimization(monitor: ActionContext, *, dry_run: bool, engine: str = "",
                            recycle: bool = True, window: str = "1h", headroom: float = 1.25
                            ) -> Outcome:
    """Recycle the matching engines' pools and recommend their size from stored peaks."""
    engines = {k: e for k, e in monitor.database.engines().items() if engine in k}
    if not engines:
        known = list(monitor.database.engines()) or ["none: call monitor.instrument_engine(engine)"]
        raise RuntimeError(f"no instrumented engine matches {engine!r}; instrumented: {known}")
    samples = monitor.store.samples(metric=_POOL_METRICS, host=monitor.host, since=window)
    detail: dict[str, Any] = {"recommendation": pool_recommendation(samples, headroom),
                              "window": window, "engines": {}}
    if detail["recommendation"] is None:
        detail["recommendation_note"] = (f"no database.checked_out samples in the last {window}: "
                                         "the pool is not a QueuePool or the Monitor has not "
                                         "collected yet")
    closed = 0
    for key, eng in engines.items():
        before = _status(eng)
        entry: dict[str, Any] = {"before": before}
        if recycle and not dry_run:
            # dispose() closes the idle connections now and swaps in a fresh pool; connections
            # checked out at this moment are closed when their holders return them.
            eng.dispose()
            entry["after"] = _status(eng)
            closed += int(before.get("checkedin", 0))
        detail["engines"][key] = entry
    detail["connections_closed"] = closed if recycle and not dry_run else 0
    return Outcome(detail, changed=bool(recycle and not dry_run))
