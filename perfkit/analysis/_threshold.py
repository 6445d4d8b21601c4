"""When will a metric cross its warning / critical threshold? ``time_to_threshold``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from perfkit._format import format_duration, format_value
from perfkit._time import Duration
from perfkit.analysis._forecast import forecast
from perfkit.analysis._input import (
    SamplesLike,
    split_series,
)
from perfkit.catalog import find_metric

__all__ = ["THRESHOLD_COLUMNS", "predicted_alerts", "time_to_threshold"]

THRESHOLD_COLUMNS = ["metric", "labels", "severity", "threshold", "direction", "current",
                     "eta_earliest", "eta_expected", "eta_latest",
                     "at_earliest", "at_expected", "at_latest", "model", "message"]


def _first_crossing(t0: int, v0: float, ts: np.ndarray, vals: np.ndarray, thr: float,
                    direction: str) -> int | None:
    """Time (ns) at which the path (t0, v0) -> (ts, vals) first reaches ``thr``, linearly
    interpolated between grid points; None if it never does."""
    sign = 1.0 if direction == "higher" else -1.0
    t = np.concatenate([[t0], ts]).astype(float)
    v = sign * (np.concatenate([[v0], vals]) - thr)      # >= 0 means "at or past"
    hit = np.flatnonzero(v >= 0)
    if hit.size == 0:
        return None
    i = int(hit[0])
    if i == 0:
        return int(t0)
    frac = -v[i - 1] / (v[i] - v[i - 1])
    return round(float(t[i - 1] + frac * (t[i] - t[i - 1])))


def time_to_threshold(frame: SamplesLike, horizon: Duration = "6h", *, level: float = 0.8,
                      forecasts: pd.DataFrame | None = None, method: str = "auto",
                      labels: bool | None = None) -> pd.DataFrame:
    """For each catalogued metric with thresholds: when the forecast reaches them.

    One row per metric (and label set) and severity (``warning``, ``critical``)
    that has a threshold. The forecast (``forecasts``, or
    ``forecast(frame, horizon, level, method)``) is followed from the last
    sample; the crossing time is interpolated linearly between forecast steps.
    ``eta_expected`` uses the mean path; ``eta_earliest`` the pessimistic
    interval bound (upper for metrics where higher is worse, lower for hit rate
    and free memory), ``eta_latest`` the optimistic bound. An ETA is a
    Timedelta from the last sample (0 when the metric is already past the
    threshold) or ``NaT`` when that path does not cross within ``horizon``;
    ``at_*`` are the corresponding timestamps. ``message`` reads e.g.
    ``"system.disk_usage reaches 90 % in 3 h 10 min, between 2 h 40 min and 4 h"``.
    Metrics without thresholds (or with direction ``none``) are not listed.
    """
    series = {(s.metric, s.labels): s for s in split_series(frame, labels)}
    if forecasts is None:
        forecasts = forecast(frame, horizon, level, method, labels=labels)
    rows = []
    for key, fc in forecasts.groupby(["metric", "labels"], sort=False):
        metric, lab = str(key[0]), str(key[1])
        m = find_metric(metric)
        s = series.get((metric, lab))
        if m is None or m.direction not in ("higher", "lower") or s is None or s.n == 0:
            continue
        fc = fc.sort_values("ts")
        ts = pd.DatetimeIndex(fc["ts"]).as_unit("ns").asi8
        t0, v0 = int(s.ts[-1]), float(s.values[-1])
        pess, opt = ("upper", "lower") if m.direction == "higher" else ("lower", "upper")
        for sev in ("warning", "critical"):
            thr = getattr(m, sev)
            if thr is None:
                continue
            at = {k: _first_crossing(t0, v0, ts, fc[col].to_numpy(float), thr, m.direction)
                  for k, col in (("earliest", pess), ("expected", "mean"), ("latest", opt))}
            eta = {k: (pd.Timedelta(v - t0) if v is not None else pd.NaT) for k, v in at.items()}
            eta_ns = {k: (float(v - t0) if v is not None else np.nan) for k, v in at.items()}
            at_ns = {k: (float(v) if v is not None else np.nan) for k, v in at.items()}
            rows.append({
                "metric": metric, "labels": lab, "severity": sev, "threshold": float(thr),
                "direction": m.direction, "current": v0,
                "eta_earliest": eta_ns["earliest"], "eta_expected": eta_ns["expected"],
                "eta_latest": eta_ns["latest"],
                "at_earliest": at_ns["earliest"], "at_expected": at_ns["expected"],
                "at_latest": at_ns["latest"],
                "model": str(fc["model"].iloc[0]),
                "message": _message(metric, lab, m.unit, thr, m.direction, eta,
                                    pd.Timedelta(int(ts[-1] - t0)) if len(ts) else pd.Timedelta(0)),
            })
    out = pd.DataFrame(rows, columns=THRESHOLD_COLUMNS)
    for c in ("eta_earliest", "eta_expected", "eta_latest"):
        out[c] = pd.to_timedelta(out[c].astype(float), unit="ns")
    for c in ("at_earliest", "at_expected", "at_latest"):
        out[c] = pd.to_datetime(out[c].astype(float), unit="ns", utc=True)
    return out


def _message(metric: str, lab: str, unit: str, thr: float, direction: str,
             eta: Mapping[str, Any], span: pd.Timedelta) -> str:
    name = metric + (f"{{{lab}}}" if lab else "")
    verb = "reaches" if direction == "higher" else "falls to"
    tv = format_value(float(thr), unit)
    e, x, l_ = eta["earliest"], eta["expected"], eta["latest"]
    if pd.notna(x) and x == pd.Timedelta(0):
        return f"{name} is already {'at or above' if direction == 'higher' else 'at or below'} {tv}"
    if pd.isna(x):
        if pd.isna(e):
            return f"{name} stays {'below' if direction == 'higher' else 'above'} {tv} " \
                   f"for the next {format_duration(span)}"
        return (f"{name} is not expected to reach {tv} within {format_duration(span)}, "
                f"but could in {format_duration(e)}")
    lo = format_duration(e) if pd.notna(e) else format_duration(x)
    hi = format_duration(l_) if pd.notna(l_) else f"more than {format_duration(span)}"
    return f"{name} {verb} {tv} in {format_duration(x)}, between {lo} and {hi}"


def predicted_alerts(frame: SamplesLike, horizon: Duration = "30min", *,
                     level: float = 0.8, severities: Iterable[str] = ("critical",),
                     forecasts: pd.DataFrame | None = None) -> pd.DataFrame:
    """Metrics whose **expected** forecast crosses a threshold within ``horizon``.

    "Will cross critical within the horizon": rows of :func:`time_to_threshold`
    for ``severities`` whose ``eta_expected`` is within the horizon and which
    are not already past the threshold (those are ordinary alerts), with
    ``state="predicted"``.
    """
    t = time_to_threshold(frame, horizon, level=level, forecasts=forecasts)
    keep = t["severity"].isin(list(severities)) & t["eta_expected"].notna() \
        & (t["eta_expected"] > pd.Timedelta(0))
    out = t[keep].copy()
    out.insert(3, "state", "predicted")
    return out.reset_index(drop=True)
