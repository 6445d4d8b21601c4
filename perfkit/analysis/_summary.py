"""The performance summary, every value computed from samples: ``summary(frame, ...)``."""

from __future__ import annotations

from typing import Any

import pandas as pd

from perfkit._json import jsonable
from perfkit._time import Duration, as_timedelta
from perfkit.analysis._alerts import alerts as _alerts
from perfkit.analysis._forecast import forecast
from perfkit.analysis._input import (
    SamplesLike,
    WhenLike,
    latest_ns,
    split_series,
    to_ns,
    to_samples,
)
from perfkit.analysis._score import score as _score
from perfkit.analysis._threshold import predicted_alerts
from perfkit.analysis._trend import trends

__all__ = ["jsonable", "summary"]


def summary(frame: SamplesLike, *, monitoring_active: bool, optimization_active: bool,
            actions: pd.DataFrame | None = None, horizon: Duration = "30min",
            now: WhenLike | None = None, level: float = 0.8,
            trend_window: Duration = "30min") -> dict[str, Any]:
    """The ``get_performance_summary()`` structure the API serves, computed from ``frame``.

    Keys: ``timestamp`` (ISO 8601, ``now`` or the latest sample),
    ``monitoring_active``, ``optimization_active``,
    ``metrics{name: {current, average, trend}}`` (latest value, mean over the
    frame, :func:`trends` label over ``trend_window``),
    ``predictions{name: {predicted_value, lower, upper, confidence, time_horizon,
    trend, model}}`` (the ``auto`` forecast at the end of ``horizon``;
    ``confidence`` is the interval level, ``time_horizon`` the horizon in
    minutes; ``trend`` is increasing / decreasing when the interval at the
    horizon excludes the current value, else stable), ``optimization_actions``
    (records of ``actions``), ``performance_score`` (overall 0–100 or None),
    ``alerts`` (current alert states, see :func:`alerts`), ``predicted_alerts``
    (critical crossings expected within the horizon) and ``score_breakdown``
    (groups, per-metric rows, missing). Only aggregate series (no labels) are
    summarised. Everything is JSON-serialisable: plain floats and strings,
    NaN → None.
    """
    hz = as_timedelta(horizon, "horizon")
    f = to_samples(frame)
    if now is not None:
        f = f[f["ts"] <= pd.Timestamp(to_ns(now), tz="UTC")]
    agg = f[f["labels"] == ""]
    series = split_series(agg, labels=False)
    end = latest_ns(series)
    stamp = pd.Timestamp(to_ns(now), tz="UTC") if now is not None else (
        pd.Timestamp(end, tz="UTC") if end is not None else pd.Timestamp.now(tz="UTC"))
    out: dict = {"timestamp": stamp.isoformat(), "monitoring_active": bool(monitoring_active),
                 "optimization_active": bool(optimization_active), "metrics": {},
                 "predictions": {}, "optimization_actions": [], "performance_score": None,
                 "alerts": [], "predicted_alerts": [], "score_breakdown": {}}
    if series:
        tr = trends(agg, trend_window, labels=False).set_index("metric")["trend"]
        for s in series:
            out["metrics"][s.metric] = {"current": float(s.values[-1]),
                                        "average": float(s.values.mean()),
                                        "trend": str(tr.get(s.metric, "stable"))}
        fc = forecast(agg, hz, level, "auto", labels=False)
        cur = {s.metric: float(s.values[-1]) for s in series}
        for metric, g in fc.groupby("metric", sort=False):
            last = g.iloc[-1]
            c = cur[str(metric)]
            t = ("increasing" if last["lower"] > c
                 else "decreasing" if last["upper"] < c else "stable")
            out["predictions"][metric] = {
                "predicted_value": float(last["mean"]), "lower": float(last["lower"]),
                "upper": float(last["upper"]), "confidence": float(level),
                "time_horizon": hz.total_seconds() / 60.0, "trend": t,
                "model": str(last["model"]), "at": last["ts"].isoformat()}
        sc = _score(agg)
        out["performance_score"] = sc.overall
        out["score_breakdown"] = {"overall": sc.overall, "groups": sc.groups,
                                  "metrics": sc.breakdown, "missing": sc.missing}
        out["alerts"] = _alerts(f)
        out["predicted_alerts"] = predicted_alerts(agg, hz, level=level, forecasts=fc)
    else:
        sc = _score(agg)
        out["score_breakdown"] = {"overall": None, "groups": sc.groups, "metrics": sc.breakdown,
                                  "missing": sc.missing}
    if actions is not None and len(actions):
        out["optimization_actions"] = actions
    return jsonable(out)
