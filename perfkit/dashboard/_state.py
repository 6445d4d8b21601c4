"""One current state per metric, read by every part of the page.

The rule (stated in the page's help text): a metric's **current value is its
latest sample**; with several hosts it is the **worst host's** latest (a fleet is as
healthy as its worst host: a mean would let one host at 99 % CPU hide behind three idle
ones, and score a critical host as fine). The tiles,
the health score, "costing the most points" and the alert list all read that
value, and a metric with a firing alert counts at least at that alert's
severity (so a firing critical alert never scores as healthy). ``since`` is
when the metric entered its current status, so the page can say when the
state last changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from perfkit.catalog import CORE_METRICS, find_metric
from perfkit.dashboard._words import compare, fmt, typed_rows

__all__ = ["ARROWS", "STATE_RULE", "action_rows", "alert_table", "costly_metrics",
           "current_samples", "metric_overview"]

ARROWS = {"increasing": "↑", "decreasing": "↓", "stable": "→"}
"""Trend label → arrow shown next to a metric."""

STATE_RULE = ("Every number on this page reads one current state: each metric's latest "
              "sample (several hosts: the worst host's latest, since a fleet is as healthy "
              "as its worst host). The score, the "
              "alerts, this list and the metric tiles all use it, and a metric with a firing "
              "alert counts at least at that alert's severity.")
"""The consistency rule, as the page's help text states it."""

_RANK = {"ok": 0, "warning": 1, "critical": 2}


def _ranks(values: np.ndarray, m: Any) -> np.ndarray:
    r = np.zeros(len(values), dtype=np.int8)
    if m is None or m.direction not in ("higher", "lower"):
        return r
    for level, sev in ((m.warning, 1), (m.critical, 2)):
        if level is not None:
            bad = values >= level if m.direction == "higher" else values <= level
            r[bad] = np.maximum(r[bad], sev)
    return r


def _firing(alerts: pd.DataFrame | None) -> dict[str, tuple[str, pd.Timestamp]]:
    """metric -> (worst firing severity, since) over the aggregate series' alerts."""
    if alerts is None or not len(alerts) or "state" not in alerts:
        return {}
    a = alerts[(alerts["state"] == "firing")]
    if "labels" in a:
        a = a[a["labels"].fillna("") == ""]
    out: dict[str, tuple[str, pd.Timestamp]] = {}
    for r in typed_rows(a):
        prev = out.get(r.metric)
        if prev is None or _RANK.get(r.severity, 0) > _RANK[prev[0]]:
            out[r.metric] = (r.severity, r.since)
    return out


def metric_overview(frame: pd.DataFrame, trends: pd.DataFrame | None = None,
                    metrics: Sequence[str] = CORE_METRICS,
                    alerts: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per metric: group, unit, current, average, trend, arrow, status, since and host.

    ``current`` follows the page's rule (module docstring); ``average`` is the
    mean of the frame's samples; ``trends`` is a :func:`perfkit.trends` frame
    (``bad_trend`` True when it moves the way the catalogue calls worse).
    ``status`` is ``ok`` / ``warning`` / ``critical`` (``missing`` without
    samples): the current value's threshold level, raised to the severity of a
    firing alert in ``alerts``; ``since`` is when the metric entered that status
    (the start of the trailing run of samples at that level, or the alert's
    ``since``). ``host`` is the host whose latest value is ``current`` (with several
    hosts, the worst one). ``frame`` must be in time order (as the store returns it).
    """
    f = frame[frame["labels"] == ""] if len(frame) else frame
    tr: dict[str, str] = {}
    if trends is not None and len(trends):
        t = trends[trends["labels"] == ""] if "labels" in trends else trends
        tr = dict(zip(t["metric"], t["trend"]))
    by_metric = dict(tuple(f.groupby("metric", sort=False, observed=True))) if len(f) else {}
    firing = _firing(alerts)
    rows = []
    for name in metrics:
        m = find_metric(name)
        g = by_metric.get(name)
        cur, avg = np.nan, np.nan
        since: Any = pd.NaT
        status, worst_host = "missing", ""
        if g is not None and len(g):
            s = _worst_series(g, m)
            cur, worst_host = float(s.iloc[-1]), str(s.attrs.get("host", ""))
            avg = float(g["value"].mean())
            ranks = _ranks(s.to_numpy(dtype=float), m)
            last = int(_ranks(np.array([cur]), m)[0])
            diff = np.flatnonzero(ranks != last)
            since = s.index[diff[-1] + 1] if diff.size and diff[-1] + 1 < len(s) else \
                (s.index[-1] if diff.size else s.index[0])
            status = ("ok", "warning", "critical")[last]
            fire = firing.get(name)
            if fire is not None and _RANK[fire[0]] > last:
                status, since = fire[0], fire[1]
        trend = tr.get(name, "stable")
        direction = m.direction if m else "none"
        bad = (direction == "higher" and trend == "increasing") or \
              (direction == "lower" and trend == "decreasing")
        rows.append({"metric": name, "group": m.group if m else name.split(".")[0],
                     "unit": m.unit if m else "", "current": cur, "average": avg,
                     "trend": trend, "arrow": ARROWS.get(trend, "→"), "bad_trend": bad,
                     "severity": status if status in ("warning", "critical") else None,
                     "status": status, "since": since, "missing": status == "missing",
                     "host": worst_host})
    out = pd.DataFrame(rows)
    if len(out):
        out["since"] = pd.to_datetime(out["since"], utc=True)
    return out


def _worst_series(g: pd.DataFrame, m: Any) -> pd.Series:
    """One metric's value over time across hosts: at each sample time, the worst of every
    host's latest value (the catalogue's direction says which end is worse; a metric
    without one takes the mean). ``attrs["host"]`` names the host that is worst now."""
    hosts = g["host"].astype(str)
    if hosts.nunique() <= 1:
        s = g.set_index("ts")["value"]
        s.attrs["host"] = hosts.iloc[-1]
        return s
    wide = g.assign(host=hosts).pivot_table(index="ts", columns="host", values="value",
                                            aggfunc="last").sort_index().ffill()
    direction = m.direction if m is not None else "none"
    if direction == "higher":
        s, who = wide.max(axis=1), wide.iloc[-1].idxmax()
    elif direction == "lower":
        s, who = wide.min(axis=1), wide.iloc[-1].idxmin()
    else:
        s, who = wide.mean(axis=1), ""
    s.attrs["host"] = str(who)
    return s


def current_samples(overview: pd.DataFrame, now: pd.Timestamp, host: str = "") -> pd.DataFrame:
    """The overview's current values as a one-sample-per-metric frame, for :func:`perfkit.score`."""
    ok = overview[np.isfinite(overview["current"].to_numpy(dtype=float))] if len(overview) \
        else overview
    return pd.DataFrame({"ts": pd.DatetimeIndex([now] * len(ok)), "host": host,
                         "metric": ok["metric"].astype(str).to_numpy() if len(ok) else [],
                         "value": ok["current"].to_numpy(dtype=float) if len(ok) else [],
                         "labels": ""})


def alert_table(alerts: pd.DataFrame, recent: int = 3,
                overview: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The alerts to show: one active row per series, and the latest resolutions.

    ``alerts`` is a :func:`perfkit.alerts` frame. A metric past its critical
    threshold is also past its warning one; both rules fire, but the page shows
    the series once, at its worst state (firing before pending, critical before
    warning), with a ``text`` column reading ``system.cpu_usage 97.2 %, above its
    critical threshold of 90 %``: the current value (from ``overview`` when
    given, so it matches the tile) against the threshold. The second frame holds
    the ``recent`` series resolved most recently, newest first, each once.
    """
    if not len(alerts) or "state" not in alerts:
        return alerts, alerts
    state = alerts["state"].map({"firing": 0, "pending": 1})
    sev = alerts["severity"].map({"critical": 0, "warning": 1}).fillna(2)
    keys = ["metric", "labels"] if "labels" in alerts else ["metric"]
    active = (alerts.assign(_o=state, _s=sev)[state.notna()]
              .sort_values(["_o", "_s"], kind="stable")
              .drop_duplicates(keys).drop(columns=["_o", "_s"]).reset_index(drop=True))
    cur = dict(zip(overview["metric"], overview["current"])) if overview is not None \
        and len(overview) else {}
    texts = []
    for r in typed_rows(active):
        labels = getattr(r, "labels", "") or ""
        value = cur.get(r.metric, r.value) if not labels else r.value
        name = r.metric + (f"{{{labels}}}" if labels else "")
        texts.append(f"{name} {compare(r.metric, value, r.threshold, r.severity)}")
    active["text"] = texts
    done = alerts["state"] == "resolved"
    resolved = (alerts.assign(_s=sev)[done]
                .sort_values(["since", "_s"], ascending=False, kind="stable")
                .drop_duplicates(keys).drop(columns="_s").head(recent).reset_index(drop=True))
    return active, resolved


def costly_metrics(score: Any, n: int = 5, overview: pd.DataFrame | None = None) -> pd.DataFrame:
    """The ``n`` metrics costing a :func:`perfkit.score` the most points, most expensive first.

    Columns ``metric, value, unit, status, cost, since``: ``value`` is the value
    the score judged, ``status`` its level, ``cost`` the points it takes off the
    overall score, ``since`` (from ``overview``) when it entered that status.
    """
    cols = ["metric", "value", "unit", "status", "cost", "since"]
    if score is None:
        return pd.DataFrame(columns=cols)
    w = score.worst.head(n)
    units = [m.unit if (m := find_metric(name)) is not None else "" for name in w["metric"]]
    since = dict(zip(overview["metric"], overview["since"])) if overview is not None \
        and len(overview) else {}
    return w.assign(unit=units, since=[since.get(x, pd.NaT) for x in w["metric"]])[cols] \
        .reset_index(drop=True)


def action_rows(actions: pd.DataFrame) -> pd.DataFrame:
    """The actions audit log for display, newest first, before/after as one readable column.

    ``change`` reads ``"process.rss: 212 MB → 187 MB; gc.collected: 0 → 12,000"`` (the
    metrics measured on both sides); ``outcome`` is the verdict of a finished
    action, else its status (``pending``, ``running``, ``failed``, ``rejected``).
    """
    cols = ["id", "requested_at", "host", "action", "dry_run", "requested_by", "status",
            "outcome", "change", "error", "duration_s"]
    if not len(actions):
        return pd.DataFrame({c: [] for c in cols})
    a = actions.sort_values("id", ascending=False, ignore_index=True)

    def change(before: Any, after: Any) -> str:
        b = before if isinstance(before, dict) else {}
        f = after if isinstance(after, dict) else {}
        parts = []
        for k in b:
            if k in f and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                              for v in (b[k], f[k])):
                m = find_metric(k)
                unit = m.unit if m is not None else ""
                parts.append(f"{k}: {fmt(b[k], unit)} → {fmt(f[k], unit)}")
        return "; ".join(parts)

    out = a.assign(
        outcome=[v if isinstance(v, str) and st == "done" else st
                 for v, st in zip(a["verdict"], a["status"])],
        change=[change(b, f) for b, f in zip(a["before"], a["after"])],
        error=a["error"].where(a["error"].notna(), ""))
    return out[cols]
