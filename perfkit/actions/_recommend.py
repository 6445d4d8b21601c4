"""``recommend()``: which actions to run, in which order, and why — a pure function.

Rules (one per action; each row's ``reason`` restates the rule with its numbers):

* ``memory_optimization`` ← a firing alert on ``system.memory_usage``,
  ``system.memory_available`` or ``process.rss``.
* ``cache_optimization`` ← a firing alert on ``cache.hit_rate``. With ``cache_stats``
  the misses are split by cause (:func:`diagnose_cache`); a cache whose misses are
  mostly first-time keys gets no recommendation, because no knob helps it.
* ``query_optimization`` ← a firing alert on ``database.query_time`` (or a percentile),
  or a timed statement whose mean is past the query-time warning threshold; the
  target is the statement with the largest total time.
* ``database_optimization`` ← the same query-time alert, one severity step lower
  (fresh statistics are the cheaper, less targeted move).
* ``connection_optimization`` ← ``database.overflow`` > 0 in the window (the pool was
  exhausted and opened extra connections): warning.

``priority`` orders by severity (critical, warning, advisory) and then by
``estimated_impact``, a 0–1 share computed per rule and explained in ``reason``:
the relative excess past the warning threshold for an alert, the statement's share
of database time for a query, the share of misses the diagnosed cause explains for
a cache, the share of samples in overflow for a pool. Rows for the same action and
target collapse into one (highest severity, reasons joined).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from perfkit.catalog import find_metric, get_metric
from perfkit.frames import parse_labels

__all__ = ["RECOMMENDATION_COLUMNS", "recommend"]

RECOMMENDATION_COLUMNS = ["action", "target", "params", "priority", "severity",
                          "estimated_impact", "reason", "evidence"]
_SEVERITY_RANK = {"critical": 0, "warning": 1, "advisory": 2}
_MEMORY = ("system.memory_usage", "system.memory_available", "process.rss")
_QUERY = "database.query_time"


def _firing(frame: pd.DataFrame, alerts: pd.DataFrame | None) -> pd.DataFrame:
    if alerts is None:
        from perfkit.analysis import alerts as evaluate

        alerts = evaluate(frame) if not frame.empty else None
    if alerts is None or alerts.empty:
        return pd.DataFrame(columns=["metric", "labels", "severity", "value", "threshold"])
    a = alerts
    if "state" in a.columns:
        a = a[a["state"] == "firing"]
    if "labels" not in a.columns:
        a = a.assign(labels="")
    a = a.assign(_r=a["severity"].map(_SEVERITY_RANK).fillna(9))
    # Warning and critical fire together past the critical line: keep the worse one.
    return a.sort_values("_r").drop_duplicates(["metric", "labels"]).drop(columns="_r")


def _excess(metric: str, value: float) -> float:
    m = find_metric(metric)
    if m is None or m.warning is None or not math.isfinite(value):
        return 0.0
    return float(min(1.0, abs(value - m.warning) / max(abs(m.warning), 1e-9)))


def _alert_row(action: str, target: str, alert: Any, params: dict[str, Any], what: str,
               severity: str | None = None) -> dict[str, Any]:
    impact = _excess(alert.metric, float(alert.value))
    m = find_metric(alert.metric)
    side = "below" if m is not None and m.direction == "lower" else "above"
    return {"action": action, "target": target, "params": params,
            "severity": severity or alert.severity, "estimated_impact": impact,
            "reason": f"{alert.severity} alert: {alert.metric} = {alert.value:.4g}, {side} "
                      f"{alert.threshold:.4g}; {what}; impact {impact:.2f} = relative excess "
                      f"past the warning threshold",
            "evidence": {"metric": alert.metric, "labels": alert.labels,
                         "value": float(alert.value), "threshold": float(alert.threshold),
                         "severity": alert.severity}}


def _worst_statement(statements: pd.DataFrame | None) -> tuple[str, float, Any] | None:
    if statements is None or statements.empty:
        return None
    sel = statements[statements["sql"].str.match(r"^\s*(SELECT|WITH)\b", case=False)]
    if sel.empty:
        return None
    top = sel.sort_values("total_ms", ascending=False).iloc[0]
    share = float(top["total_ms"] / max(statements["total_ms"].sum(), 1e-9))
    return str(top["sql"]), share, top


def _recent_ms(top: Any) -> float:
    # Judge the statement by how it runs now: its lifetime mean would keep an
    # already-indexed query recommended for hours.
    return float(top["recent_ms"] if "recent_ms" in top else top["mean_ms"])


def _query_rows(alert: Any | None, statements: pd.DataFrame | None) -> list[dict[str, Any]]:
    worst = _worst_statement(statements)
    rows = []
    warn = get_metric(_QUERY).warning
    if alert is not None:
        r = _alert_row("query_optimization", "database", alert, {"apply": False},
                       "explain the slowest statements and look for missing indexes")
        if worst is not None:
            sql, share, top = worst
            r["target"] = f"statement: {sql[:80]}"
            r["estimated_impact"] = share
            r["reason"] += (f"; the worst statement takes {share:.0%} of database time "
                            f"(impact = that share)")
            r["evidence"]["statement"] = {"sql": sql, "count": int(top["count"]),
                                          "total_ms": float(top["total_ms"]),
                                          "mean_ms": float(top["mean_ms"]),
                                          "recent_ms": _recent_ms(top)}
        rows.append(r)
        rows.append(_alert_row("database_optimization", "database", alert, {},
                               "refresh planner statistics and look for bloat",
                               severity="warning" if alert.severity == "critical" else "advisory"))
    elif worst is not None and warn is not None and _recent_ms(worst[2]) >= warn:
        sql, share, top = worst
        sev = get_metric(_QUERY).severity(_recent_ms(top)) or "advisory"
        rows.append({"action": "query_optimization", "target": f"statement: {sql[:80]}",
                     "params": {"apply": False}, "severity": sev, "estimated_impact": share,
                     "reason": f"statement recent mean {_recent_ms(top):.4g} ms >= the {warn:g} ms "
                               f"warning threshold; it takes {share:.0%} of database time "
                               f"(impact = that share)",
                     "evidence": {"statement": {"sql": sql, "count": int(top["count"]),
                                                "total_ms": float(top["total_ms"]),
                                                "mean_ms": float(top["mean_ms"]),
                                                "recent_ms": _recent_ms(top)}}})
    return rows


def _cache_row(alert: Any, cache_stats: Mapping[str, Any] | None) -> dict[str, Any] | None:
    labels = parse_labels(alert.labels) if isinstance(alert.labels, str) else {}
    target = f"cache: {labels['cache']}" if "cache" in labels else "cache"
    m = get_metric("cache.hit_rate")
    params = {"target_hit_rate": float(m.warning if m.warning is not None else 80.0)}
    r = _alert_row("cache_optimization", target, alert, params,
                   "diagnose the misses and change the matching knob")
    if cache_stats is None:
        return r
    from perfkit.actions.builtin._cache import diagnose_cache

    d = diagnose_cache({k: cache_stats.get(k) for k in ("hits", "misses", "evictions",
                                                         "expirations")},
                       target_hit_rate=params["target_hit_rate"], min_lookups=1)
    r["evidence"]["diagnosis"] = d
    if d["cause"] == "cold":
        return None  # first-time keys: no knob would help, so nothing to run
    if d["cause"] in ("evictions", "expiry"):
        r["estimated_impact"] = float(d["shares"][d["cause"]])
        r["reason"] += f"; {d['reason']} (impact = the {d['cause']} share)"
    return r


def _pool_row(frame: pd.DataFrame) -> dict[str, Any] | None:
    over = frame.loc[frame["metric"] == "database.overflow", "value"]
    if over.empty or not (over > 0).any():
        return None
    share = float((over > 0).mean())
    return {"action": "connection_optimization", "target": "pool", "params": {},
            "severity": "warning", "estimated_impact": share,
            "reason": f"the pool overflowed (database.overflow > 0) in {int((over > 0).sum())} of "
                      f"{over.size} samples, peak {over.max():g} extra connections; impact "
                      f"{share:.2f} = share of samples in overflow",
            "evidence": {"overflow_peak": float(over.max()), "samples": int(over.size),
                         "samples_in_overflow": int((over > 0).sum())}}


def _collapse(rows: list[dict[str, Any]]) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame(columns=RECOMMENDATION_COLUMNS)
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        key = (r["action"], r["target"])
        have = merged.get(key)
        if have is None:
            merged[key] = {**r, "evidence": [r["evidence"]]}
            continue
        if _SEVERITY_RANK[r["severity"]] < _SEVERITY_RANK[have["severity"]]:
            have["severity"] = r["severity"]
        have["estimated_impact"] = max(have["estimated_impact"], r["estimated_impact"])
        have["reason"] += " | " + r["reason"]
        have["evidence"].append(r["evidence"])
    out = pd.DataFrame(list(merged.values()))
    out["_r"] = out["severity"].map(_SEVERITY_RANK)
    out = out.sort_values(["_r", "estimated_impact"], ascending=[True, False], kind="stable")
    out["priority"] = range(1, len(out) + 1)
    return out[RECOMMENDATION_COLUMNS].reset_index(drop=True)


def recommend(frame: pd.DataFrame, alerts: pd.DataFrame | None = None, *,
              statements: pd.DataFrame | None = None,
              cache_stats: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Recommended actions for a samples ``frame``, highest priority (1) first.

    ``alerts``: an alerts frame (``perfkit.analysis.alerts``); computed from ``frame``
    with the catalogue's thresholds when None. ``statements``: the database
    collector's ``statements()``; ``cache_stats``: a cache's ``stats()``. Columns:
    action, target, params, priority, severity, estimated_impact, reason, evidence.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"recommend() needs a samples DataFrame, got {type(frame).__name__}")
    missing = {"metric", "value"} - set(frame.columns)
    if missing:
        raise ValueError(f"frame lacks column(s) {sorted(missing)}: pass a samples frame "
                         "(perfkit.frames.as_samples)")
    rows: list[dict[str, Any]] = []
    query_alert = None
    a: Any  # a row of the alerts frame
    for a in _firing(frame, alerts).itertuples(index=False):
        if a.metric in _MEMORY:
            rows.append(_alert_row("memory_optimization", "process", a, {},
                                   "collect garbage and return freed heap to the OS"))
        elif a.metric == "cache.hit_rate":
            r = _cache_row(a, cache_stats)
            if r is not None:
                rows.append(r)
        elif a.metric.startswith(_QUERY) and (query_alert is None or _SEVERITY_RANK.get(
                a.severity, 9) < _SEVERITY_RANK.get(query_alert.severity, 9)):
            query_alert = a
    rows += _query_rows(query_alert, statements)
    pool = _pool_row(frame) if "metric" in frame else None
    if pool is not None:
        rows.append(pool)
    return _collapse(rows)
